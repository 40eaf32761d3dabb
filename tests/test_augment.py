"""Augmentation arms: counts, class distributions, and no overlap with the seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sentisynth.augment import NoAugment, RealAugment, resolve_count, target_class_counts
from sentisynth.data import load_data


@settings(max_examples=80, deadline=None)
@given(
    ref=st.lists(st.integers(1, 50), min_size=2, max_size=5),
    avail_extra=st.lists(st.integers(0, 50), min_size=5, max_size=5),
    n=st.integers(0, 200),
    balance=st.booleans(),
)
def test_target_class_counts(ref: list[int], avail_extra: list[int], n: int, balance: bool) -> None:
    ref_a = np.array(ref)
    available = np.array(avail_extra[: len(ref)])
    extra = target_class_counts(n, ref_a, available, balance)
    assert extra.sum() == min(n, available.sum())
    assert (extra >= 0).all() and (extra <= available).all()
    if balance and n <= available.sum():
        totals = ref_a + extra
        # a class still below the largest total could not be topped up further
        for c in range(len(ref)):
            if totals[c] < totals.max() - 1:
                assert extra[c] == available[c] or extra.sum() == n


def test_resolve_count() -> None:
    assert resolve_count(0.5, 1000) == 500
    assert resolve_count(1000, 250) == 1000


def test_real_augment_draws_from_pool(tiny_data_dir: Path) -> None:
    data = load_data("tweet_eval", seed_size=20, seed=0, task="emotion", data_dir=str(tiny_data_dir))
    aug = RealAugment(n=40, seed=0)(data)
    assert len(aug.split) == 40 and aug.source == "real"
    assert set(aug.split.index.tolist()) <= set(data.pool.index.tolist())
    assert aug.split.class_counts(4).tolist() == [10, 10, 10, 10]
    assert RealAugment(n=40, seed=0)(data).split.index.tolist() == aug.split.index.tolist()
    too_many = RealAugment(n=10_000, seed=0)(data)
    assert len(too_many.split) == len(data.pool)
    assert len(NoAugment()(data).split) == 0


def test_real_augment_balance_tops_up_smallest(shared_data: Path) -> None:
    data = load_data("tweet_eval", seed_size=500, seed=0, task="emotion", data_dir=str(shared_data))
    seed_counts = data.seed.class_counts(4)
    aug = RealAugment(n=300, balance=True, seed=0)(data)
    totals = seed_counts + aug.split.class_counts(4)
    assert aug.split.class_counts(4)[0] == 0  # anger is the largest class: nothing added
    assert totals[2] > seed_counts[2] + 100  # optimism, the smallest, gets the most
