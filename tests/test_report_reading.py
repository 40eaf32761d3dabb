"""Report numbers a reader can trust at a glance: the star and the interval on one basis, counts as integers,
seed sizes in numeric order, and classifiers compared with each other on the same arm."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from sentisynth.comparisons import excludes_zero
from sentisynth.report import build_report, count_text, sort_cells
from tests.test_comparisons import NAMES, _noisy


def _run(root: Path, name: str, classifier: str, arm: str, size: int, seed: int, gold, pred) -> None:
    """A multirun job as train.py writes it (no cell.json: the arm comes from Hydra's choices)."""
    from sentisynth.stats import f1_scores

    job = root / name
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "config.yaml").write_text(
        yaml.safe_dump({"seed": seed, "data": {"seed_size": size}, "augment": {"n": 40}})
    )
    choices = {"data": "tweet_eval_emotion", "classifier": classifier, "augment": arm}
    (job / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"runtime": {"choices": choices}}}))
    f1 = f1_scores(gold, pred, len(NAMES))
    added = 0 if arm == "none" else 39 + seed  # 39 and 40 posts: a mean of 39.5
    metrics = {"test/macro_f1": f1[-1], "train/n_seed": size, "train/n_total": size + added}
    metrics.update({f"test/f1/{n}": f1[i] for i, n in enumerate(NAMES)})
    (job / "metrics.json").write_text(json.dumps(metrics))
    pd.DataFrame(
        {
            "split": "test",
            "index": range(len(gold)),
            "text": [f"post {i}" for i in range(len(gold))],
            "gold": [NAMES[g] for g in gold],
            "predicted": [NAMES[p] for p in pred],
            **{f"prob/{n}": 0.25 for n in NAMES},
        }
    ).to_csv(job / "predictions.csv", index=False)


def test_classifiers_compared_on_the_same_arm_counts_whole_sizes_numeric(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("sentisynth.report.N_BOOT", 300)
    monkeypatch.setattr("sentisynth.report.N_PERM", 499)
    gold = np.random.default_rng(0).choice(len(NAMES), size=400)
    root, k = tmp_path / "sweep", 0
    for size in (1000, 250, 500):  # written in text order's opposite
        for seed in (0, 1):
            for clf, acc in (("tfidf_lr", 0.5), ("transformer", 0.8)):
                for arm in ("none", "real"):
                    _run(root, str(k), clf, arm, size, seed, gold, _noisy(gold, acc, 100 * k))
                    k += 1
    text = build_report(root).read_text()
    pairs = pd.read_csv(root / "report" / "classifier_comparisons.csv")
    assert len(pairs) == 3 * 2  # one row per seed size and arm: transformer vs tfidf_lr
    assert set(pairs.classifier) == {"tfidf_lr"} and set(pairs.vs) == {"transformer"}
    assert (pairs["diff"] < -0.2).all() and pairs.significant.all() and (pairs.n_seeds == 2).all()
    assert "## Classifiers against each other on the same arm" in text
    cells = pd.read_csv(root / "report" / "cells.csv")
    assert cells.seed_size.drop_duplicates().tolist() == [250, 500, 1000]
    assert "posts added (mean over seeds)" in text and "| 39.5 |" in text and "39.5000" not in text
    assert "| 0 |" in text  # the seed-only arm adds 0 posts, not 0.0000


def test_star_follows_the_interval_and_counts_print_whole() -> None:
    table = pd.DataFrame({"ci_low": [-0.005, 0.01, -0.2], "ci_high": [0.086, 0.2, -0.01]})
    assert excludes_zero(table).tolist() == [False, True, True]  # [-0.005, +0.086] gets no star
    assert [count_text(v) for v in (999.0, 999.5, 12, float("nan"))] == ["999", "999.5", "12", "n/a"]
    frame = pd.DataFrame({"seed_size": ["1000", "250", "full", "500"], "strategy": ["none"] * 4})
    assert sort_cells(frame).seed_size.tolist() == ["250", "500", "1000", "full"]


@pytest.mark.parametrize("sizes", [(250,), (250, 500)])
def test_f1_plot_panels_share_the_axis_when_one_point_each(tmp_path: Path, sizes) -> None:
    from sentisynth.report import plot_f1_vs_seed_size

    rows = [
        {"data": "d", "classifier": c, "seed_size": str(s), "strategy": "none", "augment_n": "0",
         "macro_f1": 0.5 + i / 10, "ci_low": 0.4, "ci_high": 0.7}
        for i, c in enumerate(("tfidf_lr", "transformer")) for s in sizes
    ]  # fmt: skip
    import matplotlib.pyplot as plt

    captured = {}
    original = plt.subplots
    plt.subplots = lambda *a, **kw: captured.update(kw) or original(*a, **kw)
    try:
        plot_f1_vs_seed_size(pd.DataFrame(rows), tmp_path / "f1.png")
    finally:
        plt.subplots = original
    assert captured["sharey"] is (len(sizes) == 1)
    assert (tmp_path / "f1.png").stat().st_size > 1000


def test_aggregate_table_names_constant_settings_once_and_prints_counts_whole() -> None:
    from sentisynth.aggregate import to_markdown

    summary = pd.DataFrame(
        {
            "augment": ["none", "real"],
            "logger": ["none", "none"],
            "n_seeds": [2, 2],
            "test/macro_f1 mean": [0.5, 0.6],
            "test/macro_f1 std": [0.01, 0.02],
            "train/n_total mean": [20.0, 999.5],
            "train/n_total std": [0.0, 0.7],
        }
    )
    text = to_markdown(summary)
    head, table = text.split("\n\n", 1)
    assert head == "Same in every row: logger=none"
    assert table.splitlines()[0].startswith("| augment | n_seeds | test/macro_f1 |")
    assert "| 20 ± 0.0 |" in table and "| 999.5 ± 0.7 |" in table and "999.5000" not in table
    assert "| 2 |" in table
