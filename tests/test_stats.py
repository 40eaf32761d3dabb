"""sentisynth.stats on synthetic predictions with a known answer: vectorised = naive, exact = approximate."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.stats import false_discovery_control
from sklearn.metrics import f1_score

from sentisynth import stats

K = 4


def _system(gold: np.ndarray, accuracy: float, seed: int) -> np.ndarray:
    """Predictions right with probability `accuracy`, else a uniformly random class."""
    rng = np.random.default_rng(seed)
    pred = gold.copy()
    wrong = rng.random(len(gold)) > accuracy
    pred[wrong] = rng.integers(0, K, wrong.sum())
    return pred


@pytest.fixture
def gold() -> np.ndarray:
    return np.random.default_rng(0).choice(K, size=600, p=[0.4, 0.3, 0.1, 0.2])


def test_f1_scores_equal_sklearn(gold: np.ndarray) -> None:
    pred = _system(gold, 0.6, 1)
    got = stats.f1_scores(gold, pred, K)
    assert got[:K] == pytest.approx(f1_score(gold, pred, labels=range(K), average=None, zero_division=0))
    assert got[K] == pytest.approx(f1_score(gold, pred, labels=range(K), average="macro", zero_division=0))
    never = np.zeros_like(gold)  # classes never predicted nor... get F1 0, as sklearn's zero_division=0
    assert stats.f1_scores(gold, never, K)[1:K].tolist() == [0.0, 0.0, 0.0]


def test_bootstrap_equals_the_naive_loop(gold: np.ndarray) -> None:
    """Each vectorised replicate is sklearn's F1 on the resampled posts (the same resample weights)."""
    pred = _system(gold, 0.55, 2)
    samples = stats.bootstrap_f1(gold, pred[None, None], K, n_boot=30, seed=5)[:, 0]
    weights = stats.resample_weights(len(gold), 30, np.random.default_rng(5)).astype(int)
    for b in range(30):
        rows = np.repeat(np.arange(len(gold)), weights[b])
        assert samples[b, K] == pytest.approx(
            f1_score(gold[rows], pred[rows], labels=range(K), average="macro", zero_division=0), abs=1e-6
        )
    assert weights.sum(axis=1).tolist() == [len(gold)] * 30


def test_bootstrap_interval_covers_and_shrinks(gold: np.ndarray) -> None:
    pred = _system(gold, 0.6, 3)
    point = stats.f1_scores(gold, pred, K)[K]
    wide = stats.bootstrap_f1(gold[:150], pred[None, None, :150], K, 2000)[:, 0, K]
    narrow = stats.bootstrap_f1(gold, pred[None, None], K, 2000)[:, 0, K]
    lo, hi = stats.percentile_interval(narrow)
    assert lo < point < hi
    assert np.std(wide) > 1.5 * np.std(narrow)  # 4x the posts: about half the spread
    perfect = stats.bootstrap_f1(gold, gold[None, None], K, 200)[:, 0, K]
    assert stats.percentile_interval(perfect) == (1.0, 1.0)


def test_seed_resampling_mixes_seeds(gold: np.ndarray) -> None:
    """Two seeds, one perfect and one always wrong: replicates are 1, 0 or their mean, about half of them 0.5."""
    wrong = (gold + 1) % K
    samples = stats.bootstrap_f1(gold, np.stack([gold, wrong])[None], K, 4000)[:, 0, K]
    assert set(np.round(samples, 6)) <= {0.0, 0.5, 1.0}
    assert np.mean(samples == 0.5) == pytest.approx(0.5, abs=0.03)


def test_identical_systems_give_p_one_and_a_zero_interval(gold: np.ndarray) -> None:
    a = np.stack([_system(gold, 0.6, s) for s in range(3)])
    assert stats.randomization_test(gold, a, a.copy(), K, 999).tolist() == [1.0] * (K + 1)
    diff = np.diff(stats.bootstrap_f1(gold, np.stack([a, a]), K, 500)[..., K], axis=1)
    assert np.all(diff == 0)


def test_randomization_matches_the_exact_test() -> None:
    """12 posts where two systems disagree: all 4,096 swaps enumerated give the exact p; the sampled one is close."""
    rng = np.random.default_rng(1)
    gold = rng.integers(0, K, 40)
    a, b = gold.copy(), gold.copy()
    idx = rng.choice(40, 12, replace=False)
    a[idx[:9]] = (gold[idx[:9]] + 1) % K  # a wrong on 9 of them, b wrong on the other 3
    b[idx[9:]] = (gold[idx[9:]] + 2) % K
    observed = stats.f1_scores(gold, a, K)[K] - stats.f1_scores(gold, b, K)[K]
    hits = 0
    for swaps in itertools.product([0, 1], repeat=len(idx)):
        sa, sb = a.copy(), b.copy()
        moved = idx[np.array(swaps, dtype=bool)]
        sa[moved], sb[moved] = b[moved], a[moved]
        d = stats.f1_scores(gold, sa, K)[K] - stats.f1_scores(gold, sb, K)[K]
        hits += abs(d) >= abs(observed) - 1e-12
    exact = hits / 2 ** len(idx)
    approx = stats.randomization_test(gold, a[None], b[None], K, 20000, seed=3)[K]
    assert approx == pytest.approx(exact, abs=0.01)


def test_randomization_finds_a_real_difference_and_is_calibrated_under_the_null(gold: np.ndarray) -> None:
    better = np.stack([_system(gold, 0.75, 10 + s) for s in range(3)])
    worse = np.stack([_system(gold, 0.55, 20 + s) for s in range(3)])
    assert stats.randomization_test(gold, better, worse, K, 999)[K] < 0.01
    # exchangeable systems: about 5% of p-values under 0.05
    p = [
        stats.randomization_test(
            gold, _system(gold, 0.6, 100 + i)[None], _system(gold, 0.6, 200 + i)[None], K, 199, seed=i
        )[K]
        for i in range(60)
    ]
    assert np.mean(np.array(p) < 0.05) <= 0.15 and 0.3 < np.mean(p) < 0.7


def test_power_ratio_and_fdr() -> None:
    assert stats.min_detectable_difference(0.01) == pytest.approx(0.02802, abs=1e-4)
    assert np.isnan(stats.ratio_samples(np.array([1.0, 2.0]), np.array([0.0, 4.0]))).tolist() == [True, False]
    p = np.array([0.001, 0.04, 0.03, 0.5, 0.2])
    assert stats.benjamini_hochberg(p) == pytest.approx(false_discovery_control(p))
