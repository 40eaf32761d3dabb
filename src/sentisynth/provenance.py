"""Mismatches said out loud: does a synthetic set come from the setting this run trains in?

A set generated from a 250-post seed (its guidance keywords, exemplars and teacher came from those posts)
and used in a run with a 1,000-post seed, another data seed, another dataset or other label names still
trains; the comparison with the real arm is then not like for like. `compare_origin` says which of those
differ, `augment=synthetic` logs one warning naming them and records the comparison in `data_summary.json`.

What the set says about itself, first found wins: `source_data.json` beside it (written by the generation
run), else the generating run's `.hydra/config.yaml` (seed size, data seed) and its card `README.md`
(dataset, seed posts); label names from the rows' `label_name`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from sentisynth.data import LowResourceData
from sentisynth.utils import read_json

log = logging.getLogger(__name__)

SOURCE_FILE = "source_data.json"
CARD_LINE = re.compile(r"^- dataset: (?P<dataset>\S+) .*labelled seed: (?P<n_seed>\d+) posts", re.M)


def set_folder(source: Path) -> Path:
    """The generation run directory of a set given as its file, its `dataset/` or the directory itself."""
    folder = source if source.is_dir() else source.parent
    return folder.parent if folder.name == "dataset" else folder


def source_record(data: LowResourceData) -> dict[str, Any]:
    """What a generation run writes to `source_data.json`: the setting its set was made from."""
    return {
        "dataset": data.dataset.name,
        "n_seed": len(data.seed),
        "data_seed": int(data.data_seed),
        "label_names": list(data.label_names),
    }


def _from_hydra(folder: Path) -> dict[str, Any]:
    from omegaconf import OmegaConf

    path = folder / ".hydra" / "config.yaml"
    if not path.is_file():
        return {}
    cfg = OmegaConf.load(path)
    seed = OmegaConf.select(cfg, "data.seed", default=None, throw_on_resolution_failure=False)
    size = OmegaConf.select(cfg, "data.seed_size", default=None, throw_on_resolution_failure=False)
    out: dict[str, Any] = {}
    if isinstance(seed, int):
        out["data_seed"] = seed
    if isinstance(size, int):
        out["n_seed"] = size
    return out


def set_origin(source: Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The set's dataset, seed posts, data seed and label names, as far as it records them ({} when not)."""
    folder = set_folder(Path(source))
    if (folder / SOURCE_FILE).is_file():
        return dict(read_json(folder / SOURCE_FILE))
    origin: dict[str, Any] = {}
    card = folder / "README.md"
    match = CARD_LINE.search(card.read_text(encoding="utf-8")) if card.is_file() else None
    if match:
        origin.update(dataset=match["dataset"], n_seed=int(match["n_seed"]))
    origin.update(_from_hydra(folder))
    names = sorted({str(r["label_name"]) for r in rows if r.get("label_name") is not None})
    if names:
        origin["label_names"] = names
    return origin


def mismatches(origin: dict[str, Any], run: dict[str, Any]) -> list[str]:
    """One phrase per recorded field that differs between the set and the run."""
    out = []
    if "dataset" in origin and origin["dataset"] != run["dataset"]:
        out.append(f"dataset {origin['dataset']} (set) vs {run['dataset']} (run)")
    if "n_seed" in origin and int(origin["n_seed"]) != run["n_seed"]:
        out.append(f"seed size {origin['n_seed']} posts in total (set) vs {run['n_seed']} (run)")
    if "data_seed" in origin and int(origin["data_seed"]) != run["data_seed"]:
        out.append(f"data seed {origin['data_seed']} (set) vs {run['data_seed']} (run)")
    names = origin.get("label_names")
    if names and set(names) != set(run["label_names"]):
        out.append(f"label names {sorted(names)} (set) vs {sorted(run['label_names'])} (run)")
    return out


def compare_origin(source: Path, rows: list[dict[str, Any]], data: LowResourceData) -> dict[str, Any]:
    """The set's origin against this run's data; warns once, naming every mismatch. For data_summary.json."""
    origin, run = set_origin(source, rows), source_record(data)
    found = mismatches(origin, run)
    if found:
        log.warning(
            "augment=synthetic: %s was made in another setting: %s. Its guidance, exemplars and teacher came "
            "from other seed posts, so it is not a like-for-like arm; generate for this setting (augment.path "
            "unset) or use a set made from it",
            source,
            "; ".join(found),
        )
    elif not origin:
        log.warning("augment=synthetic: %s records no source data: its setting cannot be checked", source)
    return {"set": origin, "run": run, "mismatches": found}
