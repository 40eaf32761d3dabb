"""Study statistics from the runs' own predictions: cell intervals, paired arm comparisons, generation cost.

Input is the report's runs table (one row per finished run: `job`, `data`, `classifier`, `strategy`,
`seed_size`, `augment_n`, `seed` and the `metrics.json` keys). Each run's `predictions.csv` test rows are
read, checked to be the same test posts in the same order as every other run of its dataset (or this
raises), and checked to reproduce the run's `test/macro_f1` from `metrics.json` (or this raises), so
every interval and p-value traces back to those two files. The arithmetic is in `sentisynth.stats`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sentisynth import stats
from sentisynth.evaluation import check_same_test_set, read_test_predictions

METHOD = """\
**Method.** Every number is recomputed from the runs' `predictions.csv` (test rows) and checked against
their `metrics.json`. *Cell interval*: 95% percentile bootstrap ({n_boot} replicates) of the mean over
seeds of macro-F1; each replicate resamples the test posts with replacement and, with more than one seed,
the seeds too. *Comparisons*: every arm against `none` and against `real` with the same classifier, seed
size and `augment.n`, paired by seed and by test post: the difference is the mean over seeds of (arm -
baseline) F1; its 95% interval is the paired bootstrap (both systems share each replicate's test and seed
resample); the p-value is two-sided approximate randomization ({n_perm} rounds; each post's two predictions
swapped with probability 1/2, independently per seed, statistic pooled over seeds; it resamples test posts
only). `*` marks a difference whose 95% interval excludes 0: star and interval share one basis (test posts
and seeds), so a star never sits beside an interval that holds 0; p is the test-post-only check beside it.
`q` is the Benjamini-Hochberg adjusted p over all macro-F1 comparisons in this report. *Pairs of arms* (`study.compare`; default
adaptive vs shap): arm a minus arm b on the same classifier, seed size and `augment.n`, the same way, over the
seeds both ran. *Classifiers against
each other*: on the same arm, seed size and `augment.n`, every pair of classifiers, paired by seed and test
post in the same way. *Share of the real
gain*: (arm - none) / (real - none) per replicate, its percentile interval (undefined when real does not
differ from none). *MDD*: the smallest true difference this design detects with 80% power at 5%
(two-sided): 2.80 x the bootstrap standard error of the difference, so "not significant" reads "no effect
larger than the MDD". The intervals cover test-set sampling and, with several seeds, training-seed
variation among these seeds; they do not cover other datasets or generators.
"""


@dataclass
class Predictions:
    """One dataset's test posts and, per run, its predicted label ids."""

    names: list[str]
    gold: np.ndarray
    by_job: dict[str, np.ndarray]


def load_predictions(runs: pd.DataFrame, tol: float = 1e-6) -> dict[str, Predictions]:
    """Per dataset: the shared test posts and each run's predictions; raises on a mismatch with metrics.json or
    between runs' test sets. Runs without a `predictions.csv` are left out (their cells get no interval)."""
    out: dict[str, Predictions] = {}
    reference: dict[str, tuple[list[str], np.ndarray, list[str]]] = {}
    for _, r in runs.iterrows():
        path = Path(r["job"]) / "predictions.csv"
        if not path.is_file():
            continue
        names, gold, pred, texts = read_test_predictions(path)
        data = str(r["data"])
        if data not in reference:
            reference[data] = (names, gold, texts)
            out[data] = Predictions(names, gold, {})
        check_same_test_set(reference[data], (names, gold, texts), str(path))
        macro = stats.f1_scores(gold, pred, len(names))[-1]
        if "test/macro_f1" in r and abs(macro - float(r["test/macro_f1"])) > tol:
            raise ValueError(
                f"{path}: macro-F1 from the predictions ({macro:.6f}) differs from metrics.json "
                f"({float(r['test/macro_f1']):.6f})"
            )
        out[data].by_job[str(r["job"])] = pred
    return out


def _stack(part: pd.DataFrame, preds: Predictions) -> np.ndarray:
    """(S, n) predictions of one cell's runs, ordered by seed."""
    return np.stack([preds.by_job[j] for j in part.sort_values("seed")["job"]])


def _with_predictions(runs: pd.DataFrame, preds: dict[str, Predictions]) -> pd.DataFrame:
    return runs[
        [
            str(j) in preds.get(str(d), Predictions([], np.array([]), {})).by_job
            for j, d in zip(runs["job"], runs["data"])
        ]
    ]


def cell_intervals(
    runs: pd.DataFrame, preds: dict[str, Predictions], keys: list[str], n_boot: int = 2000
) -> pd.DataFrame:
    """Per cell (keys): macro-F1 mean over seeds, its 95% bootstrap interval, the seed std and count, and the
    posts the arm actually added (mean over seeds; fewer than augment.n when filters left a class short)."""
    rows = []
    for key, part in runs.groupby(keys, sort=False):
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        mean = float(part["test/macro_f1"].mean())
        lo = hi = np.nan
        usable = _with_predictions(part, preds)
        if len(usable) == len(part):
            p = preds[str(row["data"])]
            samples = stats.bootstrap_f1(p.gold, _stack(part, p)[None], len(p.names), n_boot)[:, 0, -1]
            lo, hi = stats.percentile_interval(samples)
        added = (part["train/n_total"] - part["train/n_seed"]).mean() if "train/n_total" in part else np.nan
        rows.append(
            {
                **row,
                "macro_f1": mean,
                "ci_low": float(lo),
                "ci_high": float(hi),
                "seed_std": float(part["test/macro_f1"].std(ddof=1)) if len(part) > 1 else np.nan,
                "n_seeds": len(part),
                "posts_added": float(added),  # mean over seeds; below augment.n: the arm ran short
            }
        )
    return pd.DataFrame(rows)


def minority_first(preds: Predictions) -> list[int]:
    """Class ids by test support, rarest first."""
    return list(np.argsort(np.bincount(preds.gold, minlength=len(preds.names)), kind="stable"))


def _compare(
    p: Predictions,
    systems: dict[str, np.ndarray],
    arm: str,
    n_boot: int,
    n_perm: int,
    baselines: tuple[str, ...] = ("none", "real"),
) -> list[dict]:
    """Rows of `arm` against each baseline it is not (`none` and `real`, or the other arm of a `pairs` entry),
    macro-F1 then per class."""
    k = len(p.names)
    names = list(systems)
    samples = stats.bootstrap_f1(p.gold, np.stack(list(systems.values())), k, n_boot)  # (B, m, k + 1)
    observed = np.stack([np.mean([stats.f1_scores(p.gold, s, k) for s in systems[x]], axis=0) for x in names])
    order = [k, *minority_first(p)]  # macro first, then classes rarest first
    labels = ["macro_f1", *[f"f1/{p.names[c]}" for c in order[1:]]]
    rows = []
    for base in baselines:
        if base not in systems or base == arm:
            continue
        i, j = names.index(arm), names.index(base)
        diff = samples[:, i] - samples[:, j]
        lo, hi = stats.percentile_interval(diff)
        pval = stats.randomization_test(p.gold, systems[arm], systems[base], k, n_perm)
        mdd = stats.min_detectable_difference(diff.std(axis=0, ddof=1))
        for label, c in zip(labels, order):
            rows.append(
                {
                    "arm": arm,
                    "baseline": base,
                    "metric": label,
                    "diff": observed[i, c] - observed[j, c],
                    "ci_low": lo[c],
                    "ci_high": hi[c],
                    "p": pval[c],
                    "mdd": mdd[c],
                }
            )
    if arm not in ("none", "real") and {"none", "real"} <= set(systems):
        i, j, r = names.index(arm), names.index("none"), names.index("real")
        real_gain = samples[:, r, k] - samples[:, j, k]
        g_lo, g_hi = stats.percentile_interval(real_gain)
        # a share of a gain whose interval holds 0 is undefined (it swung to -32 on a real gain of -0.001)
        defined = bool(g_lo > 0 or g_hi < 0)
        share = stats.ratio_samples(samples[:, i, k] - samples[:, j, k], real_gain)
        lo, hi = stats.percentile_interval(share) if defined else (np.nan, np.nan)
        gain = observed[r, k] - observed[j, k]
        rows.append(
            {
                "arm": arm,
                "baseline": "share_of_real_gain",
                "metric": "macro_f1",
                "diff": (observed[i, k] - observed[j, k]) / gain if gain and defined else np.nan,
                "ci_low": lo,
                "ci_high": hi,
                "p": np.nan,
                "mdd": np.nan,
            }
        )
    return rows


def comparisons(
    runs: pd.DataFrame,
    preds: dict[str, Predictions],
    n_boot: int = 2000,
    n_perm: int = 9999,
    pairs: list[tuple[str, str]] | None = None,
) -> pd.DataFrame:
    """Every arm against `none` and `real` per dataset, classifier, seed size and `augment.n`, paired by seed
    (only seeds every compared arm has) and by test post. `none` adds nothing, so it serves every `augment.n`.
    `pairs` ([a, b], e.g. adaptive and shap): a against b the same way (`baseline` b), over the seeds both ran."""
    runs = _with_predictions(runs, preds)
    rows = []
    for (data, clf, size), part in runs.groupby(["data", "classifier", "seed_size"], sort=False):
        p = preds[str(data)]
        none = part[part.strategy == "none"]
        for n, group in part[part.strategy != "none"].groupby("augment_n", sort=False):
            for arm in group.strategy.unique():
                cells = {
                    "none": none,
                    "real": group[group.strategy == "real"],
                    arm: group[group.strategy == arm],
                }
                cells = {x: c for x, c in cells.items() if not c.empty}
                seeds = set.intersection(*(set(c.seed) for c in cells.values()))
                if "none" not in cells or not seeds:
                    continue
                systems = {x: _stack(c[c.seed.isin(seeds)], p) for x, c in cells.items()}
                for row in _compare(p, systems, arm, n_boot, n_perm):
                    rows.append(
                        {
                            "data": data,
                            "classifier": clf,
                            "seed_size": size,
                            "augment_n": n,
                            **row,
                            "n_seeds": len(seeds),
                        }
                    )
    table = pd.DataFrame(rows + pair_rows(runs, preds, pairs or [], n_boot, n_perm))
    if not table.empty:
        tested = (table.metric == "macro_f1") & table.p.notna()
        table["q"] = np.nan
        table.loc[tested, "q"] = stats.benjamini_hochberg(table.loc[tested, "p"].to_numpy())
        table["significant"] = excludes_zero(table) & table.p.notna()  # share-of-gain rows are not tests
    return table


def pair_rows(
    runs: pd.DataFrame, preds: dict[str, Predictions], pairs: list[tuple[str, str]], n_boot: int, n_perm: int
) -> list[dict]:
    """Arm a against arm b ([a, b] in `pairs`) on the same dataset, classifier, seed size and `augment.n`,
    paired by the seeds both ran and by test post: macro-F1, then each class."""
    keys = ["data", "classifier", "seed_size", "augment_n"]
    rows = []
    for key, part in runs.groupby(keys, sort=False):
        p = preds[str(key[0])]
        for a, b in pairs:
            cells = {x: part[part.strategy == x] for x in (str(b), str(a))}
            seeds = set(cells[str(a)].seed) & set(cells[str(b)].seed)
            if not seeds:
                continue
            systems = {x: _stack(c[c.seed.isin(seeds)], p) for x, c in cells.items()}
            for row in _compare(p, systems, str(a), n_boot, n_perm, baselines=(str(b),)):
                rows.append({**dict(zip(keys, key)), **row, "n_seeds": len(seeds)})
    return rows


def excludes_zero(table: pd.DataFrame) -> pd.Series:
    """The star: the 95% paired-bootstrap interval excludes 0 (the interval's own basis: posts and seeds)."""
    return (table.ci_low > 0) | (table.ci_high < 0)


def _pair_row(p: Predictions, a: np.ndarray, b: np.ndarray, n_boot: int, n_perm: int) -> dict:
    """Macro-F1 of system a minus system b (each (S, n), paired by seed and post): diff, interval, p, MDD."""
    k = len(p.names)
    samples = stats.bootstrap_f1(p.gold, np.stack([a, b]), k, n_boot)[:, :, k]  # (B, 2)
    diff = samples[:, 0] - samples[:, 1]
    lo, hi = stats.percentile_interval(diff)
    observed = [np.mean([stats.f1_scores(p.gold, s, k)[k] for s in x]) for x in (a, b)]
    return {
        "diff": float(observed[0] - observed[1]),
        "ci_low": float(lo),
        "ci_high": float(hi),
        "p": float(stats.randomization_test(p.gold, a, b, k, n_perm)[k]),
        "mdd": float(stats.min_detectable_difference(diff.std(ddof=1))),
    }


def classifier_comparisons(
    runs: pd.DataFrame, preds: dict[str, Predictions], n_boot: int = 2000, n_perm: int = 9999
) -> pd.DataFrame:
    """Every pair of classifiers on the same dataset, arm, seed size and `augment.n` (transformer vs TF-IDF:
    macro-F1 of the first minus the second), paired by the seeds both ran and by test post."""
    runs = _with_predictions(runs, preds)
    rows = []
    keys = ["data", "strategy", "seed_size", "augment_n"]
    for key, part in runs.groupby(keys, sort=False):
        classifiers = sorted(part.classifier.unique())
        p = preds[str(key[0])]
        for i, first in enumerate(classifiers):
            for second in classifiers[i + 1 :]:
                a, b = part[part.classifier == first], part[part.classifier == second]
                seeds = set(a.seed) & set(b.seed)
                if not seeds:
                    continue
                sa, sb = (_stack(x[x.seed.isin(seeds)], p) for x in (a, b))
                row = _pair_row(p, sa, sb, n_boot, n_perm)
                rows.append(
                    {**dict(zip(keys, key)), "classifier": first, "vs": second, **row, "n_seeds": len(seeds)}
                )
    table = pd.DataFrame(rows)
    if not table.empty:
        table["significant"] = excludes_zero(table)
    return table


def _cost_row(job: Path) -> dict | None:
    """What one run's synthetic (job/generation/) or pseudo (job/) set cost: posts in and kept, seconds. An
    adaptive loop (`guidance=adaptive`) adds `steer_s` (its refits and explanations) and counts as kept the
    posts it delivers (its best round's; the rounds after it were paid for too)."""
    from sentisynth.utils import read_json

    for where in (job / "generation", job):
        if (where / "filter_report.json").is_file():
            report = read_json(where / "filter_report.json")
            timings = read_json(where / "timings.json") if (where / "timings.json").is_file() else {}
            generated = where.name == "generation"
            generate_s = float(timings.get("generate_s") or 0.0) if generated else 0.0
            filter_s = sum(float(s.get("time_s") or 0.0) for s in report.get("filters", []))
            loop = report.get("adaptive") or {}
            return {
                "set": timings.get("final_key") or str(job),
                "posts_in": int(report.get("n_in", 0)),
                "kept": int(loop.get("n_delivered", report.get("n_kept", 0))),
                "generate_s": generate_s,
                "filter_s": filter_s,
                "steer_s": float(timings.get("steer_s") or 0.0) if generated else 0.0,
                "cache_hit": where.name == "generation" and not generate_s,
            }
    return None


def made_by_launcher_jobs(rows: list[dict], roots: set[Path]) -> list[dict]:
    """Cost rows of the sets that a study's launcher made in its phase-1 jobs (`<study>/.prepare/<job>/
    generation/`): there every cell reads the set from the cache, so without these no run has its time."""
    arm_of = {r["set"]: (r["strategy"], r["seed_size"]) for r in rows}
    out = []
    for root in sorted(roots):
        for gen in sorted(root.glob(".prepare/*/generation")):
            row = _cost_row(gen.parent)
            if row is not None and not row["cache_hit"] and row["set"] in arm_of:
                strategy, seed_size = arm_of[row["set"]]
                out.append({"strategy": strategy, "seed_size": seed_size, **row})
    return out


def generation_cost(runs: pd.DataFrame) -> pd.DataFrame:
    """Per arm and seed size: posts made (generated, or corpus candidates for pseudo) per post kept by the
    filters, and seconds (generation + filtering + an adaptive loop's steering) per kept post. A set shared by several runs (classifiers,
    `augment.n` drawn from the same set) counts once, timed by the run that made it (cache hits cost 0 s)."""
    rows = []
    for _, r in runs.iterrows():
        row = _cost_row(Path(r["job"]))
        if row is not None:
            if row["set"] == str(r["job"]):  # pseudo: one filtered corpus sample per seed set
                row["set"] = f"{r['data']}:{r['strategy']}:{r['seed_size']}:{r['seed']}"
            rows.append({"strategy": r["strategy"], "seed_size": r["seed_size"], **row})
    if not rows:
        return pd.DataFrame()
    rows += made_by_launcher_jobs(rows, {Path(j).parent for j in runs["job"]})
    sets = pd.DataFrame(rows).sort_values("cache_hit").drop_duplicates("set")  # the making run first
    out = (
        sets.groupby(["strategy", "seed_size"], sort=False)
        .agg(
            sets=("set", "size"),
            posts_in=("posts_in", "sum"),
            kept=("kept", "sum"),
            generate_s=("generate_s", "sum"),
            filter_s=("filter_s", "sum"),
            steer_s=("steer_s", "sum"),
            timed=("cache_hit", lambda h: int((~h).sum())),
        )
        .reset_index()
    )
    out["posts_per_kept"] = out.posts_in / out.kept.where(out.kept > 0)
    timed = out.timed == out.sets
    seconds = out.generate_s + out.filter_s + out.steer_s
    out["s_per_kept"] = (seconds / out.kept.where(out.kept > 0)).where(timed)
    return out
