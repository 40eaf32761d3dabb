"""guidance=adaptive: budget allocation, validation-only steering, and a tiny run whose provenance shows
rounds, target classes and keywords that change between rounds, with no val or test post in any prompt."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sentisynth.generation.adaptive import AdaptiveConfig, allocate, allocate_pairs, most_confused_on_val
from tests.conftest import MINI_TINY


@pytest.fixture
def corpus_data(shared_data: Path) -> Path:
    """The shared data with its corpus (the tiny generator pretrains on it); skipped without."""
    if not (shared_data / "corpus").is_dir():
        pytest.skip(f"no corpus under {shared_data}")
    return shared_data


def test_allocate_gives_the_worst_classes_most_and_sums_to_the_total() -> None:
    f1 = np.array([0.9, 0.2, 0.5, 0.7])
    counts = allocate(40, f1, "f1_deficit", floor_share=0.2)
    assert counts.sum() == 40 and counts[1] == counts.max() and counts[0] == counts.min() >= 2
    assert np.all(np.diff(counts[np.argsort(f1)]) <= 0)  # lower F1, never a smaller share
    assert allocate(40, f1, "uniform", 0.2).tolist() == [10, 10, 10, 10]
    assert allocate(40, np.ones(4), "f1_deficit", 0.2).tolist() == [10, 10, 10, 10]  # nothing to fix


def test_allocate_pairs_gives_the_most_confused_pairs_most() -> None:
    conf = np.array([[6, 3, 1], [0, 10, 0], [4, 4, 2]])  # class 2 loses 80% of its val posts, class 0 40%
    counts, partners = allocate_pairs(60, conf, floor_share=0.2, slots=2)
    assert counts.shape == (2, 3) and counts.sum() == 60
    assert partners.tolist() == [[1, 2], [-1, -1], [0, 1]]  # ties: the lower class id first
    assert counts[:, 1].tolist() == [4, 0]  # no confusion: the even floor only, in slot 0
    assert counts[0, 2] == counts.max() == counts[1, 2] + 4  # 2->0 and 2->1 hurt alike; slot 0 has the floor
    assert counts[0, 0] > counts[1, 0] > 0  # 0->1 (30%) gets more than 0->2 (10%)
    none, _ = allocate_pairs(60, np.diag([5, 5, 5]), 0.2, 2)
    assert none.tolist() == [[20, 20, 20], [0, 0, 0]]  # nothing confused: uniform


def test_most_confused_on_val_and_config_checks() -> None:
    conf = np.array([[5, 3, 1], [0, 9, 0], [2, 2, 4]])
    assert most_confused_on_val(conf) == [1, -1, 0]  # ties: the lower class id
    assert AdaptiveConfig.from_guidance({"rounds": 2, "name": "adaptive"}).rounds == 2
    with pytest.raises(ValueError, match="guidance.allocation"):
        AdaptiveConfig.from_guidance({"allocation": "magic"})
    with pytest.raises(ValueError, match="guidance.pair_slots"):
        AdaptiveConfig.from_guidance({"allocation": "pairs", "pair_slots": 0})


@pytest.mark.slow
def test_tiny_adaptive_run(compose_cfg, corpus_data: Path, tmp_path: Path) -> None:
    """Three rounds of a miniature tiny generator on a 40-post seed: rounds, reasons and keywords in the
    provenance, steering from validation, and prompts made of seed posts only."""
    from sentisynth.data import load_data
    from sentisynth.generation import run_generate_stage

    cfg = compose_cfg(
        "generate",
        *MINI_TINY,
        f"paths.data_dir={corpus_data}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        "generator=tiny",
        "generator.budget.n_per_class=6",
        "data.seed_size=40",
        "guidance=adaptive",
        "guidance.rounds=3",
        "guidance.patience=3",
        "filters=none",
        "logger=none",
        "trainer.enable_progress_bar=false",
    )
    metrics = run_generate_stage(cfg)
    out = tmp_path / "run"
    history = json.loads((out / "adaptive.json").read_text())["rounds"]
    assert [h["round"] for h in history] == [-1, 0, 1, 2] and metrics["adaptive/rounds_run"] == 3
    assert {f"adaptive/round_{r}/val_macro_f1" for r in range(3)} <= set(metrics)
    rows = [json.loads(x) for x in (out / "adaptive_rounds.jsonl").read_text().splitlines()]
    assert {r["provenance"]["round"] for r in rows} == {0, 1, 2}
    later = [r["provenance"]["reason"] for r in rows if r["provenance"]["round"] > 0]
    assert all("val_f1" in w and "confused_with" in w and w["class"] for w in later)
    keywords = {
        rnd: {kw for r in rows if r["provenance"]["round"] == rnd for kw in r["provenance"]["keywords"]}
        for rnd in (0, 1, 2)
    }
    assert keywords[0] != keywords[1] or keywords[1] != keywords[2]  # re-explained and steered
    assert [sum(h["budget"]) for h in history] == [0, 8, 8, 8]  # 4 classes x 6 posts over 3 rounds
    assert history[1]["budget"] == [2, 2, 2, 2]  # round 0: the plan's split; later: by val F1

    data = load_data("tweet_eval", seed_size=40, seed=0, task="emotion", data_dir=str(corpus_data))
    seed_index, seed_texts = set(data.seed.index.tolist()), set(data.seed.texts)
    held_out = {t for t in list(data.val.texts) + list(data.test.texts) if t not in seed_texts}
    for r in rows:
        prov = r["provenance"]
        assert set(prov["exemplar_indices"]) <= seed_index and prov.get("anchor_index", -1) in seed_index | {
            -1
        }
        assert not any(t in prov["prompt"] for t in held_out if len(t.split()) >= 4), prov["prompt"]
    final = [json.loads(x) for x in (out / "synthetic.jsonl").read_text().splitlines()]
    best = metrics["adaptive/best_round"]
    assert final and all(r["provenance"]["round"] <= best for r in final)


@pytest.mark.slow
def test_pairs_allocation_asks_for_confused_pairs_steered_against_the_partner(
    compose_cfg, corpus_data: Path, tmp_path: Path
) -> None:
    """allocation=pairs: after round 0 each round is one request set per pair slot; a post's provenance names
    its pair, its slot, and contrastive keywords against that partner; the history's budgets add up."""
    from sentisynth.generation import run_generate_stage

    cfg = compose_cfg(
        "generate",
        *MINI_TINY,
        f"paths.data_dir={corpus_data}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        "generator=tiny",
        "generator.budget.n_per_class=6",
        "data.seed_size=40",
        "guidance=adaptive",
        "guidance.rounds=2",
        "guidance.deliver=all",
        "guidance.allocation=pairs",
        "guidance.pair_slots=2",
        "filters=none",
        "logger=none",
        "trainer.enable_progress_bar=false",
    )
    metrics = run_generate_stage(cfg)
    out = tmp_path / "run"
    history = json.loads((out / "adaptive.json").read_text())["rounds"]
    later = history[2]
    pair_budget = later["pair_budget"]
    assert sum(p["n"] for p in pair_budget) == sum(later["budget"]) == 12  # 24 posts over 2 rounds
    assert {p["slot"] for p in pair_budget} == {0, 1} and len(later["final_keys"]) == 2
    assert {k for k in metrics if "/pair_budget/" in k}  # in metrics (and so in W&B)
    rows = [json.loads(x) for x in (out / "adaptive_rounds.jsonl").read_text().splitlines()]
    steered = [r["provenance"] for r in rows if r["provenance"]["round"] == 1]
    assert {p.get("slot", 0) for p in steered} == {0, 1}
    for prov in steered:
        reason = prov["reason"]
        assert reason["pair"] == [reason["class"], reason["confused_with"]] != [None, None]
        slot = prov.get("slot", 0)
        asked = {p["against"] for p in pair_budget if p["class"] == reason["class"] and p["slot"] == slot}
        assert asked == {reason["confused_with"]}
    by_slot = {}
    for prov in steered:
        by_slot.setdefault((prov["reason"]["class"], prov.get("slot", 0)), prov["reason"]["confused_with"])
    for (name, slot), against in by_slot.items():  # the two slots of a class steer against different classes
        other = by_slot.get((name, 1 - slot))
        assert other is None or other != against


@pytest.mark.slow
def test_adaptive_as_a_train_arm_refits_the_runs_classifier(
    compose_cfg, corpus_data: Path, tmp_path: Path
) -> None:
    """`augment=synthetic guidance=adaptive` in train.py: the loop refits the run's own classifier (SVM here,
    not the LR that explains the seed), and the arm trains on the posts of the best round; the same loop again
    comes from its cache (no second round of refits)."""
    from sentisynth.train import run

    cfg = compose_cfg(
        "train",
        *MINI_TINY,
        f"paths.data_dir={corpus_data}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        "generator=tiny",
        "data.seed_size=40",
        "augment=synthetic",
        "guidance=adaptive",
        "augment.n=24",
        "classifier=tfidf_svm",
        "filters=none",
        "logger=none",
        "augment.analysis=false",
        "trainer.enable_progress_bar=false",
    )
    assert cfg.augment.generate.downstream_classifier.model == "svm" and cfg.augment.guidance == "adaptive"
    metrics = run(cfg)
    generated = json.loads((tmp_path / "run" / "generation" / "metrics.json").read_text())
    assert (
        generated["adaptive/rounds_run"] >= 1
        and metrics["train/n_synthetic"] == generated["generate/n_samples"] > 0
    )
    # a second run of the same loop (a study cell after its launcher's prepare job) reads it from the cache
    again = cfg.copy()
    again.paths.output_dir = str(tmp_path / "again")
    run(again)
    first, second = (tmp_path / d / "generation" for d in ("run", "again"))
    timings = json.loads((second / "timings.json").read_text())
    assert timings["loop_cache_hit"] and timings["generate_s"] == timings["steer_s"] == 0
    assert timings["final_key"] == json.loads((first / "timings.json").read_text())["final_key"]
    assert (second / "synthetic.jsonl").read_text() == (first / "synthetic.jsonl").read_text()


@pytest.mark.slow
def test_adaptive_arm_in_a_study_with_the_real_curve_and_its_cost(corpus_data: Path, tmp_path: Path) -> None:
    """offline_tweeteval's arms cut to a miniature (one seed, a 40-post seed, the miniature tiny generator,
    the dedup filter only), run by the study machinery in this process: the adaptive arm composes and runs, the
    report has adaptive - shap, every arm's real-post equivalent off the real arm's own augment.n axis, and a
    generation-cost row for the adaptive loop (its rounds' filter reports summed)."""
    import pandas as pd

    from tests.conftest import run_cli

    study_dir = tmp_path / "study"
    gen = ",".join(  # quoted: list elements holding `=`
        f"'{o}'"
        for o in [
            *MINI_TINY,
            "generator=tiny",
            "generator.budget.min_kept_share=0",
            "augment.analysis=false",
        ]
        + [f"filters.{f}=null" for f in ("heuristic", "perplexity", "teacher")]
    )
    done = run_cli(
        "train.py",
        "experiment=offline_tweeteval",
        "hydra/launcher=basic",
        "study.seeds=[0]",
        "study.seed_sizes=[40]",
        "study.augment_n=[24]",
        "~study.arms.naive",
        "~study.arms.diverse",
        "~study.arms.adaptive_all",
        "study.arms.real.augment_n=[12,24]",
        "study.arms.adaptive.classifiers=[tfidf_lr]",
        "study.arms.adaptive.overrides=['augment=synthetic_adaptive','guidance.patience=3']",  # every round runs
        "~study.classifiers",
        "+study.classifiers={tfidf_lr:{seeds:all}}",
        f"study.generation_overrides=[{gen}]",
        f"study.dir={study_dir}",
        f"paths.data_dir={corpus_data}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.run.dir={tmp_path / 'run'}",
        "logger=none",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    cells = sorted(p.parent.name for p in study_dir.glob("*/metrics.json"))
    assert cells == sorted(
        ["40_none_tfidf_lr_seed0", "40_real_n12_tfidf_lr_seed0", "40_real_n24_tfidf_lr_seed0"]
        + ["40_shap_n24_tfidf_lr_seed0", "40_adaptive_n24_tfidf_lr_seed0"]
    )
    generation = study_dir / "40_adaptive_n24_tfidf_lr_seed0" / "generation"
    rounds = json.loads((generation / "adaptive.json").read_text())["rounds"]
    loop = json.loads((generation / "filter_report.json").read_text())
    assert loop["adaptive"]["rounds"] == len(rounds) - 1 == 3 and "dedup" in loop["filters_applied"]
    report = study_dir / "report"
    comp = pd.read_csv(report / "comparisons.csv")
    pair = comp[(comp.arm == "adaptive") & (comp.baseline == "shap") & (comp.metric == "macro_f1")]
    assert len(pair) == 1 and pair.p.notna().all() and pair.ci_low.notna().all()
    equiv = pd.read_csv(report / "real_equivalents.csv").set_index(["arm", "augment_n"])
    assert {("real", 12.0), ("real", 24.0), ("shap", 24.0), ("adaptive", 24.0)} <= set(equiv.index)
    assert equiv.loc[("real", 12.0)].curve.startswith("+0 ")
    cost = pd.read_csv(report / "generation_cost.csv").set_index("strategy")
    assert cost.loc["adaptive", "kept"] == loop["adaptive"]["n_delivered"] > 0
    assert cost.loc["adaptive", "steer_s"] > 0 and cost.loc["adaptive", "s_per_kept"] > 0
