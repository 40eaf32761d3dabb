"""guidance=adaptive: budget allocation, validation-only steering, and a tiny run whose provenance shows
rounds, target classes and keywords that change between rounds, with no val or test post in any prompt."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sentisynth.generation.adaptive import AdaptiveConfig, allocate, most_confused_on_val
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


def test_most_confused_on_val_and_config_checks() -> None:
    conf = np.array([[5, 3, 1], [0, 9, 0], [2, 2, 4]])
    assert most_confused_on_val(conf) == [1, -1, 0]  # ties: the lower class id
    assert AdaptiveConfig.from_guidance({"rounds": 2, "name": "adaptive"}).rounds == 2
    with pytest.raises(ValueError, match="guidance.allocation"):
        AdaptiveConfig.from_guidance({"allocation": "magic"})


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
def test_adaptive_as_a_train_arm_refits_the_runs_classifier(
    compose_cfg, corpus_data: Path, tmp_path: Path
) -> None:
    """`augment=synthetic guidance=adaptive` in train.py: the loop refits the run's own classifier (SVM here,
    not the LR that explains the seed), and the arm trains on the posts of the best round."""
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
