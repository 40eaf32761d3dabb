"""The report's statistics on studies with a known answer: a copy of `none` is not different, +1000 real
posts at a 500-post seed are; predictions that cannot be paired or traced stop the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from sentisynth.cli import register_resolvers
from sentisynth.report import build_report
from tests.conftest import run_cli

register_resolvers()
NAMES = ["anger", "joy", "optimism", "sadness"]


def _job(
    root: Path,
    name: str,
    arm: str,
    seed: int,
    gold: np.ndarray,
    pred: np.ndarray,
    texts: list[str] | None = None,
) -> None:
    """A finished run as a study writes it: config, cell.json, metrics.json and predictions.csv."""
    from sentisynth.stats import f1_scores

    job = root / name
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "config.yaml").write_text(
        yaml.safe_dump({"seed": seed, "data": {"seed_size": 500}, "augment": {"n": 1000}})
    )
    choices = {"data": "tweet_eval_emotion", "classifier": "tfidf_lr"}
    (job / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"runtime": {"choices": choices}}}))
    (job / "cell.json").write_text(json.dumps({"arm": arm}))
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"+arm={arm}", f"seed={seed}"]))
    f1 = f1_scores(gold, pred, len(NAMES))
    (job / "metrics.json").write_text(
        json.dumps({"test/macro_f1": f1[-1], **{f"test/f1/{n}": f1[i] for i, n in enumerate(NAMES)}})
    )
    texts = texts or [f"post {i}" for i in range(len(gold))]
    frame = pd.DataFrame(
        {
            "split": "test",
            "index": range(len(gold)),
            "text": texts,
            "gold": [NAMES[g] for g in gold],
            "predicted": [NAMES[p] for p in pred],
            **{f"prob/{n}": 0.25 for n in NAMES},
        }
    )
    frame.to_csv(job / "predictions.csv", index=False)


def _noisy(gold: np.ndarray, accuracy: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pred = gold.copy()
    wrong = rng.random(len(gold)) > accuracy
    pred[wrong] = rng.integers(0, len(NAMES), wrong.sum())
    return pred


def _study(root: Path, gold: np.ndarray, n_seeds: int, **arms) -> None:
    """A study of `none` (50% accurate) and each arm, whose predictions are `arms[name](seed, none_pred)`."""
    for seed in range(n_seeds):
        none = _noisy(gold, 0.5, seed)
        _job(root, f"none{seed}", "none", seed, gold, none)
        for arm, predict in arms.items():
            _job(root, f"{arm}{seed}", arm, seed, gold, predict(seed, none))


@pytest.fixture
def gold() -> np.ndarray:
    return np.random.default_rng(0).choice(len(NAMES), size=800, p=[0.4, 0.3, 0.1, 0.2])


def test_copy_of_none_is_not_different_and_a_better_arm_is(
    tmp_path: Path, gold: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "sentisynth.report.N_BOOT", 500
    )  # fewer replicates: the answers here are far from 0.05
    monkeypatch.setattr("sentisynth.report.N_PERM", 999)
    root = tmp_path / "study"
    _study(
        root, gold, 3, copy=lambda seed, none: none.copy(), real=lambda seed, _: _noisy(gold, 0.7, 10 + seed)
    )
    text = build_report(root).read_text()
    comp = pd.read_csv(root / "report" / "comparisons.csv")
    macro = comp[comp.metric == "macro_f1"].set_index(["arm", "baseline"])
    copy = macro.loc[("copy", "none")]
    assert (
        copy["diff"] == 0 and copy.ci_low == 0 and copy.ci_high == 0 and copy.p == 1 and not copy.significant
    )
    real = macro.loc[("real", "none")]
    assert (
        real["diff"] > 0.1 and real.ci_low > 0 and real.p <= 0.001 and real.significant and real.n_seeds == 3
    )
    assert macro.loc[("copy", "real")].significant and macro.loc[("copy", "real")]["diff"] < 0
    share = comp[comp.baseline == "share_of_real_gain"].set_index("arm")
    assert share.loc["copy", "diff"] == 0  # recovers none of the real gain
    # per-class rows, rarest class (optimism) first, and the method in the header
    classes = comp[(comp.arm == "real") & (comp.baseline == "none")].metric.tolist()
    assert classes == ["macro_f1", "f1/optimism", "f1/sadness", "f1/joy", "f1/anger"]
    assert "**Method.**" in text and "approximate randomization" in text
    cells = pd.read_csv(root / "report" / "cells.csv").set_index("strategy")
    assert cells.loc["real", "ci_low"] < cells.loc["real", "macro_f1"] < cells.loc["real", "ci_high"]
    assert (root / "report" / "forest.png").stat().st_size > 1000


def test_share_of_real_gain_is_undefined_when_real_does_not_differ(
    tmp_path: Path, gold: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`real` identical to `none`: no gain to share, so the share and its interval are NaN, not a ratio of
    noise (a MiniLM study row once read -32 on a real gain of -0.001)."""
    monkeypatch.setattr("sentisynth.report.N_BOOT", 300)
    monkeypatch.setattr("sentisynth.report.N_PERM", 199)
    root = tmp_path / "study"
    _study(
        root, gold, 2, real=lambda seed, none: none.copy(), arm=lambda seed, _: _noisy(gold, 0.6, 20 + seed)
    )
    build_report(root)
    comp = pd.read_csv(root / "report" / "comparisons.csv")
    share = comp[comp.baseline == "share_of_real_gain"].set_index("arm").loc["arm"]
    assert np.isnan(share["diff"]) and np.isnan(share.ci_low) and np.isnan(share.ci_high)
    arm = comp[(comp.arm == "arm") & (comp.baseline == "none") & (comp.metric == "macro_f1")].iloc[0]
    assert arm["diff"] > 0 and arm.significant  # the arm's own comparison is untouched


def test_aggregate_interval_from_predictions(tmp_path: Path, gold: np.ndarray) -> None:
    from sentisynth.aggregate import aggregate

    root = tmp_path / "sweep"
    for seed in range(2):
        _job(root, f"none{seed}", "none", seed, gold, _noisy(gold, 0.5, seed))
        _job(root, f"copy{seed}", "copy", seed, gold, gold)
    summary = aggregate(root).set_index("arm")
    lo, hi = summary.loc["none", "test/macro_f1 ci_low"], summary.loc["none", "test/macro_f1 ci_high"]
    assert lo < summary.loc["none", "test/macro_f1 mean"] < hi and hi - lo < 0.25
    assert summary.loc["copy", "test/macro_f1 ci_low"] == summary.loc["copy", "test/macro_f1 ci_high"] == 1.0
    assert f"[{lo:.4f}, {hi:.4f}]" in (root / "summary.md").read_text()


def test_different_test_sets_or_untraceable_predictions_fail_loudly(tmp_path: Path, gold: np.ndarray) -> None:
    root = tmp_path / "a"
    _job(root, "none0", "none", 0, gold, gold)
    _job(root, "real0", "real", 0, gold, gold, texts=[f"other {i}" for i in range(len(gold))])
    with pytest.raises(ValueError, match="test posts differ"):
        build_report(root)
    root = tmp_path / "b"
    _job(root, "none0", "none", 0, gold, gold)
    metrics = json.loads((root / "none0" / "metrics.json").read_text())
    (root / "none0" / "metrics.json").write_text(json.dumps({**metrics, "test/macro_f1": 0.5}))
    with pytest.raises(ValueError, match="differs from metrics.json"):
        build_report(root)


@pytest.mark.slow
def test_real_data_1000_real_posts_at_seed_500_is_significant_a_rerun_of_none_is_not(
    tmp_path: Path, shared_data: Path
) -> None:
    """TF-IDF LR on TweetEval emotion, one seed: `real` (+1000 posts) beats `none`; `again` (seed only, run a
    second time: the same data) does not differ from it."""
    study_dir = tmp_path / "study"
    done = run_cli(
        "train.py",
        "experiment=offline_tweeteval",
        "hydra/launcher=basic",
        "study.seeds=[0]",
        "study.seed_sizes=[500]",
        "study.augment_n=[1000]",
        "~study.arms",
        "+study.arms={none:['augment=none'],again:['augment=none'],real:['augment=real']}",
        "~study.classifiers",
        "+study.classifiers={tfidf_lr:{seeds:all}}",
        f"study.dir={study_dir}",
        f"paths.data_dir={shared_data}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.run.dir={tmp_path / 'run'}",
        "logger=none",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    comp = pd.read_csv(study_dir / "report" / "comparisons.csv")
    macro = comp[comp.metric == "macro_f1"].set_index(["arm", "baseline"])
    real, again = macro.loc[("real", "none")], macro.loc[("again", "none")]
    assert real.significant and real["diff"] > 0 and real.ci_low > 0 and real.p < 0.05
    assert not again.significant and again.p == 1 and again["diff"] == 0
    metrics = json.loads((study_dir / "500_real_n1000_tfidf_lr_seed0" / "metrics.json").read_text())
    none = json.loads((study_dir / "500_none_tfidf_lr_seed0" / "metrics.json").read_text())
    # the leak guard drops any pool post that (near-)duplicates a val/test post: every drop is counted
    assert metrics["train/n_real"] + metrics["leak/dropped/real"] == 1000
    assert metrics["leak/dropped/real"] <= 5
    assert real["diff"] == pytest.approx(metrics["test/macro_f1"] - none["test/macro_f1"])


def test_generation_cost_counts_a_shared_set_once(tmp_path: Path) -> None:
    """Two cells draw from one generated set (the maker timed it, the other hit the cache); a pseudo arm's
    corpus sample is shared by its classifiers: each set counts once."""
    from sentisynth.comparisons import generation_cost

    def cell(name: str, strategy: str, where: str, report: dict, timings: dict | None) -> dict:
        out = tmp_path / name / where
        out.mkdir(parents=True, exist_ok=True)
        (out / "filter_report.json").write_text(json.dumps(report))
        if timings is not None:
            (out / "timings.json").write_text(json.dumps(timings))
        return {"job": str(tmp_path / name), "data": "d", "strategy": strategy, "seed_size": "500", "seed": 0}

    made = {
        "n_in": 4000,
        "n_kept": 1000,
        "filters": [{"name": "teacher", "time_s": 30.0}, {"name": "dedup", "time_s": 10.0}],
    }
    pseudo = {"n_in": 2000, "n_kept": 500, "filters": [{"name": "teacher", "time_s": 20.0}]}
    runs = pd.DataFrame(
        [
            cell("a", "shap", "generation", made, {"generate_s": 160.0, "final_key": "k1"}),
            cell(
                "b", "shap", "generation", made, {"generate_s": 0.0, "final_key": "k1"}
            ),  # cache hit, same set
            cell("c", "pseudo", "", pseudo, None),
            cell("d", "pseudo", "", pseudo, None),
            {"job": str(tmp_path / "e"), "data": "d", "strategy": "none", "seed_size": "500", "seed": 0},
        ]
    )
    cost = generation_cost(runs).set_index("strategy")
    assert cost.loc["shap", "sets"] == 1 and cost.loc["shap", "posts_per_kept"] == 4.0
    assert cost.loc["shap", "s_per_kept"] == pytest.approx((160 + 40) / 1000)
    assert cost.loc["pseudo", "sets"] == 1 and cost.loc["pseudo", "posts_per_kept"] == 4.0
    assert "none" not in cost.index


def test_generation_cost_times_a_set_made_by_a_launcher_prepare_job(tmp_path: Path) -> None:
    """Through a launcher, a study's phase-1 job (`.prepare/<job>/`) makes the set and every cell hits the
    cache: the cost still has the making job's seconds."""
    from sentisynth.comparisons import generation_cost

    made = {"n_in": 3000, "n_kept": 1000, "filters": [{"name": "teacher", "time_s": 40.0}]}
    for where, timings in ((".prepare/500_shap_seed0", 160.0), ("500_shap_n200_lr_seed0", 0.0)):
        gen = tmp_path / where / "generation"
        gen.mkdir(parents=True)
        (gen / "filter_report.json").write_text(json.dumps(made))
        (gen / "timings.json").write_text(json.dumps({"generate_s": timings, "final_key": "k1"}))
    runs = pd.DataFrame(
        [
            {
                "job": str(tmp_path / "500_shap_n200_lr_seed0"),
                "data": "d",
                "strategy": "shap",
                "seed_size": "500",
                "seed": 0,
            }
        ]
    )
    cost = generation_cost(runs).set_index("strategy")
    assert cost.loc["shap", "sets"] == 1 and cost.loc["shap", "timed"] == 1
    assert cost.loc["shap", "s_per_kept"] == pytest.approx((160 + 40) / 1000)


def test_adaptive_loop_cost_is_its_rounds_summed_with_steering_per_delivered_post(tmp_path: Path) -> None:
    """An adaptive loop's filter_report.json is its rounds' reports summed (same shape as one run's); the
    cost table adds its steering seconds and prices it per post it delivered (best round), not per kept post."""
    from sentisynth.comparisons import generation_cost
    from sentisynth.filters.report import merge_reports, report_rows

    def report(n_in: int, kept: int, t: float) -> dict:
        step = {
            "name": "dedup",
            "in": n_in,
            "kept": kept,
            "dropped": n_in - kept,
            "acceptance_rate": kept / n_in,
            "relabelled": 0,
            "reasons": {"near_duplicate": n_in - kept},
            "time_s": t,
            "per_class": {"joy": {"in": n_in, "kept": kept, "dropped": n_in - kept, "reasons": {}}},
            "kappa": 0.5,  # a filter's own figure: does not add up, left out
        }
        return {
            "n_in": n_in,
            "n_kept": kept,
            "n_dropped": n_in - kept,
            "acceptance_rate": kept / n_in,
            "filters_applied": ["dedup"],
            "per_class": {"joy": {"in": n_in, "kept": kept, "dropped": n_in - kept, "budget": kept}},
            "filters": [step],
        }

    merged = merge_reports([report(400, 300, 2.0), report(600, 500, 3.0), report(500, 400, 1.0)])
    assert (merged["n_in"], merged["n_kept"], merged["n_dropped"]) == (1500, 1200, 300)
    assert merged["acceptance_rate"] == 0.8 and merged["per_class"]["joy"]["budget"] == 1200
    step = merged["filters"][0]
    assert step["time_s"] == 6.0 and step["reasons"] == {"near_duplicate": 300} and "kappa" not in step
    assert step["per_class"]["joy"]["acceptance_rate"] == 0.8
    assert report_rows(merged)[-1] == ["chain", "all", 1500, 1200, 300, 0.8, ""]  # printable as one run's
    merged["adaptive"] = {"rounds": 3, "n_delivered": 800}
    gen = tmp_path / "500_adaptive_n1000_lr_seed0" / "generation"
    gen.mkdir(parents=True)
    (gen / "filter_report.json").write_text(json.dumps(merged))
    (gen / "timings.json").write_text(json.dumps({"generate_s": 150.0, "steer_s": 44.0, "final_key": "k9"}))
    row = {"job": str(gen.parent), "data": "d", "strategy": "adaptive", "seed_size": "500", "seed": 0}
    cost = generation_cost(pd.DataFrame([row])).set_index("strategy")
    assert cost.loc["adaptive", "kept"] == 800 and cost.loc["adaptive", "steer_s"] == 44.0
    assert cost.loc["adaptive", "s_per_kept"] == pytest.approx((150 + 6 + 44) / 800)
