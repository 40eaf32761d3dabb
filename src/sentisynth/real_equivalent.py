"""What an arm is worth, in real posts: each arm's macro-F1 read off the `real` arm's learning curve.

Per dataset, classifier and seed size, the curve is test macro-F1 (mean over seeds) against the real posts
added: `none` is n = 0 and every `real` cell at `augment.n` = n is a point. Its x axis is log(seed size + n)
(the training set's size on a log scale, where learning curves are close to straight, and n = 0 needs no
special case). The curve is made non-decreasing by isotonic regression (pool adjacent violators, equal
weights) and interpolated linearly in that log axis, which keeps it monotone and invertible in closed form.
An arm's *real-post equivalent* is the smallest n at which the curve reaches the arm's macro-F1: 0 when the
arm is no better than seed only, and censored (">= max n", never extrapolated) when it beats the largest
real cell. The 95% interval is the percentile bootstrap of the same reading on 2,000 paired replicates of
`sentisynth.stats.bootstrap_f1` (test posts resampled and, with several seeds, seeds too; the curve and the
arm share each replicate, over the seeds all of them have), so a `real` arm with n posts reads n.
Cost of one real-post equivalent: the arm's generation seconds (seconds per kept post from the report's
generation-cost table x the posts it adds) or dollars (its runs' `generate/cost_usd`, mean over seeds)
divided by its equivalent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sentisynth import stats
from sentisynth.comparisons import Predictions
from sentisynth.utils import markdown_table, pyplot, save_figure

GROUP = ["data", "classifier", "seed_size"]


def isotonic(y: np.ndarray) -> np.ndarray:
    """(B, m) -> the non-decreasing least-squares fit of each row (min-max formula: m is a few points).

    A row that is already non-decreasing comes back bit for bit, so a `real` cell reads its own n exactly."""
    y = np.atleast_2d(np.asarray(y, dtype=float))
    m = y.shape[1]
    mean = {(j, k): y[:, j : k + 1].mean(axis=1) for j in range(m) for k in range(j, m)}
    out = np.empty_like(y)
    for i in range(m):
        lower = [np.min([mean[(j, k)] for k in range(i, m)], axis=0) for j in range(i + 1)]
        out[:, i] = np.max(lower, axis=0)
    monotone = np.all(np.diff(y, axis=1) >= 0, axis=1)
    return np.where(monotone[:, None], y, out)


def invert(x: np.ndarray, curve: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Per row: the smallest x at which the non-decreasing piecewise-linear `curve` (B, m) over knots `x` (m,)
    reaches `f` (B,); x[0] when f <= curve[0], +inf when f > curve[-1] (beyond the curve: censored)."""
    curve, f = np.atleast_2d(curve), np.asarray(f, dtype=float).reshape(-1)
    out = np.full(f.shape, np.inf)
    below = f <= curve[:, 0]
    out[below] = x[0]
    inside = ~below & (f <= curve[:, -1])
    j = np.argmax(curve >= f[:, None], axis=1)  # first knot at or above f
    rows = np.flatnonzero(inside)
    lo, hi = curve[rows, j[rows] - 1], curve[rows, j[rows]]
    t = (f[rows] - lo) / (hi - lo)  # hi > f > lo here, so hi > lo
    out[rows] = np.where(f[rows] == hi, x[j[rows]], x[j[rows] - 1] + t * (x[j[rows]] - x[j[rows] - 1]))
    return out


def _count(v: object) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan  # "full" and the like: not a point on a curve


@dataclass
class Curve:
    """One dataset/classifier/seed size: the real arm's levels and the cells to read off it."""

    seed_size: float
    levels: list[tuple[float, pd.DataFrame]]  # (n, runs of that cell), n = 0 first
    arms: list[tuple[str, float, pd.DataFrame]]  # (arm, augment.n, runs)


def curves(runs: pd.DataFrame) -> dict[tuple, Curve]:
    """Groups with seed-only runs and at least one numeric `real` level (all other arms to read off)."""
    out = {}
    for key, part in runs.groupby(GROUP, sort=False):
        size = _count(key[2])
        none = part[part.strategy == "none"]
        real = part[part.strategy == "real"]
        levels = [(0.0, none)] + [
            (_count(n), cell) for n, cell in real.groupby("augment_n", sort=False) if _count(n) > 0
        ]
        if math.isnan(size) or none.empty or len(levels) < 2:
            continue
        arms = [
            (str(arm), _count(n), cell)
            for (arm, n), cell in part[part.strategy != "none"].groupby(["strategy", "augment_n"], sort=False)
        ]
        out[key] = Curve(size, sorted(levels, key=lambda t: t[0]), sorted(arms, key=lambda t: t[:2]))
    return out


def _systems(cells: list[pd.DataFrame], preds: Predictions) -> tuple[np.ndarray, list[int]]:
    """(m, S, n) predictions of the cells over the seeds every one of them has (sorted), and those seeds."""
    seeds = sorted(set.intersection(*(set(c.seed) for c in cells)))
    stacked = [np.stack([preds.by_job[str(c[c.seed == s].iloc[0]["job"])] for s in seeds]) for c in cells]
    return np.stack(stacked), seeds


def read_arm(curve: Curve, cell: pd.DataFrame, preds: Predictions, n_boot: int) -> dict | None:
    """One arm's equivalent: point (observed means), 95% interval (bootstrap), the seeds used."""
    cells = [c for _, c in curve.levels] + [cell]
    if any(not set(map(str, c.job)) <= set(preds.by_job) for c in cells):
        return None  # a run without predictions.csv: no interval possible
    systems, seeds = _systems(cells, preds)
    if not seeds:
        return None
    k = len(preds.names)
    observed = np.array([np.mean([stats.f1_scores(preds.gold, s, k)[-1] for s in sys]) for sys in systems])
    samples = stats.bootstrap_f1(preds.gold, systems, k, n_boot)[:, :, -1]  # (B, m)
    x = np.log(curve.seed_size + np.array([n for n, _ in curve.levels]))
    point = invert(x, isotonic(observed[None, :-1]), observed[-1:])[0]
    reps = invert(x, isotonic(samples[:, :-1]), samples[:, -1])
    # back to posts; rounded so that a knot's log round trip (exp(log(1500)) - 500) reads its n exactly
    to_n = lambda v: np.where(
        np.isinf(v), np.inf, np.maximum(np.round(np.exp(v) - curve.seed_size, 6), 0.0) + 0.0
    )  # noqa: E731
    lo, hi = np.percentile(to_n(reps), [2.5, 97.5], method="inverted_cdf")  # no interpolation with +inf
    return {
        "macro_f1": float(observed[-1]),
        "real_equiv": float(to_n(point)),
        "ci_low": float(lo),
        "ci_high": float(hi),
        "max_n": float(curve.levels[-1][0]),
        "n_seeds": len(seeds),
        # the curve it was read off: each point is a none/real cell's macro-F1 over these seeds (cells.csv)
        "curve": ", ".join(f"+{n:.0f} {f:.4f}" for (n, _), f in zip(curve.levels, observed[:-1])),
        "seeds": " ".join(map(str, seeds)),
    }


def real_equivalents(
    runs: pd.DataFrame, preds: dict[str, Predictions], cost: pd.DataFrame | None = None, n_boot: int = 2000
) -> pd.DataFrame:
    """One row per arm and `augment.n` (the `real` cells included, as a check: they read their own n)."""
    rows = []
    for key, curve in curves(runs).items():
        p = preds.get(str(key[0]))
        if p is None:
            continue
        for arm, n, cell in curve.arms:
            found = read_arm(curve, cell, p, n_boot)
            if found is not None:
                usd = float(cell["generate/cost_usd"].mean()) if "generate/cost_usd" in cell else math.nan
                rows.append({**dict(zip(GROUP, key)), "arm": arm, "augment_n": n, **found, "cost_usd": usd})
    table = pd.DataFrame(rows)
    return with_cost(table, cost) if not table.empty else table


def with_cost(table: pd.DataFrame, cost: pd.DataFrame | None) -> pd.DataFrame:
    """Seconds and dollars per real-post equivalent (NaN where unknown, or the equivalent is 0 or censored)."""
    s_per_kept = {}
    if cost is not None and not cost.empty and "s_per_kept" in cost:
        s_per_kept = {(str(r.strategy), str(r.seed_size)): r.s_per_kept for r in cost.itertuples()}
    seconds = [
        s_per_kept.get((str(r.arm), str(r.seed_size)), math.nan) * r.augment_n for r in table.itertuples()
    ]
    usable = np.isfinite(table.real_equiv) & (table.real_equiv > 0)
    equiv = table.real_equiv.where(usable)
    return table.assign(
        gen_s=seconds,
        s_per_real_post=np.asarray(seconds, dtype=float) / equiv,
        usd_per_real_post=table.cost_usd / equiv,
    )


def _n(v: float, max_n: float) -> str:
    return f">= {max_n:.0f}" if v > max_n else f"{v:.0f}"


def table_md(table: pd.DataFrame) -> str:
    """The report's table: '+1000 shap ~ 240 real posts [120, 390]'."""
    if table.empty:
        return "_no curve: needs `none` and `real` cells at one or more `augment.n`, with predictions.csv_\n"
    columns = [
        "data",
        "classifier",
        "seed size",
        "arm",
        "augment.n",
        "macro-F1",
        "real-post equivalent",
        "95% interval",
        "s per real post",
        "$ per real post",
        "seeds",
    ]
    cells = [
        [
            r.data,
            r.classifier,
            r.seed_size,
            r.arm,
            f"+{r.augment_n:.0f}",
            f"{r.macro_f1:.3f}",
            _n(r.real_equiv, r.max_n),
            f"[{_n(r.ci_low, r.max_n)}, {_n(r.ci_high, r.max_n)}]",
            "n/a" if math.isnan(r.s_per_real_post) else f"{r.s_per_real_post:.2f}",
            "n/a" if math.isnan(r.usd_per_real_post) else f"{r.usd_per_real_post:.4f}",
            r.n_seeds,
        ]
        for r in table.itertuples()
    ]
    return markdown_table(columns, cells)


def _draw_arm(ax: object, seed_size: float, r: object) -> None:
    """One arm at its equivalent with its interval; censored values sit just right of the last real cell."""
    edge = r.max_n * 1.15
    lo, hi, x = (seed_size + min(v, edge) for v in (r.ci_low, r.ci_high, r.real_equiv))
    (h,) = ax.plot([lo, hi], [r.macro_f1] * 2, lw=1.5)
    marker = ">" if r.real_equiv > r.max_n else "o"
    ax.plot([x], [r.macro_f1], marker, color=h.get_color(), label=f"{r.arm} +{r.augment_n:.0f}")


def plot(runs: pd.DataFrame, table: pd.DataFrame, path: Path) -> Path:
    """One panel per dataset/classifier/seed size: the real curve (isotonic, log axis) and every arm placed
    at its equivalent with its interval (an arrow at the right edge when censored)."""
    plt = pyplot()
    groups = list(curves(runs).items())
    fig, axes = plt.subplots(1, max(len(groups), 1), figsize=(5 * max(len(groups), 1), 3.8), squeeze=False)
    for ax, (key, curve) in zip(axes[0], groups):
        ns = np.array([n for n, _ in curve.levels])
        f1 = isotonic(np.array([[c["test/macro_f1"].mean() for _, c in curve.levels]]))[0]
        ax.plot(curve.seed_size + ns, f1, "k-o", label="real (isotonic)")
        mine = (table[GROUP].astype(str) == [str(k) for k in key]).all(axis=1)
        for r in table[mine & (table.arm != "real")].itertuples():
            _draw_arm(ax, curve.seed_size, r)
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(curve.seed_size + ns, [f"+{n:.0f}" for n in ns])
        ax.set_xlabel("real posts added (log of training size)")
        ax.set_ylabel("test macro-F1")
        ax.set_title(f"{key[0]} / {key[1]} / seed {key[2]}", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save_figure(fig, path)


def section(
    runs: pd.DataFrame, preds: dict[str, Predictions], cost: pd.DataFrame, out: Path, n_boot: int
) -> tuple[list[str], pd.DataFrame, dict[str, Path]]:
    """The report's section: markdown lines, the table (the report writes it as real_equivalents.csv), the plot."""
    table = real_equivalents(runs, preds, cost, n_boot)
    plots: dict[str, Path] = {}
    md = [
        "## What each arm is worth, in real posts (real-post equivalent, 95% interval)",
        "",
        table_md(table),
        "Each row's macro-F1 is its cell's in `cells.csv` (mean over the seeds in `seeds`); the curve it was read "
        "off (`curve` in `real_equivalents.csv`: `+n macro-F1` of the `none` and `real` cells over the same "
        "seeds) is the table's provenance.",
        "",
    ]
    if not table.empty:  # its CSV: written by the report with its other tables
        plots["real_equivalents"] = plot(runs, table, out / "real_equivalents.png")
        md += ["![real-post equivalents](real_equivalents.png)", ""]
    md += ["**Method.** " + __doc__.split("\n\n", 1)[1].replace("\n", " ").strip(), ""]
    return md, table, plots
