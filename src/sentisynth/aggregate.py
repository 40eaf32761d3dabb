"""Aggregate a Hydra multirun directory into one table: mean, standard deviation and 95% interval over seeds.

    python -m sentisynth.aggregate outputs/train/multiruns/<stamp>
    -> <dir>/runs.csv (one row per job), <dir>/summary.csv and <dir>/summary.md (one row per setting)

Each job directory must hold `metrics.json` and `.hydra/overrides.yaml`; a setting is the job's
overrides minus the seed keys, so the spread is over seeds only. When every job of a setting wrote
`predictions.csv`, test macro-F1 also gets a 95% bootstrap interval (test posts, and seeds when there are
several: `sentisynth.stats`); arm-against-arm tests are `sentisynth.report`'s.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from sentisynth.errors import DataError
from sentisynth.utils import atomic_write_text, markdown_table, read_json

log = logging.getLogger(__name__)

SEED_KEYS = ("seed", "data.seed")
DEFAULT_METRICS = ("test/macro_f1", "test/accuracy", "val/macro_f1")


def _parse_overrides(path: Path) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for item in yaml.safe_load(path.read_text()) or []:
        key, _, value = str(item).partition("=")
        overrides[key.lstrip("+~")] = value
    return overrides


def collect(
    multirun_dir: str | Path, read_job: Callable[[Path], dict[str, Any] | None], needs: str
) -> pd.DataFrame:
    """One row per finished job below `multirun_dir` (every folder with a `metrics.json`, outside hidden
    folders such as a study's `.prepare/`), as `read_job`
    reads it (None: skipped); `needs` names what a finished job holds, for the error when none is found.
    A job folder (`.hydra/`) without `metrics.json`, or with a broken one, is skipped with a warning naming
    it, and listed in the frame's `attrs["skipped"]` (aggregate and report count them in their headers)."""
    root = Path(multirun_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"multirun directory not found: {root}")
    jobs = {p.parent for p in root.rglob("metrics.json")}
    jobs |= {p.parent for p in root.rglob(".hydra") if p.is_dir() and p.parent != root}
    # hidden folders are internal work, not jobs: a study's `.prepare/` jobs fill caches and write no cell
    jobs = {j for j in jobs if not any(part.startswith(".") for part in j.relative_to(root).parts)}
    rows, skipped = [], []
    for job in sorted(jobs):
        if not (job / "metrics.json").is_file():
            skipped.append(f"{job}: no metrics.json (unfinished or failed)")
            continue
        try:
            row = read_job(job)
        except DataError as e:  # a damaged metrics.json: utils.read_json names it
            skipped.append(str(e))
            continue
        if row is not None:
            rows.append(row)
    for reason in skipped:
        log.warning("skipped job %s", reason)
    if not rows:
        extra = f" ({len(skipped)} job(s) skipped, e.g. {skipped[0]})" if skipped else ""
        raise FileNotFoundError(f"no finished {needs} under {root}{extra}")
    frame = pd.DataFrame(rows)
    frame.attrs["skipped"] = skipped
    return frame


def skipped_note(runs: pd.DataFrame) -> list[str]:
    """The header lines naming the jobs left out (none: no lines)."""
    skipped = runs.attrs.get("skipped", [])
    if not skipped:
        return []
    shown = "; ".join(skipped[:5]) + (f"; and {len(skipped) - 5} more" if len(skipped) > 5 else "")
    return [f"**{len(skipped)} job(s) skipped** (missing or broken metrics.json): {shown}", ""]


def read_job(job: Path, root: Path) -> dict[str, Any] | None:
    """A job's overrides as columns, then every metric in its `metrics.json`."""
    overrides_path = job / ".hydra" / "overrides.yaml"
    if not overrides_path.is_file():
        log.warning("%s has metrics.json but no .hydra/overrides.yaml: skipped", job)
        return None
    return {
        "job": str(job.relative_to(root)),
        **_parse_overrides(overrides_path),
        **read_json(job / "metrics.json"),
    }


def collect_runs(multirun_dir: str | Path) -> pd.DataFrame:
    """One row per finished job: its overrides as columns, then every metric in `metrics.json`."""
    root = Path(multirun_dir)
    return collect(root, lambda job: read_job(job, root), "jobs (metrics.json + .hydra/overrides.yaml)")


def summarize(
    runs: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    seed_keys: Sequence[str] = SEED_KEYS,
    root: Path | None = None,
) -> pd.DataFrame:
    """Mean, std and count over seeds for every setting (all override columns except the seed ones); with the
    multirun `root`, a 95% bootstrap interval of test macro-F1 from the jobs' predictions.csv."""
    metric_cols = [c for c in runs.columns if "/" in c]
    if metrics:
        missing = [m for m in metrics if m not in runs.columns]
        if missing:
            raise KeyError(f"metrics not found in runs: {missing}")
        wanted = list(metrics)
    else:
        wanted = [m for m in DEFAULT_METRICS if m in runs.columns] + sorted(
            c for c in metric_cols if c.startswith("test/f1/")
        )
    settings = [c for c in runs.columns if c not in metric_cols and c != "job" and c not in seed_keys]
    keyed = runs.assign(**{c: runs[c].fillna("") for c in settings}) if settings else runs.assign(_all="all")
    group_cols = settings or ["_all"]
    grouped = keyed.groupby(group_cols, sort=True, dropna=False)[wanted]
    mean, std, n = grouped.mean(), grouped.std(ddof=1), grouped.size()  # std is NaN for one seed: no spread
    out = pd.DataFrame(index=mean.index)
    out["n_seeds"] = n
    for m in wanted:
        out[f"{m} mean"] = mean[m]
        out[f"{m} std"] = std[m]
    if "test/macro_f1" in wanted and root is not None:
        lo_hi = grouped.apply(lambda g: _interval(keyed.loc[g.index, "job"], root), include_groups=False)
        out["test/macro_f1 ci_low"] = [x[0] for x in lo_hi]
        out["test/macro_f1 ci_high"] = [x[1] for x in lo_hi]
    return out.reset_index()


def _interval(jobs: pd.Series, root: Path, n_boot: int = 2000) -> tuple[float, float]:
    """95% bootstrap interval of the mean test macro-F1 over these jobs (seeds) from their predictions.csv;
    NaN when one is missing. Raises when they were not scored on the same test posts."""
    from sentisynth.evaluation import check_same_test_set, read_test_predictions
    from sentisynth.stats import bootstrap_f1, percentile_interval

    paths = [root / str(j) / "predictions.csv" for j in jobs]
    if not all(p.is_file() for p in paths):
        return float("nan"), float("nan")
    read = [read_test_predictions(p) for p in paths]
    for p, (names, gold, _, texts) in zip(paths, read):
        check_same_test_set((read[0][0], read[0][1], read[0][3]), (names, gold, texts), str(p))
    preds = np.stack([r[2] for r in read])[None]
    lo, hi = percentile_interval(bootstrap_f1(read[0][1], preds, len(read[0][0]), n_boot)[:, 0, -1])
    return float(lo), float(hi)


def count_text(value: Any) -> str:
    """A count as an integer; a mean of counts over seeds keeps one decimal only when it is not whole."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    v = float(value)
    return f"{v:.0f}" if v.is_integer() else f"{v:.1f}"


def is_count(metric: str) -> bool:
    """`train/n_seed`, `train/n/joy`, `leak/n_dropped`: numbers of posts, not scores."""
    leaf = metric.rsplit("/", 2)
    return any(part == "n" or part.startswith("n_") for part in leaf[-2:])


def varying(summary: pd.DataFrame, keys: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """The setting columns that differ between rows, and the ones that do not (`logger=none` in every job)."""
    if len(summary) < 2:
        return list(keys), {}
    same = {
        k: str(summary[k].iloc[0]) for k in keys if k != "n_seeds" and summary[k].astype(str).nunique() == 1
    }
    return [k for k in keys if k not in same], same


def _cell(row: pd.Series, m: str, digits: int) -> str:
    """`mean ± std [interval]`; counts (is_count) as whole numbers, a non-whole mean with one decimal."""
    if is_count(m):
        std = row[m + " std"]
        return count_text(row[m + " mean"]) + ("" if pd.isna(std) else f" ± {std:.1f}")
    return (
        f"{row[m + ' mean']:.{digits}f}"
        + ("" if pd.isna(row[m + " std"]) else f" ± {row[m + ' std']:.{digits}f}")
        + (
            ""
            if pd.isna(row.get(m + " ci_low", np.nan))
            else f" [{row[m + ' ci_low']:.{digits}f}, {row[m + ' ci_high']:.{digits}f}]"
        )
    )


def to_markdown(summary: pd.DataFrame, digits: int = 4) -> str:
    """Markdown table with `mean ± std [95% interval]` cells (the interval where predictions gave one); setting
    columns that are the same in every row are named once above the table instead of repeated per row."""
    means = [c[: -len(" mean")] for c in summary.columns if c.endswith(" mean")]
    all_keys = [c for c in summary.columns if not c.endswith((" mean", " std", " ci_low", " ci_high"))]
    keys, same = varying(summary, all_keys)
    head = f"Same in every row: {', '.join(f'{k}={v}' for k, v in same.items())}\n\n" if same else ""
    rows = [
        [count_text(row[k]) if k == "n_seeds" else str(row[k]) for k in keys]
        + [_cell(row, m, digits) for m in means]
        for _, row in summary.iterrows()
    ]
    return head + markdown_table(keys + means, rows)


def aggregate(multirun_dir: str | Path, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    root = Path(multirun_dir)
    runs = collect_runs(root)
    summary = summarize(runs, metrics, root=root)
    summary.attrs["skipped"] = runs.attrs.get("skipped", [])
    atomic_write_text(root / "runs.csv", runs.to_csv(index=False))
    atomic_write_text(root / "summary.csv", summary.to_csv(index=False))
    atomic_write_text(root / "summary.md", "\n".join(skipped_note(runs)) + to_markdown(summary))
    return summary


def main(argv: Sequence[str] | None = None, prog: str = "python -m sentisynth.aggregate") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("multirun_dir")
    parser.add_argument("--metric", action="append", help="metric key to summarise (repeatable)")
    args = parser.parse_args(argv)
    try:
        summary = aggregate(args.multirun_dir, args.metric)
    except (FileNotFoundError, KeyError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(to_markdown(summary), end="")
    print(f"wrote {Path(args.multirun_dir) / 'summary.csv'} and summary.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
