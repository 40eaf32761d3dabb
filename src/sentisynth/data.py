"""Data layer: load labelled text datasets and simulate a low-resource setting.

Every loader returns plain `Split`s (texts, integer labels, original row indices) so the rest of the
framework never cares where data came from. A local directory (`SENTISYNTH_DATA_DIR`, laid out like
`../shared/data`) wins over the Hugging Face Hub; the Hub is only tried when no local copy exists.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sentisynth.errors import DataError  # noqa: F401  (re-exported: sentisynth.data.DataError)
from sentisynth.labels import clean_labels

log = logging.getLogger(__name__)


def require_file(path: str | os.PathLike, what: str = "file") -> Path:
    """`path` as a Path when it is a readable file; else a DataError that says which way it is not."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path} is a directory, not a {what}")
    if not path.is_file():
        raise DataError(f"missing {what}: {path}")
    return path


def read_json_input(path: str | os.PathLike, option: str) -> Any:
    """A JSON file given by the user (`option` names the setting): one clear line when it is missing or broken."""
    path = require_file(path, f"JSON file ({option})")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        where = (
            f"line {e.lineno}, column {e.colno}: {e.msg}" if isinstance(e, json.JSONDecodeError) else str(e)
        )
        raise DataError(f"{path} ({option}): not valid JSON ({where}); truncated?") from None


@dataclass(frozen=True)
class Split:
    """Texts with integer labels; `index` is each row's position in its source split (provenance)."""

    texts: list[str]
    labels: np.ndarray
    index: np.ndarray

    def __post_init__(self) -> None:
        if not (len(self.texts) == len(self.labels) == len(self.index)):
            raise ValueError("texts, labels and index must have the same length")

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, rows: Sequence[int] | np.ndarray) -> "Split":
        rows = np.asarray(rows, dtype=int)
        return Split([self.texts[i] for i in rows], self.labels[rows], self.index[rows])

    def class_counts(self, n_classes: int) -> np.ndarray:
        return np.bincount(self.labels, minlength=n_classes)

    @staticmethod
    def concat(*splits: "Split") -> "Split":
        return Split(
            [t for s in splits for t in s.texts],
            np.concatenate([s.labels for s in splits]).astype(int),
            np.concatenate([s.index for s in splits]).astype(int),
        )

    def fingerprint(self) -> str:
        """Content hash (texts + labels): a cache key that changes whenever the data does."""
        h = hashlib.sha256()
        for text, label in zip(self.texts, self.labels.tolist()):
            h.update(f"{label}\t{text}\n".encode())
        return h.hexdigest()[:16]


@dataclass(frozen=True)
class LabelledDataset:
    """A dataset with its official (or carved) train/val/test splits."""

    name: str
    label_names: list[str]
    train: Split
    val: Split
    test: Split
    source: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def n_classes(self) -> int:
        return len(self.label_names)


@dataclass(frozen=True)
class LowResourceData:
    """A simulated low-resource setting: a small labelled seed, the rest of train as a real pool."""

    dataset: LabelledDataset
    seed: Split
    pool: Split
    val: Split
    test: Split
    seed_size: int | str
    data_seed: int

    @property
    def label_names(self) -> list[str]:
        return self.dataset.label_names

    @property
    def n_classes(self) -> int:
        return self.dataset.n_classes

    def summary(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset.name,
            "source": self.dataset.source,
            "n_seed": len(self.seed),
            "n_pool": len(self.pool),
            "n_val": len(self.val),
            "n_test": len(self.test),
            "seed_class_counts": dict(zip(self.label_names, self.seed.class_counts(self.n_classes).tolist())),
        }


# --------------------------------------------------------------------------------------------------
# Reading and validating
# --------------------------------------------------------------------------------------------------


def _clean(texts: list[str], labels: np.ndarray, index: np.ndarray, where: str) -> Split:
    """Normalise white space and drop empty texts, counting and reporting them."""
    n_null = sum(1 for t in texts if t is None or t != t)  # JSON null, pandas NaN
    texts = [" ".join(str(t).split()) if t is not None and t == t else "" for t in texts]
    keep = np.array([bool(t) for t in texts], dtype=bool)
    n_empty = int((~keep).sum())
    if n_empty:
        log.warning("%s: dropped %d empty text(s) (%d of them null)", where, n_empty, n_null)
    return Split([t for t, k in zip(texts, keep) if k], labels[keep].astype(int), index[keep].astype(int))


def _check_labels(labels: np.ndarray, n_classes: int, where: str, line_offset: int = 1) -> None:
    bad = np.flatnonzero((labels < 0) | (labels >= n_classes))
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"{where}: line {i + line_offset}: label {int(labels[i])} is outside the label mapping "
            f"(0..{n_classes - 1}); {bad.size} such row(s)"
        )


def _read_lines(path: Path) -> list[str]:
    require_file(path)
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def _parse_int_labels(lines: list[str], path: Path) -> np.ndarray:
    out = np.empty(len(lines), dtype=int)
    for i, line in enumerate(lines):
        try:
            out[i] = int(line.strip())
        except ValueError:
            raise DataError(f"{path}: line {i + 1}: label {line.strip()!r} is not an integer") from None
    return out


def read_mapping(path: Path) -> list[str]:
    """TweetEval `mapping.txt`: `<id>\\t<name>` per line, ids 0..n-1."""
    names: dict[int, str] = {}
    for i, line in enumerate(_read_lines(path)):
        if not line.strip():
            continue
        parts = line.split("\t") if "\t" in line else line.split(None, 1)
        if len(parts) != 2:
            raise DataError(f"{path}: line {i + 1}: expected '<id><TAB><name>', got {line!r}")
        names[int(parts[0])] = parts[1].strip()
    if sorted(names) != list(range(len(names))):
        raise DataError(f"{path}: label ids must be 0..n-1, got {sorted(names)}")
    return [names[i] for i in range(len(names))]


def read_text_label_pair(text_path: Path, label_path: Path, n_classes: int) -> Split:
    """One TweetEval split: one text per line, one integer label per line, same order."""
    texts = _read_lines(text_path)
    labels = _parse_int_labels(_read_lines(label_path), label_path)
    if len(texts) != len(labels):
        raise DataError(
            f"{text_path} has {len(texts)} lines but {label_path} has {len(labels)}: "
            "text and label files must have the same length"
        )
    _check_labels(labels, n_classes, str(label_path))
    return _clean(texts, labels, np.arange(len(texts)), str(text_path))


def read_table(path: str | Path, sep: str | None = None) -> pd.DataFrame:
    """Read CSV/TSV/JSON Lines/Parquet by extension; a file without data rows is an error."""
    frame = _read_table(path, sep)
    if len(frame) == 0:
        raise DataError(f"{path}: no data rows (only a header, or empty)")
    return frame


def _read_table(path: str | Path, sep: str | None = None) -> pd.DataFrame:
    path = require_file(path)
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix == ".gz" else path.suffix.lower()
    try:
        if suffix.startswith(".parquet") or suffix == ".pq":
            return pd.read_parquet(path)
        if suffix.startswith(".jsonl") or suffix.startswith(".json"):
            return pd.read_json(path, lines=suffix.startswith(".jsonl"), dtype=False)
        if suffix.startswith(".tsv"):
            _check_rows(path, sep or "\t", 3)
            return pd.read_csv(path, sep=sep or "\t", dtype=str, keep_default_na=False, quoting=3)
        if suffix.startswith(".csv") or suffix.startswith(".txt"):
            _check_rows(path, sep or ",", 0)
            return pd.read_csv(path, sep=sep or ",", dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise DataError(
            f"{path}: could not be parsed: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
        ) from None
    raise DataError(
        f"{path}: unsupported file type {path.suffix!r} (use .csv, .tsv, .jsonl, .json or .parquet)"
    )


def _check_rows(path: Path, sep: str, quoting: int) -> None:
    """Every row has the header's field count and none repeats it (`labels.check_rows`); an undecodable or
    compressed file is left to pandas, which names it."""
    from sentisynth.labels import check_rows

    if path.suffix.lower() in (".gz", ".bz2", ".zip", ".xz"):
        return
    try:
        check_rows(path, sep, quoting)
    except (UnicodeDecodeError, csv.Error):
        return


def frame_to_split(
    df: pd.DataFrame, text_column: str, label_column: str, label_names: list[str], where: str
) -> Split:
    """Map a table's label column (ids or names) onto 0..n-1 using `label_names`."""
    for col in (text_column, label_column):
        if col not in df.columns:
            raise DataError(f"{where}: missing column {col!r} (columns: {', '.join(map(str, df.columns))})")
    name_to_id = {n: i for i, n in enumerate(label_names)}
    raw = df[label_column].tolist()
    labels = np.empty(len(raw), dtype=int)
    for i, value in enumerate(raw):
        if isinstance(value, (bool, np.bool_)):
            raise DataError(
                f"{where}: row {i + 1}, column {label_column!r}: label {value} is a boolean, "
                f"not a class name or id (known: {', '.join(label_names)})"
            )
        key = str(value).strip()
        if key in name_to_id:
            labels[i] = name_to_id[key]
        elif re.fullmatch(r"\d+(\.0+)?", key) and int(float(key)) < len(label_names):
            labels[i] = int(float(key))
        else:
            raise DataError(
                f"{where}: row {i + 1}, column {label_column!r}: unknown label {value!r} "
                f"(known: {', '.join(label_names)})"
            )
    return _clean(df[text_column].tolist(), labels, np.arange(len(df)), where)


def infer_label_names(values: Sequence[Any]) -> list[str]:
    """Label names from the values themselves: integers 0..n-1 keep their order, strings sort."""
    uniq = sorted(
        {str(v).strip() for v in values if not isinstance(v, (bool, np.bool_))}
    )  # booleans: rejected later
    if all(u.lstrip("-").isdigit() for u in uniq):
        ints = sorted(int(u) for u in uniq)
        if ints[0] < 0:
            raise DataError(f"negative integer labels {ints[0]} cannot be mapped; give data.label_names")
        return [str(i) for i in range(ints[-1] + 1)]
    return uniq


# --------------------------------------------------------------------------------------------------
# Dataset loaders: local directory first, Hub second
# --------------------------------------------------------------------------------------------------


def _resolve_data_dir(data_dir: str | os.PathLike | None) -> Path | None:
    if data_dir in (None, "", "null", "None"):
        env = os.environ.get("SENTISYNTH_DATA_DIR")
        data_dir = env if env else None
    return Path(data_dir).expanduser() if data_dir else None


def _load_hub(name: str, config: str | None, revision: str | None) -> Any:
    from datasets import load_dataset  # heavy import, only when the Hub is really used

    return load_dataset(name, config, revision=revision)


def _split_from_hub(ds: Any, text_column: str, label_column: str, n_classes: int, where: str) -> Split:
    labels = np.asarray(ds[label_column], dtype=int)
    _check_labels(labels, n_classes, where)
    return _clean(list(ds[text_column]), labels, np.arange(len(labels)), where)


def _no_data_error(name: str, local: Path | None, hub: str, hub_error: Exception) -> DataError:
    where = (
        f"local directory {local}"
        if local
        else "no local directory (set SENTISYNTH_DATA_DIR or paths.data_dir)"
    )
    return DataError(
        f"could not load {name}: looked in {where} and on the Hugging Face Hub ({hub}): "
        f"{type(hub_error).__name__}: {str(hub_error).splitlines()[0] if str(hub_error) else ''}"
    )


def load_tweet_eval(
    task: str = "emotion",
    data_dir: str | None = None,
    hub_name: str = "cardiffnlp/tweet_eval",
    hub_revision: str | None = None,
) -> LabelledDataset:
    """TweetEval task from `<data_dir>/tweeteval/<task>/` (official layout) or the Hub."""
    root = _resolve_data_dir(data_dir)
    folder = root / "tweeteval" / task if root else None
    if folder is not None and folder.is_dir():
        names = read_mapping(folder / "mapping.txt")
        splits = {
            s: read_text_label_pair(folder / f"{s}_text.txt", folder / f"{s}_labels.txt", len(names))
            for s in ("train", "val", "test")
        }
        return LabelledDataset(
            f"tweet_eval_{task}", names, splits["train"], splits["val"], splits["test"], str(folder)
        )
    if folder is not None and root is not None and root.exists():
        log.warning("%s not found; falling back to the Hub", folder)
    try:
        ds = _load_hub(hub_name, task, hub_revision)
    except Exception as e:  # noqa: BLE001 - re-raised as one clear error naming both places
        raise _no_data_error(f"TweetEval {task}", folder, f"{hub_name}/{task}", e) from e
    names = list(ds["train"].features["label"].names)
    splits = {
        ours: _split_from_hub(ds[theirs], "text", "label", len(names), f"{hub_name}/{task}:{theirs}")
        for ours, theirs in (("train", "train"), ("val", "validation"), ("test", "test"))
    }
    return LabelledDataset(
        f"tweet_eval_{task}", names, splits["train"], splits["val"], splits["test"], f"hub:{hub_name}"
    )


def load_sst2(
    data_dir: str | None = None,
    hub_name: str = "glue",
    hub_config: str = "sst2",
    hub_revision: str | None = None,
    val_fraction: float = 0.05,
    seed: int = 0,
) -> LabelledDataset:
    """SST-2 from `<data_dir>/sst2/{train,dev,test}.tsv` (GLUE TSV) or GLUE on the Hub.

    Locally the labelled `test.tsv` is the test split and `dev.tsv` the validation split. GLUE on the
    Hub has no labelled test: there the official validation split becomes test and validation is
    carved from train (stratified), which is logged and recorded in the dataset notes.
    """
    root = _resolve_data_dir(data_dir)
    folder = root / "sst2" if root else None
    names = ["negative", "positive"]
    if folder is not None and folder.is_dir():
        splits = {}
        for ours, fname in (("train", "train.tsv"), ("val", "dev.tsv"), ("test", "test.tsv")):
            df = read_table(folder / fname)
            text_col = "sentence" if "sentence" in df.columns else "content"
            splits[ours] = frame_to_split(df, text_col, "label", names, str(folder / fname))
        return LabelledDataset("sst2", names, splits["train"], splits["val"], splits["test"], str(folder))
    try:
        ds = _load_hub(hub_name, hub_config, hub_revision)
    except Exception as e:  # noqa: BLE001
        raise _no_data_error("SST-2", folder, f"{hub_name}/{hub_config}", e) from e
    full_train = _split_from_hub(ds["train"], "sentence", "label", 2, f"{hub_name}/{hub_config}:train")
    test = _split_from_hub(ds["validation"], "sentence", "label", 2, f"{hub_name}/{hub_config}:validation")
    train, val = carve_validation(full_train, val_fraction, seed, 2)
    note = "SST-2 from the Hub: GLUE's test labels are hidden, so test = GLUE validation and val is carved from train"
    log.warning(note)
    return LabelledDataset("sst2", names, train, val, test, f"hub:{hub_name}/{hub_config}", [note])


def _require_columns(df: pd.DataFrame, where: str, columns: Sequence[str]) -> None:
    for col in columns:
        if col not in df.columns:
            raise DataError(f"{where}: missing column {col!r} (columns: {', '.join(map(str, df.columns))})")


SPLIT_ALIASES = {
    "train": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
}


def frames_by_split_column(
    df: pd.DataFrame, path: str, split_column: str
) -> dict[str, tuple[pd.DataFrame, str]]:
    """One file's rows by its split column (train / val|validation|dev / test): {split: (rows, where)}."""
    split_values = df[split_column].astype(str).str.strip().str.lower()
    unknown = sorted(set(split_values) - set(SPLIT_ALIASES))
    if unknown:
        raise DataError(f"{path}: column {split_column!r}: unknown split value(s) {unknown}")
    mapped = split_values.map(SPLIT_ALIASES)
    frames = {}
    for s in ("train", "val", "test"):
        part = df[mapped == s].reset_index(drop=True)
        if len(part):
            frames[s] = (part, f"{path} [{split_column}={s}]")
    if "train" not in frames or "test" not in frames:
        raise DataError(f"{path}: column {split_column!r} must contain at least train and test rows")
    return frames


MIN_EVAL_PER_CLASS = 5  # fewer val/test posts of a class than this: its F1 rests on a handful (a warning)


def check_fractions(whole: Split, fractions: list[float], names: Sequence[str], where: str) -> None:
    """Each share in [0, 1] and none 0; every class large enough for one post in each split (else one line
    saying why the training split would be empty); a warning when val or test gets few posts of a class."""
    splits = ("train", "val", "test")
    for share, split in zip(fractions, splits):
        if not 0 < share <= 1:
            raise DataError(
                f"data.fractions={fractions}: the {split} share {share} must be in (0, 1] (a share of 0 "
                f"would leave {split} one post per class); or give data.{split}_path"
            )
    counts = whole.class_counts(len(names))
    small = np.flatnonzero((counts > 0) & (counts < 3))
    if small.size:
        c = int(small[0])
        raise DataError(
            f"{where}: {small.size} of {len(names)} classes have fewer than 3 posts (e.g. {names[c]!r}: "
            f"{counts[c]}); each class needs one post in train, val and test, so the training split would be "
            "empty of them: add posts, merge or drop those classes, or give data.train_path/val_path/test_path"
        )
    present = counts[counts > 0]
    low = max(1.0, min(fractions[1], fractions[2]) * (int(present.min()) if present.size else 0))
    if present.size and low < MIN_EVAL_PER_CLASS:
        c = int(np.flatnonzero(counts == present.min())[0])
        log.warning(
            "%s: with data.fractions=%s class %r (%d posts) gets about %.1f post(s) in val or test: its "
            "scores rest on very few posts (aim for >= %d per class)",
            where,
            fractions,
            names[c],
            counts[c],
            low,
            MIN_EVAL_PER_CLASS,
        )


def split_by_fractions(
    whole: Split, fractions: Sequence[float], seed: int, names: Sequence[str], where: str
) -> tuple[Split, Split, Split]:
    """Stratified train / val / test of one file without a split column."""
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-6:
        raise DataError(f"data.fractions must be three numbers summing to 1, got {list(fractions)}")
    check_fractions(whole, list(fractions), names, where)
    rest, test = carve_validation(whole, fractions[2], seed, len(names), names, f"{where} (before splitting)")
    train, val = carve_validation(
        rest,
        fractions[1] / (fractions[0] + fractions[1]),
        seed + 1,
        len(names),
        names,
        f"{where} (train + val part)",
    )
    return train, val, test


def separate_files(
    paths: dict[str, str | None],
    label_column: str,
    label_names: Sequence[str] | None,
    normalize: bool = True,
) -> tuple[dict[str, tuple[pd.DataFrame, str]], list[str]]:
    """The frames of `train_path`/`val_path`/`test_path` (labels cleaned together: `sentisynth.labels`) and
    the label names (given, or inferred from all)."""
    frames = {s: (read_table(p), str(p)) for s, p in paths.items() if p}
    if "test" not in frames:
        raise DataError("data=files with separate files needs data.test_path")
    for df, where in frames.values():
        _require_columns(df, where, [label_column])
    cleaned = clean_labels(
        [(df[label_column].tolist(), where) for df, where in frames.values()],
        label_column,
        label_names,
        normalize,
    )
    for (df, _), col in zip(frames.values(), cleaned):
        df[label_column] = pd.Series(col, index=df.index, dtype=object)
    if label_names:
        return frames, list(label_names)
    return frames, infer_label_names([v for df, _ in frames.values() for v in df[label_column].tolist()])


def _file_label_names(
    df: pd.DataFrame, label_column: str, where: str, label_names: Sequence[str] | None, normalize: bool
) -> list[str]:
    """Clean one file's label column in place (`sentisynth.labels.clean_labels`); the label names."""
    (labels,) = clean_labels([(df[label_column].tolist(), where)], label_column, label_names, normalize)
    df[label_column] = pd.Series(labels, index=df.index, dtype=object)
    return list(label_names) if label_names else infer_label_names(df[label_column].tolist())


def load_files(
    path: str | None = None,
    train_path: str | None = None,
    val_path: str | None = None,
    test_path: str | None = None,
    text_column: str = "text",
    label_column: str = "label",
    label_names: Sequence[str] | None = None,
    split_column: str = "split",
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    name: str = "files",
    normalize_labels: bool = True,
) -> LabelledDataset:
    """Any CSV/TSV/JSONL/Parquet with a text and a label column.

    Either one file (`path`), split by its `split_column` (values train/val|validation|dev/test) when
    it has one, else stratified by `fractions`; or separate `train_path`/`val_path`/`test_path`
    (a missing val is carved from train).
    """
    if path and any((train_path, val_path, test_path)):
        raise DataError("give either data.path or data.train_path/val_path/test_path, not both")
    if not path and not train_path:
        raise DataError("data=files needs data.path or data.train_path")
    if path:
        df = read_table(path)
        _require_columns(df, str(path), [text_column, label_column])
        names = _file_label_names(df, label_column, str(path), label_names, normalize_labels)
        if not (split_column and split_column in df.columns):
            whole, note = drop_duplicate_rows(
                frame_to_split(df, text_column, label_column, names, str(path)), str(path)
            )
            return LabelledDataset(
                name,
                names,
                *split_by_fractions(whole, fractions, seed, names, str(path)),
                str(path),
                [note] if note else [],
            )
        frames = frames_by_split_column(df, str(path), split_column)
    else:
        frames, names = separate_files(
            {"train": train_path, "val": val_path, "test": test_path},
            label_column,
            label_names,
            normalize_labels,
        )
    splits = {
        s: frame_to_split(df, text_column, label_column, names, where) for s, (df, where) in frames.items()
    }
    notes = []
    if "val" not in splits:
        splits["train"], splits["val"] = carve_validation(
            splits["train"], fractions[1], seed, len(names), names, f"{frames['train'][1]} (train split)"
        )
        notes.append("no validation split given: carved from train")
    return LabelledDataset(
        name, names, splits["train"], splits["val"], splits["test"], str(path or train_path), notes
    )


# --------------------------------------------------------------------------------------------------
# Low-resource simulation
# --------------------------------------------------------------------------------------------------


def largest_remainder(share: np.ndarray, n: int, cap: np.ndarray | None = None) -> np.ndarray:
    """Whole counts summing to `n` (at most `cap.sum()`): the floor of each class's `share`, then one more
    per class in order of the largest fractional part (ties: the lower class id), never above `cap`; floors
    that add up to more than `n` give back from the largest class first."""
    share = np.asarray(share, dtype=float)
    cap = np.full(len(share), n, dtype=int) if cap is None else np.asarray(cap, dtype=int)
    n = int(min(n, cap.sum()))
    out = np.minimum(np.floor(share).astype(int), cap)
    while out.sum() > n:  # shares clipped at 0 (the seed's one-per-class floor) can floor above n
        out[int(np.argmax(out))] -= 1
    while out.sum() < n:
        remainder = np.where(out < cap, share - out, -np.inf)
        out[int(np.argmax(remainder))] += 1
    return out


def water_fill(n: int, totals: np.ndarray, cap: np.ndarray | None = None) -> np.ndarray:
    """`n` extra rows, one at a time to the class with the smallest total so far (ties: the lower id)."""
    totals = np.asarray(totals, dtype=float).copy()
    cap = np.full(len(totals), n, dtype=int) if cap is None else np.asarray(cap, dtype=int)
    extra = np.zeros(len(totals), dtype=int)
    for _ in range(int(min(n, cap.sum()))):
        open_ = np.flatnonzero(extra < cap)
        c = open_[np.argmin(totals[open_])]
        extra[c] += 1
        totals[c] += 1
    return extra


def target_class_counts(
    n: int, reference_counts: np.ndarray, available: np.ndarray, balance: bool
) -> np.ndarray:
    """How many extra rows per class: proportional to `reference_counts` (stratified), or topping up the
    smallest classes of reference + extra first (`balance`). Never more than `available`."""
    if balance:
        return water_fill(n, reference_counts, available)
    n = int(min(n, available.sum()))
    return largest_remainder(reference_counts / max(reference_counts.sum(), 1) * n, n, available)


def parse_count(value: Any, name: str) -> int | str:
    """A count argument: a whole number >= 0, or `full`. Anything else (a negative number, a fraction such
    as 0.5 or 5.0, a boolean) is a `DataError` naming the argument: a count never means a share."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "full":
            return "full"
        if text.isdigit():
            return int(text)
    elif isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) and value >= 0:
        return int(value)
    raise DataError(f"{name} must be a whole number of posts >= 0 or 'full', got {value!r}")


def stratified_sample(
    labels: np.ndarray,
    n: int,
    n_classes: int,
    rng: np.random.Generator,
    names: Sequence[str] | None = None,
    where: str = "the training split",
) -> np.ndarray:
    """Row positions of a stratified sample of `n` rows with at least one row of every class.

    Per-class quotas follow the class proportions (largest remainder), each at least 1 and at most
    the class size; a class with no rows, or `n < n_classes`, is an error.
    """
    labels = np.asarray(labels, dtype=int)
    counts = np.bincount(labels, minlength=n_classes)
    missing = np.flatnonzero(counts == 0)
    if missing.size:
        named = ", ".join(
            repr(names[c]) if names is not None and c < len(names) else f"id {c}" for c in missing
        )
        raise DataError(
            f"{where}: class {named} has no examples (every class needs at least one to draw "
            f"a stratified sample; give data.label_names only for classes the file holds)"
        )
    if n < n_classes:
        raise DataError(
            f"seed size {n} is smaller than the number of classes ({n_classes}): need one per class"
        )
    if n > len(labels):
        raise DataError(f"seed size {n} is larger than the training set ({len(labels)})")
    quota = np.ones(n_classes, dtype=int)
    remaining = n - n_classes
    if remaining:
        room = counts - 1
        quota += largest_remainder(np.clip(counts / counts.sum() * n - 1, 0, room), remaining, room)
    rows = []
    for c in range(n_classes):
        members = np.flatnonzero(labels == c)
        rows.append(rng.choice(members, size=quota[c], replace=False))
    return np.sort(np.concatenate(rows))


def carve_validation(
    split: Split,
    fraction: float,
    seed: int,
    n_classes: int,
    names: Sequence[str] | None = None,
    where: str = "the training split",
) -> tuple[Split, Split]:
    """Stratified hold-out of `fraction` of a split: (rest, held_out), disjoint."""
    n_val = max(n_classes, int(round(len(split) * fraction)))
    rows = stratified_sample(split.labels, n_val, n_classes, np.random.default_rng(seed), names, where)
    mask = np.ones(len(split), dtype=bool)
    mask[rows] = False
    return split.subset(np.flatnonzero(mask)), split.subset(rows)


def make_low_resource(
    dataset: LabelledDataset, seed_size: int | str = 1000, seed: int = 0
) -> LowResourceData:
    """Draw the labelled seed (stratified); the rest of train is the real pool."""
    n_train = len(dataset.train)
    if n_train == 0:
        raise DataError(f"{dataset.name}: the training split is empty")
    if len(dataset.test) == 0:
        raise DataError(f"{dataset.name}: the test split is empty")
    if dataset.n_classes < 2:
        raise DataError(
            f"{dataset.source or dataset.name}: a classifier needs at least 2 classes, found "
            f"{dataset.n_classes} ({', '.join(map(repr, dataset.label_names))})"
        )
    seed_size = parse_count(seed_size, "data.seed_size")
    where = f"{dataset.source or dataset.name} (train split)"
    if seed_size == "full":
        seed_rows = np.arange(n_train)
        counts = dataset.train.class_counts(dataset.n_classes)
        if (counts == 0).any():
            named = ", ".join(repr(dataset.label_names[c]) for c in np.flatnonzero(counts == 0))
            raise DataError(f"{where}: class {named} has no examples")
    else:
        seed_rows = stratified_sample(
            dataset.train.labels,
            int(seed_size),
            dataset.n_classes,
            np.random.default_rng(seed),
            dataset.label_names,
            where,
        )
    mask = np.ones(n_train, dtype=bool)
    mask[seed_rows] = False
    return LowResourceData(
        dataset=dataset,
        seed=dataset.train.subset(seed_rows),
        pool=dataset.train.subset(np.flatnonzero(mask)),
        val=dataset.val,
        test=dataset.test,
        seed_size=seed_size,
        data_seed=seed,
    )


def drop_duplicate_rows(split: Split, where: str) -> tuple[Split, str | None]:
    """Keep the first of rows whose texts are equal (case and white space ignored), before any splitting,
    so no post can land in both train and test. Returns the split and a note (None when nothing repeated)."""
    first: dict[str, int] = {}
    conflicts = 0
    keep = []
    for i, (text, label) in enumerate(zip(split.texts, split.labels.tolist())):
        key = " ".join(text.lower().split())
        if key in first:
            conflicts += int(split.labels[first[key]] != label)
            continue
        first[key] = i
        keep.append(i)
    n_dup = len(split) - len(keep)
    if not n_dup:
        return split, None
    note = (
        f"{where}: dropped {n_dup} duplicate row(s) before splitting (same text; {conflicts} of them "
        "with a different label, the first row's label kept)"
    )
    log.warning(note)
    return split.subset(keep), note


def read_corpus(path: str | os.PathLike, max_lines: int | None = None) -> list[str]:
    """Unlabelled posts, one per line: white space normalised, empty lines skipped."""
    path = require_file(path, "file (an unlabelled corpus, one post per line)")
    with open(path, encoding="utf-8") as f:
        lines = [" ".join(line.split()) for line in f]
    lines = [line for line in lines if line]
    return lines[:max_lines] if max_lines else lines


DATASETS = {
    "tweet_eval": load_tweet_eval,
    "sst2": load_sst2,
    "files": load_files,
}  # data=hub: sentisynth.hub_data


def load_data(loader: str, seed_size: int | str = 1000, seed: int = 0, **kwargs: Any) -> LowResourceData:
    """Hydra entry point (`data` config group): load a dataset and draw the low-resource seed."""
    if loader not in DATASETS:
        raise DataError(f"unknown data loader {loader!r} (known: {', '.join(DATASETS)})")
    kwargs = {k: v for k, v in kwargs.items() if not k.startswith("_")}
    split_seed = kwargs.pop("split_seed", None)  # the val/test split's own seed: null follows `seed`
    if loader in ("files", "sst2"):
        kwargs.setdefault("seed", seed if split_seed is None else split_seed)
    return low_resource(DATASETS[loader](**kwargs), seed_size, seed)


def low_resource(dataset: LabelledDataset, seed_size: int | str, seed: int) -> LowResourceData:
    """`make_low_resource`, logged: what every `data` config's entry point returns."""
    data = make_low_resource(dataset, seed_size, seed)
    s = data.summary()
    log.info(
        "data %s (%s): seed %d, pool %d, val %d, test %d; seed classes %s",
        s["dataset"],
        s["source"],
        s["n_seed"],
        s["n_pool"],
        s["n_val"],
        s["n_test"],
        s["seed_class_counts"],
    )
    return data
