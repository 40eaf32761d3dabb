"""`data=hub`: any Hugging Face dataset (Hub name, local data files, or a `save_to_disk` directory).

The `datasets` library does the loading (`load_dataset`, or `load_from_disk` for a directory written by
`Dataset.save_to_disk`/`DatasetDict.save_to_disk`); each split then goes through the same label mapping
and cleaning as `data=files`, so the low-resource seed/pool logic downstream is unchanged. Labels may be
a `ClassLabel` (its names are used), strings, or integer ids.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sentisynth.data import (
    DataError,
    LabelledDataset,
    LowResourceData,
    Split,
    carve_validation,
    frame_to_split,
    infer_label_names,
    low_resource,
)

log = logging.getLogger(__name__)


def is_saved_dataset(path: str | Path) -> bool:
    """A directory written by `Dataset.save_to_disk` (state.json) or `DatasetDict.save_to_disk`."""
    p = Path(str(path)).expanduser()
    return p.is_dir() and ((p / "dataset_dict.json").is_file() or (p / "state.json").is_file())


def open_dataset(
    hub_name: str, hub_config: str | None = None, hub_revision: str | None = None, data_files: Any = None
) -> Any:
    """A `DatasetDict` (or `Dataset`) from a saved directory or `datasets.load_dataset`; one-line errors."""
    import datasets

    if is_saved_dataset(hub_name):
        return datasets.load_from_disk(str(Path(hub_name).expanduser()))
    try:
        return datasets.load_dataset(hub_name, hub_config, revision=hub_revision, data_files=data_files)
    except Exception as e:  # noqa: BLE001 - any loading failure becomes one line naming the dataset
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        where = (
            hub_name
            + (f" (config {hub_config})" if hub_config else "")
            + (f"@{hub_revision}" if hub_revision else "")
        )
        raise DataError(f"data=hub: could not load {where}: {type(e).__name__}: {first}") from e


def split_names(ds: Any) -> list[str]:
    return list(ds.keys()) if hasattr(ds, "keys") else ["train"]


def get_split(ds: Any, name: str, where: str, option: str) -> Any:
    available = split_names(ds)
    if name not in available:
        raise DataError(
            f"{where}: unknown split {name!r} for data.{option} (available: {', '.join(available)})"
        )
    return ds[name] if hasattr(ds, "keys") else ds


def hub_label_names(
    features: Any, label_column: str, values: Sequence[Any], label_names: Sequence[str] | None
) -> list[str]:
    """Given names, else the `ClassLabel` names, else inferred from the values (ids 0..n-1 or sorted strings)."""
    if label_names:
        return [str(n) for n in label_names]
    feature = features.get(label_column) if features is not None else None
    if feature is not None and hasattr(feature, "names") and feature.names:
        return list(feature.names)
    return infer_label_names(values)


def to_split(part: Any, text_column: str, label_column: str, names: list[str], where: str) -> Split:
    for col in (text_column, label_column):
        if col not in part.column_names:
            raise DataError(f"{where}: missing column {col!r} (columns: {', '.join(part.column_names)})")
    frame = part.select_columns([text_column, label_column]).to_pandas()
    return frame_to_split(frame, text_column, label_column, names, where)


def load_hub(
    hub_name: str | None = None,
    hub_config: str | None = None,
    hub_revision: str | None = None,
    data_files: Any = None,
    train_split: str = "train",
    val_split: str | None = "validation",
    test_split: str | None = "test",
    text_column: str = "text",
    label_column: str = "label",
    label_names: Sequence[str] | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    name: str | None = None,
) -> LabelledDataset:
    """Train/val/test from a Hugging Face dataset; a split set to null is carved (stratified) from train."""
    if not hub_name:
        raise DataError("data=hub needs data.hub_name=<Hub dataset name or save_to_disk directory>")
    ds = open_dataset(str(hub_name), hub_config, hub_revision, data_files)
    where = str(hub_name) + (f"/{hub_config}" if hub_config else "")
    train_part = get_split(ds, train_split, where, "train_split")
    parts = {"val": (val_split, "val_split"), "test": (test_split, "test_split")}
    chosen = {k: get_split(ds, s, where, opt) for k, (s, opt) in parts.items() if s}
    if label_column not in train_part.column_names:
        raise DataError(
            f"{where}:{train_split}: missing column {label_column!r} "
            f"(columns: {', '.join(train_part.column_names)})"
        )
    names = hub_label_names(train_part.features, label_column, train_part.unique(label_column), label_names)
    splits = {"train": to_split(train_part, text_column, label_column, names, f"{where}:{train_split}")}
    splits.update(
        {
            k: to_split(part, text_column, label_column, names, f"{where}:{parts[k][0]}")
            for k, part in chosen.items()
        }
    )
    notes = []
    if "test" not in splits:
        splits["train"], splits["test"] = carve_validation(
            splits["train"], test_fraction, seed + 1, len(names)
        )
        notes.append(f"no test split: {test_fraction:.0%} of {train_split} carved as test")
    if "val" not in splits:
        splits["train"], splits["val"] = carve_validation(splits["train"], val_fraction, seed, len(names))
        notes.append(f"no validation split: {val_fraction:.0%} of {train_split} carved as val")
    for note in notes:
        log.warning("%s: %s", where, note)
    label = name or Path(str(hub_name)).name.replace("/", "_")
    source = f"hub:{where}" + (f"@{hub_revision}" if hub_revision else "")
    return LabelledDataset(label, names, splits["train"], splits["val"], splits["test"], source, notes)


def load_hub_data(
    seed_size: int | str = 1000,
    seed: int = 0,
    loader: str = "hub",
    split_seed: int | None = None,
    **kwargs: Any,
) -> LowResourceData:
    """Hydra entry point of `data=hub`: the dataset, then the same low-resource seed/pool draw as every loader.
    Carved val/test splits use `split_seed` (null: `seed`), so `seed` varies only the seed set and training."""
    kwargs = {k: v for k, v in kwargs.items() if not k.startswith("_")}
    split = seed if split_seed is None else split_seed
    return low_resource(load_hub(seed=split, **kwargs), seed_size, seed)
