"""The model-agnostic baseline route: shap's permutation algorithm, batched so it fits in memory.

`shap.Explainer(f, background, algorithm="permutation")` with `max_evals = 2 * n_features + 1` runs
one permutation with forward and backward passes and delta masking (only background rows whose value
differs from the post at the toggled feature are re-evaluated). On 77k TF-IDF columns its tabular
masker materialises every masked row at once (terabytes), so this module does the same computation
in row batches over the columns that can vary (non-zero in the post or the background). With the
same NumPy seed it returns shap's values exactly (tested); the benchmark times it per post.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class PermutationResult:
    values: np.ndarray  # (n_features, n_outputs) SHAP values of f (e.g. class probabilities)
    base: np.ndarray  # (n_outputs,) mean of f over the background
    n_model_rows: int  # rows passed to f: the cost of the route


def permutation_shap(
    f: Callable[[sp.csr_matrix], np.ndarray],
    x: sp.csr_matrix,
    background: sp.csr_matrix,
    batch_rows: int = 2048,
) -> PermutationResult:
    """One-permutation SHAP of f at x (1 x F) against `background` (B x F); uses np.random like shap."""
    x = sp.csr_matrix(x)
    background = sp.csr_matrix(background)
    n_bg, n_feat = background.shape
    cols = np.union1d(x.indices, background.indices)  # other columns are 0 in x and background: invariant
    xu = x[:, cols].toarray()[0]
    bu = background[:, cols].toarray()
    variants = ~np.isclose(xu[None, :], bu)
    inds = np.flatnonzero(variants.any(axis=0))  # positions in `cols`, ascending like shap's varying_inputs
    np.random.shuffle(inds)
    steps = [(None, True)] + [(p, True) for p in inds] + [(p, False) for p in inds]

    state = bu.copy()
    last = None
    averaged: list[np.ndarray] = []
    pending: list[tuple[np.ndarray, np.ndarray]] = []  # (rows, masked rows over `cols`)
    n_pending = n_rows = 0

    def flush() -> None:
        nonlocal last, n_pending, n_rows
        if not pending:
            return
        dense = np.vstack([m for _, m in pending])
        Z = sp.csr_matrix(dense)
        Z = sp.csr_matrix((Z.data, cols[Z.indices], Z.indptr), shape=(dense.shape[0], n_feat))
        out = np.asarray(f(Z), dtype=np.float64)
        n_rows += dense.shape[0]
        pos = 0
        for rows, _ in pending:
            if last is None:
                last = np.zeros((n_bg,) + out.shape[1:])
            last[rows] = out[pos : pos + len(rows)]
            pos += len(rows)
            averaged.append(last.mean(axis=0))
        pending.clear()
        n_pending = 0

    all_rows = np.arange(n_bg)
    for p, on in steps:
        if p is None:
            rows = all_rows
        else:
            rows = np.flatnonzero(variants[:, p])
            state[rows, p] = xu[p] if on else bu[rows, p]
        pending.append((rows, state[rows].copy()))
        n_pending += len(rows)
        if n_pending >= batch_rows:
            flush()
    flush()

    avg = np.asarray(averaged)
    return PermutationResult(values=attributions(avg, cols[inds], n_feat), base=avg[0], n_model_rows=n_rows)


def attributions(avg: np.ndarray, features: np.ndarray, n_feat: int) -> np.ndarray:
    """Per-feature values from the mean outputs along the permutation: the mean of the forward step (switching
    the feature on) and the backward step (switching it off again)."""
    n = len(features)
    values = np.zeros((n_feat,) + avg.shape[1:])
    values[features] = ((avg[1 : n + 1] - avg[:n]) + (avg[n : 2 * n] - avg[n + 1 : 2 * n + 1])) / 2.0
    return values
