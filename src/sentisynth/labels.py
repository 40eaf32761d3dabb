"""A user file's label column, checked before names are inferred, so classes can never split silently.

`Joy`/`joy`/`Anger `/`anger` would be eight classes (macro-F1 0.165 instead of 0.366, no word): variants that
differ only by case or white space are named in a warning and merged (`data.normalize_labels`, default on).
A list-typed Parquet label `['joy']` is the label `joy`, not a class named "['joy']". A JSONL column mixing
ids and names (`2` and `"optimism"`) cannot be mapped without `data.label_names`: one error naming both forms
and a row of each. A column of only true/false values needs `data.label_names` to say which class is which.
Also here: delimited files whose rows do not match their header (a stray tab, a repeated header row).
"""

from __future__ import annotations

import csv
import logging
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sentisynth.errors import DataError

log = logging.getLogger(__name__)

_ID = re.compile(r"-?\d+(\.0+)?")


def _unwrap(value: Any, row: int, where: str, column: str) -> Any:
    """A one-element list or array (list-typed Parquet column) is its element; more or none is an error."""
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
        if len(items) != 1:
            raise DataError(
                f"{where}: row {row}, column {column!r}: {len(items)} labels {items!r}; "
                "one label per row is supported (multi-label data is not)"
            )
        return items[0]
    return value


def fold(label: str) -> str:
    """Case and white space do not make a class: `Anger ` and `anger` fold alike."""
    return " ".join(label.split()).casefold()


def _is_bool(v: Any) -> bool:
    return isinstance(v, (bool, np.bool_))


def check_forms(values: Sequence[Any], where: str, column: str) -> None:
    """Without `label_names`: ids and names mixed, or only booleans, is one error."""
    if values and all(_is_bool(v) for v in values):
        raise DataError(
            f"{where}: column {column!r} holds only true/false values; give data.label_names "
            "(e.g. data.label_names=[negative,positive]: false is the first, true the second)"
        )
    ids = [i for i, v in enumerate(values) if not _is_bool(v) and _ID.fullmatch(str(v).strip())]
    names = [i for i, v in enumerate(values) if not _is_bool(v) and not _ID.fullmatch(str(v).strip())]
    if ids and names:
        raise DataError(
            f"{where}: column {column!r} mixes class ids and names, e.g. {values[ids[0]]!r} (row {ids[0] + 1}) "
            f"and {values[names[0]]!r} (row {names[0] + 1}); use one form, or give data.label_names "
            "(ids index into it)"
        )


def merge_map(values: Sequence[Any], label_names: Sequence[str] | None) -> dict[str, str]:
    """{variant: canonical} for the labels that differ only by case/space from another (or from a given name).
    The canonical form: the given name, else the most frequent variant (ties: the first in sorted order)."""
    strings = Counter(str(v) for v in values if not _is_bool(v) and not _ID.fullmatch(str(v).strip()))
    groups: dict[str, list[str]] = {}
    for s in sorted(strings):
        groups.setdefault(fold(s), []).append(s)
    given = {fold(n): n for n in label_names or ()}
    out = {}
    for key, variants in groups.items():
        canonical = given.get(key) or max(variants, key=lambda v: (strings[v], -variants.index(v)))
        for v in variants:
            if v.strip() != canonical:
                out[v] = canonical
    return out


def clean_labels(
    columns: list[tuple[list[Any], str]],
    column: str,
    label_names: Sequence[str] | None,
    normalize: bool = True,
) -> list[list[Any]]:
    """The label columns of one dataset's files, each with where it comes from (all files together: a variant
    only in test counts too): unwrapped, checked and, with `normalize`, case/space variants merged (warned
    either way)."""
    cols = [[_unwrap(v, i + 1, where, column) for i, v in enumerate(col)] for col, where in columns]
    if not label_names:
        for col, (_, where) in zip(cols, columns):
            check_forms(col, where, column)
        check_forms([v for col in cols for v in col], " + ".join(w for _, w in columns), column)
    merges = merge_map([v for col in cols for v in col], label_names)
    if not merges:
        return cols
    where = columns[0][1] if len(columns) == 1 else " + ".join(w for _, w in columns)
    pairs = ", ".join(f"{v!r} -> {c!r}" for v, c in sorted(merges.items())[:8])
    more = f" (+{len(merges) - 8} more)" if len(merges) > 8 else ""
    if not normalize:
        log.warning(
            "%s: labels that differ only by case or spaces are kept as separate classes "
            "(data.normalize_labels=false): %s%s",
            where,
            pairs,
            more,
        )
        return cols
    log.warning("%s: merged labels that differ only by case or spaces: %s%s", where, pairs, more)
    return [[merges.get(str(v), v) if not _is_bool(v) else v for v in col] for col in cols]


def check_rows(path: Path, sep: str, quoting: int) -> None:
    """A delimited file's rows each have the header's field count, and none repeats the header: pandas would
    shift the columns (a stray tab in the first row becomes an index) or read the header as a class."""
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter=sep, quoting=quoting)
        header = next(reader, None)
        if not header:
            return
        row = 0
        for fields in reader:
            if not fields or fields == [""]:
                continue
            row += 1
            if fields == header:
                raise DataError(
                    f"{path}: row {row} (line {reader.line_num}) repeats the header "
                    f"({sep.join(header)!r}); remove it (files joined with their headers?)"
                )
            if len(fields) != len(header):
                raise DataError(
                    f"{path}: row {row} (line {reader.line_num}) has {len(fields)} fields, the header has "
                    f"{len(header)} ({', '.join(header)}); a stray {'tab' if sep == chr(9) else repr(sep)} "
                    "in the text? Quote or remove it"
                )
