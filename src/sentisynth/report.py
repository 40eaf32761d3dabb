"""Study report from a multirun directory: intervals, paired tests, tables, plots and `report.md`.

    python -m sentisynth.report outputs/<task>/multiruns/<stamp> [--wandb]

Every number comes from the runs' `metrics.json` and `predictions.csv` (see `sentisynth.comparisons` for
the statistics, whose method is written at the top of `report.md`). Writes into `<dir>/report/`:
`runs.csv` (one row per job), `cells.csv` (mean over seeds with a 95% bootstrap interval),
`comparisons.csv` (every arm against `none` and `real`: difference, interval, p-value, MDD, share of the
real gain; and the pairs of arms of `study.compare`, default adaptive vs shap, with `baseline` the second arm), `classifier_comparisons.csv` (every pair of classifiers on the same arm, seed size and
`augment.n`), `generation_cost.csv`, `summary.csv` (mean, std over seeds per
dataset, classifier, strategy, seed size and augment.n), `per_class_delta.csv` (per-class F1 change from the
seed-only run with the same dataset, classifier, seed size and seed; rarest classes first),
`linguistic.csv` and `filters.csv` when runs wrote them, PNG plots (with a forest plot), and `report.md`.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from sentisynth.aggregate import collect as collect_jobs
from sentisynth.aggregate import count_text, skipped_note
from sentisynth.utils import atomic_write_text, markdown_table, pyplot, read_json, save_figure

log = logging.getLogger(__name__)

KEYS = ["data", "classifier", "strategy", "seed_size", "augment_n"]
N_BOOT, N_PERM = 2000, 9999  # bootstrap replicates and randomization rounds (see sentisynth.stats)
BASELINES = ("none", "real", "share_of_real_gain")  # comparisons rows that are not pairs of arms
DEFAULT_PAIRS = [("adaptive", "shap")]  # compared when the study names no `study.compare`


def arm_pairs(root: Path) -> list[tuple[str, str]]:
    """The pairs of arms to compare head to head: the study's `study.compare` ([[a, b], ...] in its
    study.json), else DEFAULT_PAIRS; pairs whose arms did not run give no row."""
    path = root / "study.json"
    study = (read_json(path).get("study") or {}) if path.is_file() else {}
    pairs = study.get("compare")
    if pairs is None:
        return list(DEFAULT_PAIRS)
    bad = [q for q in pairs if not isinstance(q, (list, tuple)) or len(q) != 2]
    if bad:
        raise ValueError(f"{path}: study.compare must be a list of [arm, arm] pairs, got {bad[0]!r}")
    return [(str(a), str(b)) for a, b in pairs]


def _strategy(choices: dict[str, Any], cfg: Any) -> str:
    augment = str(choices.get("augment", "none"))
    if augment.startswith("synthetic"):  # synthetic, synthetic_naive, synthetic_shap, ...
        guidance = OmegaConf.select(cfg, "augment.guidance", default=None) or choices.get("guidance")
        return f"synthetic:{guidance}" if guidance else "synthetic"
    return augment


def read_run(job: Path) -> dict[str, Any] | None:
    """One job's identity (from its saved Hydra config) and metrics; None when it did not finish."""
    metrics_path, hydra_dir = job / "metrics.json", job / ".hydra"
    if not metrics_path.is_file() or not (hydra_dir / "config.yaml").is_file():
        return None
    cfg = OmegaConf.load(hydra_dir / "config.yaml")
    choices: dict[str, Any] = {}
    if (hydra_dir / "hydra.yaml").is_file():
        hydra_cfg = OmegaConf.load(hydra_dir / "hydra.yaml")
        choices = OmegaConf.to_container(hydra_cfg.hydra.runtime.choices) or {}
    metrics = read_json(metrics_path)
    cell = read_json(job / "cell.json") if (job / "cell.json").is_file() else None
    seed_size = OmegaConf.select(cfg, "data.seed_size", default=None)
    strategy = cell["arm"] if cell else _strategy(choices, cfg)  # a study cell names its arm
    n_added = metrics.get("train/n_total", 0) - metrics.get("train/n_seed", 0)
    return {
        "job": str(job),
        "data": choices.get("data", OmegaConf.select(cfg, "data.loader", default="?")),
        "classifier": choices.get("classifier", "?"),
        "strategy": strategy,
        "seed_size": str(seed_size) if seed_size is not None else str(metrics.get("train/n_seed")),
        # posts asked for (augment.n); seed only adds none whatever augment.n says
        "augment_n": "0" if strategy == "none" else str(OmegaConf.select(cfg, "augment.n", default=n_added)),
        "seed": int(OmegaConf.select(cfg, "seed", default=0)),
        **metrics,
    }


def collect(multirun_dir: str | Path) -> pd.DataFrame:
    return collect_jobs(multirun_dir, read_run, "runs (metrics.json + .hydra/config.yaml)")


def _size_key(value: Any) -> float:
    """Seed sizes and `augment.n` as numbers (250 < 500 < 1000 < full), not as text."""
    try:
        return float("inf") if str(value) == "full" else float(value)
    except (TypeError, ValueError):
        return float("inf")


def sort_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows by dataset, classifier, seed size and `augment.n` as numbers, then arm (stable)."""
    if frame.empty:
        return frame
    order = [c for c in ("data", "classifier", "seed_size", "augment_n", "strategy", "arm") if c in frame]
    numeric = {"seed_size", "augment_n"}
    key = lambda col: col.map(_size_key) if col.name in numeric else col.astype(str)  # noqa: E731
    return frame.sort_values(order, key=key, kind="stable").reset_index(drop=True)


def summarize(runs: pd.DataFrame, metric: str = "test/macro_f1") -> pd.DataFrame:
    grouped = runs.groupby(KEYS, sort=False)[metric]
    out = grouped.agg(["mean", "std", "count"]).reset_index()
    # a single seed has no spread: left empty (NaN), not 0, so a table never suggests a measured std of 0
    out = out.rename(columns={"mean": f"{metric} mean", "std": f"{metric} std", "count": "n_seeds"})
    out["_order"] = out["seed_size"].map(_size_key)
    return (
        out.sort_values(["data", "classifier", "_order", "strategy"])
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def class_names(runs: pd.DataFrame) -> list[str]:
    return [c.split("/", 2)[2] for c in runs.columns if c.startswith("test/f1/")]


def per_class_delta(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean per-class test F1 change against seed only, paired by dataset, classifier, seed size and seed."""
    names = class_names(runs)
    f1_cols = [f"test/f1/{n}" for n in names]
    base = runs[runs.strategy == "none"].set_index(["data", "classifier", "seed_size", "seed"])[f1_cols]
    rows = []
    for _, r in runs[runs.strategy != "none"].iterrows():
        key = (r["data"], r["classifier"], r["seed_size"], r["seed"])
        if key not in base.index:
            continue
        ref = base.loc[key]
        ref = ref.iloc[0] if isinstance(ref, pd.DataFrame) else ref
        rows.append(
            {
                **{k: r[k] for k in KEYS},
                "seed": r["seed"],
                **{n: r[f"test/f1/{n}"] - ref[f"test/f1/{n}"] for n in names},
            }
        )
    if not rows:
        return pd.DataFrame(columns=KEYS + names)
    delta = pd.DataFrame(rows).groupby(KEYS, sort=False)[names].mean().reset_index()
    delta["_order"] = delta["seed_size"].map(_size_key)
    delta = delta.sort_values(["data", "classifier", "_order", "strategy"], kind="stable").drop(
        columns="_order"
    )
    # rarest classes first: order by their training count in the seed-only runs
    counts = {n: runs[f"train/n/{n}"].mean() if f"train/n/{n}" in runs else 0 for n in names}
    ordered = sorted(names, key=lambda n: counts[n])
    return delta[KEYS + ordered]


def plot_f1_vs_seed_size(cells: pd.DataFrame, path: Path) -> Path:
    """Macro-F1 against seed size, one line per arm and `augment.n`, shaded by its 95% interval (when known)."""
    plt = pyplot()

    panels = list(cells.groupby(["data", "classifier"], sort=False))
    # one seed size per panel: each panel is a column of points, readable only against the others' scale
    single = all(part.seed_size.nunique() == 1 for _, part in panels)
    fig, axes = plt.subplots(
        1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False, sharey=single and len(panels) > 1
    )
    for ax, ((data, clf), part) in zip(axes[0], panels):
        sizes = sorted(part.seed_size.unique(), key=_size_key)
        x = {s: i for i, s in enumerate(sizes)}
        for (strategy, n), line in part.groupby(["strategy", "augment_n"], sort=True):
            line = line.sort_values("seed_size", key=lambda s: s.map(_size_key))
            xs = [x[s] for s in line.seed_size]
            label = strategy if strategy == "none" else f"{strategy} +{n}"
            (handle,) = ax.plot(xs, line["macro_f1"], marker="o", label=label)
            ax.fill_between(xs, line["ci_low"], line["ci_high"], color=handle.get_color(), alpha=0.15)
        ax.set_xticks(range(len(sizes)), sizes)
        ax.set_xlabel("seed size")
        ax.set_ylabel("test macro-F1 (95% interval)")
        ax.set_title(f"{data} / {clf}", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save_figure(fig, path)


def plot_forest(comp: pd.DataFrame, path: Path) -> Path:
    """Forest plot: macro-F1 difference of every arm against `none` and `real` with its 95% interval."""
    plt = pyplot()

    rows = comp[(comp.metric == "macro_f1") & comp.baseline.isin(["none", "real"])].reset_index(drop=True)
    labels = [
        f"{r.classifier} | {r.seed_size} | +{r.augment_n} | {r.arm} vs {r.baseline}"
        for r in rows.itertuples()
    ]
    fig, ax = plt.subplots(figsize=(7.5, 0.28 * len(rows) + 1.4))
    y = np.arange(len(rows))[::-1]
    sig = rows.significant.to_numpy(dtype=bool)
    for mask, color in ((sig, "tab:red"), (~sig, "tab:gray")):
        part = rows[mask]
        ax.errorbar(
            part["diff"],
            y[mask],
            xerr=[part["diff"] - part.ci_low, part.ci_high - part["diff"]],
            fmt="o",
            color=color,
            markersize=3,
            capsize=2,
        )
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, labels, fontsize=6)
    ax.set_xlabel("difference in test macro-F1 (95% interval; red: the interval excludes 0)")
    return save_figure(fig, path)


def plot_delta(delta: pd.DataFrame, path: Path) -> Path:
    plt = pyplot()

    names = [c for c in delta.columns if c not in KEYS]
    labels = [f"{r.classifier} | {r.strategy} | {r.seed_size}" for r in delta.itertuples()]
    values = delta[names].to_numpy(dtype=float)
    lim = max(float(np.nanmax(np.abs(values))) if values.size else 0.0, 0.01)
    fig, ax = plt.subplots(figsize=(1.4 * len(names) + 3, 0.35 * len(labels) + 1.5))
    im = ax.imshow(values, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            ax.text(
                j,
                i,
                f"{values[i, j]:+.3f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if abs(values[i, j]) > 0.6 * lim else "black",
            )
    fig.colorbar(im, ax=ax, fraction=0.04, label="F1 change")
    ax.set_title("per-class F1 change (rarest class first)")
    return save_figure(fig, path)


def collect_side_tables(runs: pd.DataFrame, filename: str) -> pd.DataFrame:
    """Concatenate a per-run CSV (e.g. linguistic.csv) with the run's identity columns."""
    frames = []
    for _, r in runs.iterrows():
        path = Path(r["job"]) / filename
        if path.is_file():
            frame = pd.read_csv(path)
            for k in KEYS + ["seed"]:
                frame.insert(0, k, r[k]) if k not in frame.columns else None
            frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def collect_filter_rates(runs: pd.DataFrame) -> pd.DataFrame:
    """Acceptance rates from each run's `filter_report.json` (when the synthetic arm wrote one)."""
    rows = []
    for _, r in runs.iterrows():
        # pseudo arms write it into the job dir; on-the-fly synthetic arms into job/generation/
        path = next(
            (
                p
                for p in (
                    Path(r["job"]) / "filter_report.json",
                    Path(r["job"]) / "generation" / "filter_report.json",
                )
                if p.is_file()
            ),
            None,
        )
        if path is None:
            continue
        report = read_json(path)
        for stage in report.get("filters", []):
            for cls, c in (stage.get("per_class") or {}).items():
                rows.append(
                    {
                        **{k: r[k] for k in KEYS},
                        "seed": r["seed"],
                        "filter": stage.get("name"),
                        "class": cls,
                        "in": c.get("in"),
                        "kept": c.get("kept"),
                        "acceptance": (c.get("kept", 0) / c["in"]) if c.get("in") else np.nan,
                    }
                )
    return pd.DataFrame(rows)


def _md_table(frame: pd.DataFrame, digits: int = 4, signed: bool = False) -> str:
    if frame.empty:
        return "_none_\n"
    fmt = f"{{:+.{digits}f}}" if signed else f"{{:.{digits}f}}"
    cell = lambda v: ("n/a" if math.isnan(v) else fmt.format(v)) if isinstance(v, float) else str(v)  # noqa: E731
    return markdown_table(frame.columns, frame.itertuples(index=False), cell)


def _fmt(v: float, digits: int = 3, signed: bool = False) -> str:
    return (
        "n/a"
        if v is None or (isinstance(v, float) and math.isnan(v))
        else f"{v:{'+' if signed else ''}.{digits}f}"
    )


def _cells_md(cells: pd.DataFrame) -> str:
    table = cells.assign(
        **{"95% interval": [f"[{_fmt(lo)}, {_fmt(hi)}]" for lo, hi in zip(cells.ci_low, cells.ci_high)]}
    )
    if "posts_added" in table:  # a count, averaged over seeds: whole numbers print as integers
        table["posts_added"] = table["posts_added"].map(count_text)
        table = table.rename(columns={"posts_added": "posts added (mean over seeds)"})
    return _md_table(table.drop(columns=["ci_low", "ci_high"]))


def _comparisons_md(comp: pd.DataFrame, metric: str, pairs: bool = False) -> str:
    """One line per comparison: difference, [interval], p (q), MDD; `*` when the 95% interval excludes 0.
    Against `none` and `real`, or (`pairs`) between the arms of `study.compare`."""
    if not comp.empty:
        chosen = ~comp.baseline.isin(BASELINES) if pairs else comp.baseline.isin(["none", "real"])
        comp = comp[(comp.metric == metric) & chosen]
    rows = comp
    rows = sort_cells(rows)
    if rows.empty:
        if pairs:
            return "_no pair of arms of `study.compare` ran on the same cells (with predictions.csv)_\n"
        return "_no comparison: no pair of arms with predictions.csv_\n"
    columns = [
        "classifier",
        "seed size",
        "augment.n",
        "arm",
        "vs",
        "difference",
        "95% interval",
        "p (posts)",
        "q",
        "MDD",
        "seeds",
    ]
    cells = [
        [
            r.classifier,
            r.seed_size,
            r.augment_n,
            r.arm,
            r.baseline,
            _fmt(r.diff, signed=True) + (" *" if r.significant else ""),
            f"[{_fmt(r.ci_low, signed=True)}, {_fmt(r.ci_high, signed=True)}]",
            f"{r.p:.4f}",
            _fmt(getattr(r, "q", math.nan), 4),
            _fmt(r.mdd),
            r.n_seeds,
        ]
        for r in rows.itertuples()
    ]
    return markdown_table(columns, cells)


def classifiers_md(pairs: pd.DataFrame) -> list[str]:
    """One row per pair of classifiers on the same arm: macro-F1 of the first minus the second."""
    md = ["## Classifiers against each other on the same arm: macro-F1", ""]
    if pairs.empty:
        return md + ["_one classifier per arm: no pair to compare_", ""]
    columns = ["arm", "seed size", "augment.n", "classifier", "vs", "difference", "95% interval"]
    cells = [
        [
            r.strategy,
            r.seed_size,
            r.augment_n,
            r.classifier,
            r.vs,
            _fmt(r.diff, signed=True) + (" *" if r.significant else ""),
            f"[{_fmt(r.ci_low, signed=True)}, {_fmt(r.ci_high, signed=True)}]",
            f"{r.p:.4f}",
            _fmt(r.mdd),
            r.n_seeds,
        ]
        for r in sort_cells(pairs).itertuples()
    ]
    return md + [markdown_table([*columns, "p (posts)", "MDD", "seeds"], cells)]


def _statistics_md(cells: pd.DataFrame, comp: pd.DataFrame, cost: pd.DataFrame) -> list[str]:
    from sentisynth.comparisons import METHOD

    md = [
        METHOD.format(n_boot=N_BOOT, n_perm=N_PERM),
        "## Test macro-F1 per cell (mean over seeds, 95% interval)",
        "",
        _cells_md(cells),
        "![f1 vs seed size](f1_vs_seed_size.png)",
        "",
        "## Arms against `none` and `real`: macro-F1",
        "",
        _comparisons_md(comp, "macro_f1"),
        "## Arms against each other (`study.compare`, default adaptive vs shap): macro-F1",
        "",
        _comparisons_md(comp, "macro_f1", pairs=True),
    ]
    if not comp.empty:
        md += ["![forest plot](forest.png)", ""]
        for metric in [m for m in comp.metric.unique() if m.startswith("f1/")]:  # rarest class first
            md += [f"## Arms against `none` and `real`: {metric}", "", _comparisons_md(comp, metric)]
        share = comp[comp.baseline == "share_of_real_gain"]
        md += [
            "## Share of the real-data gain recovered: (arm - none) / (real - none), macro-F1",
            "",
            _md_table(
                share[["classifier", "seed_size", "augment_n", "arm", "diff", "ci_low", "ci_high"]].rename(
                    columns={"diff": "share"}
                ),
                3,
            ),
        ]
    md += [
        "## Generation cost (posts made per post kept; seconds of generation + filtering, + an adaptive loop's "
        "steering, per kept post)",
        "",
        "_no run wrote filter_report.json_\n" if cost.empty else _md_table(cost, 2),
    ]
    return md


def report_plots(tables: dict[str, pd.DataFrame], out: Path) -> dict[str, Path]:
    """The report's figures from its tables (those with data)."""
    plots = {"f1_vs_seed_size": plot_f1_vs_seed_size(tables["cells"], out / "f1_vs_seed_size.png")}
    if not tables["comparisons"].empty:
        plots["forest"] = plot_forest(tables["comparisons"], out / "forest.png")
    if not tables["per_class_delta"].empty:
        plots["per_class_delta"] = plot_delta(tables["per_class_delta"], out / "per_class_delta.png")
    linguistic = tables["linguistic"]
    if not linguistic.empty:
        from sentisynth.analysis import plot_comparison

        overall = linguistic[linguistic["class"] == "all"].groupby("set", sort=False).mean(numeric_only=True)
        plots["linguistic"] = plot_comparison(
            overall.reset_index().assign(**{"class": "all"}), out / "linguistic.png"
        )
    return plots


def build_report(multirun_dir: str | Path, metric: str = "test/macro_f1", tracker: Any = None) -> Path:
    from sentisynth import real_equivalent
    from sentisynth.comparisons import (
        cell_intervals,
        classifier_comparisons,
        comparisons,
        generation_cost,
        load_predictions,
    )

    root = Path(multirun_dir)
    runs = collect(root)  # checks the directory and its runs before anything is created
    out = root / "report"
    out.mkdir(parents=True, exist_ok=True)
    preds = load_predictions(runs)
    tables = {
        "runs": runs,
        "summary": summarize(runs, metric),
        "cells": sort_cells(cell_intervals(runs, preds, KEYS, N_BOOT)),
        "comparisons": sort_cells(comparisons(runs, preds, N_BOOT, N_PERM, arm_pairs(root))),
        "classifier_comparisons": classifier_comparisons(runs, preds, N_BOOT, N_PERM),
        "generation_cost": sort_cells(generation_cost(runs)),
        "per_class_delta": per_class_delta(runs),
        "linguistic": collect_side_tables(runs, "linguistic.csv"),
        "filters": collect_filter_rates(runs),
    }
    equiv_md, tables["real_equivalents"], equiv_plots = real_equivalent.section(
        runs, preds, tables["generation_cost"], out, N_BOOT
    )
    for name, frame in tables.items():
        if not frame.empty:
            atomic_write_text(out / f"{name}.csv", frame.to_csv(index=False))
    plots = {**report_plots(tables, out), **equiv_plots}
    md = [
        f"# Study report: {root}",
        "",
        f"{len(runs)} runs ({len(runs) - sum(len(p.by_job) for p in preds.values())} "
        "without predictions.csv: no interval or test for their cells); tables as CSV beside this file.",
        "",
        *skipped_note(runs),
        *_statistics_md(tables["cells"], tables["comparisons"], tables["generation_cost"]),
        *equiv_md,
        *classifiers_md(tables["classifier_comparisons"]),
        *_side_sections(tables, metric, plots),
    ]
    atomic_write_text(out / "report.md", "\n".join(md))
    if tracker is not None:
        _log_report(tracker, root, tables, plots)
    return out / "report.md"


def _side_sections(tables: dict[str, pd.DataFrame], metric: str, plots: dict[str, Path]) -> list[str]:
    """Mean ± std over seeds, per-class change from seed only, linguistic comparison, filter acceptance."""
    delta, linguistic, filters = tables["per_class_delta"], tables["linguistic"], tables["filters"]
    md = [
        f"## {metric} by seed size (mean ± std over seeds, from metrics.json)",
        "",
        _md_table(tables["summary"]),
        "## Per-class F1 change from seed only (mean over seeds, rarest class first)",
        "",
        _md_table(delta, signed=True),
    ]
    if "per_class_delta" in plots:
        md += ["![per-class delta](per_class_delta.png)", ""]
    md += ["## Linguistic comparison (real vs synthetic)", ""]
    if linguistic.empty:
        md += ["_no run wrote linguistic.csv_", ""]
    else:
        keep = [
            c
            for c in (
                "set",
                "class",
                "mtld",
                "ttr",
                "distinct_2",
                "self_bleu",
                "embed_spread",
                "embed_nn",
                "pron_1sg",
                "pron_1pl",
                "time_words",
                "past_markers",
                "future_markers",
                "unseen_vocab_share",
            )
            if c in linguistic
        ]
        table = linguistic.groupby(["set", "class"], sort=False)[keep[2:]].mean().reset_index()
        md += [_md_table(table, 3), "![linguistic](linguistic.png)", ""]
    md += ["## Filter acceptance", ""]
    if filters.empty:
        md += ["_no run wrote filter_report.json_", ""]
    else:
        acc = filters.groupby(["strategy", "filter", "class"], sort=False)["acceptance"].mean().reset_index()
        md += [_md_table(acc, 3)]
    return md


def _log_report(tracker: Any, root: Path, tables: dict[str, pd.DataFrame], plots: dict[str, Path]) -> None:
    from sentisynth.tracking import session

    with session(tracker, {"multirun_dir": str(root)}, name=f"report-{root.name}", job_type="report"):
        for name, frame in tables.items():
            if name != "runs" and not frame.empty:
                tracker.log_table(
                    f"report/{name}", [str(c) for c in frame.columns], frame.astype(object).values.tolist()
                )
        for name, path in plots.items():
            tracker.log_image(f"report/{name}", path)


def main(argv: Sequence[str] | None = None, prog: str = "python -m sentisynth.report") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("multirun_dir")
    parser.add_argument("--metric", default="test/macro_f1")
    parser.add_argument(
        "--wandb", action="store_true", help="also log tables and plots to an offline W&B run"
    )
    args = parser.parse_args(argv)
    tracker = None
    if args.wandb:
        from sentisynth.tracking import WandbTracker

        tracker = WandbTracker(project="sentisynth", dir=Path(args.multirun_dir) / "report")
    try:
        path = build_report(args.multirun_dir, args.metric, tracker)
    except (FileNotFoundError, ValueError) as e:  # ValueError: predictions that cannot be paired or traced
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
