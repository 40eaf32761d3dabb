"""Uncertainty for F1 scores on one fixed test set: paired bootstrap, approximate randomization, power.

Functions take label arrays and return numbers; they know nothing about runs or files (the report and the
aggregate feed them). Everything is vectorised over resamples: a system's F1 on a resample only needs its
per-class TP/FP/FN counts, and those are a matrix product of resample weights (posts drawn per resample)
with per-post 0/1 indicators, so 2,000 bootstrap replicates over 1,421 posts cost one small matmul.

Shapes: `gold` is (n,) ints in 0..k-1; a system's predictions over seeds are (S, n): the same n test
posts predicted by the models trained with S seeds. Comparisons are paired: the systems share the test
resample and the seed resample of every replicate.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

ALPHA = 0.05


def indicators(gold: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """(..., n, 3k) per-post 0/1 indicators: [TP per class | FP per class | FN per class]."""
    g = np.eye(k, dtype=np.float32)[gold]  # (n, k)
    p = np.eye(k, dtype=np.float32)[pred]  # (..., n, k)
    return np.concatenate([g * p, (1 - g) * p, g * (1 - p)], axis=-1)


def f1_from_counts(counts: np.ndarray, k: int) -> np.ndarray:
    """Per-class F1 from (..., 3k) TP/FP/FN counts; 0 where a class has no TP, FP and FN (sklearn's zero_division=0)."""
    tp, fp, fn = counts[..., :k], counts[..., k : 2 * k], counts[..., 2 * k :]
    den = 2 * tp + fp + fn
    return np.divide(2 * tp, den, out=np.zeros_like(den, dtype=np.float64), where=den > 0)


def f1_scores(gold: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """(k + 1,) per-class F1 then macro-F1 of one prediction vector (equal to sklearn's)."""
    f1 = f1_from_counts(indicators(gold, pred, k).sum(axis=0), k)
    return np.append(f1, f1.mean())


def resample_weights(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n) how often each of n items is drawn in each bootstrap resample (n draws with replacement)."""
    draws = rng.integers(0, n, size=(n_boot, n)) + n * np.arange(n_boot)[:, None]
    return np.bincount(draws.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(np.float32)


def bootstrap_f1(
    gold: np.ndarray, preds: np.ndarray, k: int, n_boot: int = 2000, seed: int = 0
) -> np.ndarray:
    """(n_boot, m, k + 1) replicates of the seed-averaged per-class F1 and macro-F1 (last) of m systems.

    `preds` is (m, S, n). Each replicate resamples the n test posts once (the same resample for every system
    and seed: they were scored on the same posts) and, when S > 1, the S seeds with replacement (a system's
    seed s stays paired with the other systems' seed s). Differences of systems within a replicate are then
    paired-bootstrap replicates of the difference.
    """
    preds = np.asarray(preds)
    m, s, n = preds.shape
    rng = np.random.default_rng(seed)
    weights = resample_weights(n, n_boot, rng)  # (B, n)
    x = indicators(np.asarray(gold), preds, k)  # (m, S, n, 3k)
    counts = np.einsum("bn,msnc->bmsc", weights, x, optimize=True)  # (B, m, S, 3k)
    f1 = f1_from_counts(counts, k)  # (B, m, S, k)
    f1 = np.concatenate([f1, f1.mean(axis=-1, keepdims=True)], axis=-1)
    seed_w = resample_weights(s, n_boot, rng) / s if s > 1 else np.ones((n_boot, 1))
    return np.einsum("bs,bmsc->bmc", seed_w, f1)


def percentile_interval(samples: np.ndarray, level: float = 1 - ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval along axis 0 (NaN replicates, e.g. of a ratio over 0, are ignored)."""
    lo, hi = np.nanpercentile(samples, [50 * (1 - level), 50 * (1 + level)], axis=0)
    return lo, hi


def randomization_test(
    gold: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    k: int,
    n_perm: int = 9999,
    seed: int = 0,
    chunk: int = 2000,
) -> np.ndarray:
    """(k + 1,) two-sided p-values (per class, then macro) of approximate randomization, seeds pooled.

    `a`, `b` are (S, n): two systems' predictions of the same posts, paired by seed. Under the null the two
    systems are exchangeable, so each post's pair of predictions is swapped with probability 1/2,
    independently per seed and post; the statistic is the seed-averaged F1 difference. p = (1 + #|d*| >=
    |d|) / (n_perm + 1). Only posts where the systems disagree can change the statistic, so only they are
    permuted: identical systems give p = 1.
    """
    a, b, gold = np.atleast_2d(a), np.atleast_2d(b), np.asarray(gold)
    rng = np.random.default_rng(seed)
    observed = np.zeros(k + 1)
    exceed = np.zeros(k + 1)
    parts = []
    for sa, sb in zip(a, b):
        xa, xb = indicators(gold, sa, k), indicators(gold, sb, k)
        ta, tb = xa.sum(axis=0), xb.sum(axis=0)
        delta = (xb - xa)[sa != sb]  # (n_diff, 3k)
        observed += _macro_append(f1_from_counts(ta, k)) - _macro_append(f1_from_counts(tb, k))
        parts.append((ta, tb, delta))
    observed /= len(parts)
    for start in range(0, n_perm, chunk):
        r = min(chunk, n_perm - start)
        stat = np.zeros((r, k + 1))
        for ta, tb, delta in parts:
            swap = coin_flips(rng, r, len(delta)) @ delta  # (r, 3k)
            stat += _macro_append(f1_from_counts(ta + swap, k)) - _macro_append(f1_from_counts(tb - swap, k))
        exceed += (np.abs(stat / len(parts)) >= np.abs(observed) - 1e-12).sum(axis=0)
    return (1 + exceed) / (n_perm + 1)


def coin_flips(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    """(rows, cols) fair 0/1 draws as float32, 8 per random byte (the permutation test's main cost)."""
    packed = rng.integers(0, 256, size=(rows, (cols + 7) // 8), dtype=np.uint8)
    return np.unpackbits(packed, axis=1, count=cols).astype(np.float32)


def _macro_append(f1: np.ndarray) -> np.ndarray:
    return np.concatenate([f1, f1.mean(axis=-1, keepdims=True)], axis=-1)


def min_detectable_difference(se: float | np.ndarray, alpha: float = ALPHA, power: float = 0.8) -> np.ndarray:
    """Smallest true difference a two-sided test at `alpha` detects with `power`, given the difference's
    standard error: (z_{1-alpha/2} + z_{power}) * se (2.80 se at 5% and 80%)."""
    return (norm.ppf(1 - alpha / 2) + norm.ppf(power)) * np.asarray(se)


def ratio_samples(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den per replicate, NaN where den is 0 (the share of a gain that is not there is undefined)."""
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    return np.divide(num, den, out=np.full(np.broadcast(num, den).shape, np.nan), where=den != 0)


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """False-discovery-rate adjusted p-values (q-values) for a family of tests."""
    p = np.asarray(p, dtype=float)
    if p.size == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * p.size / np.arange(1, p.size + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty_like(q)
    out[order] = np.minimum(q, 1.0)
    return out
