"""Augmentation arms: what gets added to the seed before the downstream classifier trains.

Each arm is a small callable `(data) -> Augmentation`; `train.py` concatenates the seed with it.
Real and synthetic expansion draw the same count and class distribution so they compare fairly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sentisynth.data import DataError, LowResourceData, Split, stratified_sample

log = logging.getLogger(__name__)


@dataclass
class Augmentation:
    """Extra labelled rows, where they came from, and optional per-row weights/soft labels."""

    split: Split
    source: str  # "none" | "real" | "synthetic" | "pseudo"
    sample_weight: np.ndarray | None = None
    soft_labels: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)


def resolve_count(n: int | float, n_seed: int) -> int:
    """`n` is a count, or a float below 10 read as a ratio of the seed size (0.5 -> half the seed)."""
    if isinstance(n, float) and n < 10:
        return int(round(n * n_seed))
    if int(n) < 0:
        raise DataError(f"augment.n must be >= 0, got {n}")
    return int(n)


def target_class_counts(
    n: int, reference_counts: np.ndarray, available: np.ndarray, balance: bool
) -> np.ndarray:
    """How many extra rows per class.

    Stratified: proportional to `reference_counts` (largest remainder). Balanced: top up the
    smallest classes first (water filling over reference + extra). Never more than `available`.
    """
    k = len(reference_counts)
    n = int(min(n, available.sum()))
    extra = np.zeros(k, dtype=int)
    if n == 0:
        return extra
    if balance:
        totals = reference_counts.astype(float).copy()
        for _ in range(n):
            open_ = np.flatnonzero(extra < available)
            c = open_[np.argmin(totals[open_])]
            extra[c] += 1
            totals[c] += 1
        return extra
    share = reference_counts / max(reference_counts.sum(), 1) * n
    extra = np.minimum(np.floor(share).astype(int), available)
    while extra.sum() < n:
        room = extra < available
        remainder = np.where(room, share - extra, -np.inf)
        extra[int(np.argmax(remainder))] += 1
    return extra


def sample_per_class(split: Split, per_class: np.ndarray, rng: np.random.Generator) -> Split:
    rows = [
        rng.choice(np.flatnonzero(split.labels == c), size=int(k), replace=False)
        for c, k in enumerate(per_class)
        if k > 0
    ]
    return split.subset(np.sort(np.concatenate(rows)) if rows else np.array([], dtype=int))


class NoAugment:
    """Seed only. `n` is accepted and ignored so one sweep can set `augment.n` across all arms."""

    name = "none"

    def __init__(self, n: int | float = 0, **_: Any) -> None:
        self.n = n

    def __call__(self, data: LowResourceData, **_: Any) -> Augmentation:
        return Augmentation(Split([], np.array([], dtype=int), np.array([], dtype=int)), "none")


class RealAugment:
    """`n` more real labelled posts from the pool: stratified like the seed, or balancing classes."""

    name = "real"

    def __init__(self, n: int | float = 1000, balance: bool = False, seed: int = 0) -> None:
        self.n, self.balance, self.seed = n, balance, seed

    def class_counts(self, data: LowResourceData) -> np.ndarray:
        n = resolve_count(self.n, len(data.seed))
        available = data.pool.class_counts(data.n_classes)
        if n > available.sum():
            log.warning("augment.n=%d but the real pool holds only %d posts: using all of them", n, available.sum())
        reference = data.seed.class_counts(data.n_classes)
        return target_class_counts(n, reference, available, self.balance)

    def __call__(self, data: LowResourceData, **_: Any) -> Augmentation:
        per_class = self.class_counts(data)
        rng = np.random.default_rng(self.seed + 7919)
        split = sample_per_class(data.pool, per_class, rng)
        return Augmentation(split, "real", info={"per_class": per_class.tolist(), "balance": self.balance})


__all__ = ["Augmentation", "NoAugment", "RealAugment", "resolve_count", "target_class_counts", "stratified_sample"]
