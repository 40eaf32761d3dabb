"""Leak guard: no row a classifier trains on may copy a val or test post.

Checked the way the dedup filter checks (its normalisation, MinHash LSH and verified word n-gram Jaccard:
`LeakGuard` *is* a `DedupFilter` restricted to val and test), but outside the optional filter chain:
`train.run` passes every training set through `guard_training_set` (seed + real, pseudo, or synthetic rows,
from the pipeline or from `augment.path`), and the chain builder appends `LeakGuard` to every chain.
Overlapping rows are dropped and counted (`leak/*` metrics, one log line), or, with
`leak_guard.on_overlap=error`, the run stops with one line. It cannot be switched off.
"""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np

from sentisynth.data import DataError, LowResourceData, Split
from sentisynth.filters.base import FilterContext
from sentisynth.filters.dedup import DedupFilter

log = logging.getLogger(__name__)

ACTIONS = ("drop", "error")


class LeakGuard(DedupFilter):
    """Exact (after normalisation) and near-duplicate check against val and test only."""

    name = "leak_guard"

    def __init__(self, threshold: float = 0.7, ngram: int = 2, num_perm: int = 64) -> None:
        super().__init__(
            against=("test", "val"), threshold=threshold, ngram=ngram, num_perm=num_perm, within=False
        )


# One filter context per val/test content for the whole process: its reference index (val + test) and the
# MinHash of every row checked so far live on, so the cells of a study, which check the same seed rows and
# draw from the same generated sets, pay for each text once (1-1.5 s a cell before: index and hashes rebuilt).
_CONTEXTS: dict[str, FilterContext] = {}


def _guard_context(data: LowResourceData) -> FilterContext:
    key = "|".join(f"{s.fingerprint()}:{hash(np.asarray(s.index).tobytes())}" for s in (data.val, data.test))
    if key not in _CONTEXTS:
        if len(_CONTEXTS) >= 4:  # a process that walks many datasets keeps only the latest few
            _CONTEXTS.clear()
        _CONTEXTS[key] = FilterContext(data=data)
    return _CONTEXTS[key]


def guard_training_set(
    train: Split, sources: list[str], data: LowResourceData, on_overlap: str = "drop", threshold: float = 0.7
) -> tuple[np.ndarray, dict[str, int]]:
    """Positions of the rows of `train` that copy no val/test post, and the counts (`leak/...` metrics).

    `sources[i]` names where row i came from (seed, real, pseudo, synthetic), for the counts and the message.
    """
    if on_overlap not in ACTIONS:
        raise DataError(
            f"leak_guard.on_overlap must be one of {', '.join(ACTIONS)}, got {on_overlap!r} "
            "(the guard cannot be switched off)"
        )
    samples = [
        {"id": str(i), "text": t, "label": int(y)} for i, (t, y) in enumerate(zip(train.texts, train.labels))
    ]
    _, dropped = LeakGuard(threshold=threshold).apply(samples, _guard_context(data))
    rows = sorted(int(s["id"]) for s in dropped)
    kinds = Counter(s["reject_reason"].split(":")[0] for s in dropped)
    by_source = Counter(sources[i] for i in rows)
    counts = {
        "leak/dropped": len(rows),
        "leak/dropped_exact": kinds.get("exact_duplicate", 0),
        "leak/dropped_near": kinds.get("near_duplicate", 0),
        **{f"leak/dropped/{s}": by_source.get(s, 0) for s in dict.fromkeys(sources)},
    }
    keep = np.setdiff1d(np.arange(len(train)), rows)
    if not rows:
        return keep, counts
    first = next(s for s in dropped if int(s["id"]) == rows[0])
    detail = f"{sources[rows[0]]} row {train.index[rows[0]]} ({first['reject_detail']})"
    if on_overlap == "error":
        raise DataError(
            f"leak guard: {len(rows)} training row(s) copy val/test posts, e.g. {detail}; "
            "set leak_guard.on_overlap=drop to drop them"
        )
    log.warning(
        "leak guard: dropped %d training row(s) that copy val/test posts (exact %d, near %d; by source %s), "
        "e.g. %s",
        len(rows),
        counts["leak/dropped_exact"],
        counts["leak/dropped_near"],
        dict(by_source),
        detail,
    )
    return keep, counts
