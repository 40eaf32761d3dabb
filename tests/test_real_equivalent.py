"""Real-post equivalents on studies with a known answer: a `real` arm with n posts reads n, the curve is
monotone, an arm better than the largest real cell is censored (">= max"), never extrapolated."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from sentisynth.cli import register_resolvers
from sentisynth.real_equivalent import invert, isotonic, real_equivalents
from sentisynth.report import build_report, collect

register_resolvers()
NAMES = ["anger", "joy", "optimism", "sadness"]


def _job(
    root: Path,
    arm: str,
    n: int,
    seed: int,
    gold: np.ndarray,
    pred: np.ndarray,
    seed_size: int = 500,
    classifier: str = "tfidf_lr",
    name: str | None = None,
) -> None:
    """A finished study cell: config (seed size, augment.n), cell.json, metrics.json, predictions.csv."""
    from sentisynth.stats import f1_scores

    job = root / (name or f"{seed_size}_{arm}_n{n}_seed{seed}")
    (job / ".hydra").mkdir(parents=True)
    cfg = {"seed": seed, "data": {"seed_size": seed_size}, "augment": {"n": n}}
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
    choices = {"data": "tweet_eval_emotion", "classifier": classifier}
    (job / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"runtime": {"choices": choices}}}))
    (job / "cell.json").write_text(json.dumps({"arm": arm}))
    f1 = f1_scores(gold, pred, len(NAMES))
    (job / "metrics.json").write_text(json.dumps({"test/macro_f1": f1[-1], "train/n_seed": seed_size}))
    frame = pd.DataFrame(
        {
            "split": "test",
            "index": range(len(gold)),
            "text": [f"post {i}" for i in range(len(gold))],
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
    pred[wrong] = (gold[wrong] + rng.integers(1, len(NAMES), wrong.sum())) % len(NAMES)
    return pred


REAL = {100: 0.54, 200: 0.58, 500: 0.66, 1000: 0.72}  # accuracy of the real arm per augment.n (none: 0.5)


def _study(root: Path, n_seeds: int = 2) -> np.ndarray:
    """none, real at 100/200/500/1000, `mid` (+1000, between real +200 and +500), `great` (+1000, beyond real +1000),
    `worse` (+1000, below seed only)."""
    gold = np.random.default_rng(12345).choice(len(NAMES), size=1200, p=[0.4, 0.3, 0.1, 0.2])
    for seed in range(n_seeds):
        _job(root, "none", 0, seed, gold, _noisy(gold, 0.5, seed))
        for i, (n, acc) in enumerate(REAL.items()):
            _job(root, "real", n, seed, gold, _noisy(gold, acc, 100 * (i + 1) + seed))
        for i, (arm, acc) in enumerate({"mid": 0.62, "great": 0.85, "worse": 0.35}.items()):
            _job(root, arm, 1000, seed, gold, _noisy(gold, acc, 1000 * (i + 1) + seed))
    return gold


def test_isotonic_keeps_monotone_rows_and_pools_violators() -> None:
    y = np.array([[0.1, 0.2, 0.3], [0.1, 0.3, 0.2], [0.4, 0.2, 0.3]])
    out = isotonic(y)
    assert np.array_equal(out[0], y[0])  # bit for bit
    np.testing.assert_allclose(out[1], [0.1, 0.25, 0.25])
    np.testing.assert_allclose(out[2], [0.3, 0.3, 0.3])
    assert np.all(np.diff(out, axis=1) >= 0)
    rng = np.random.default_rng(1)
    noisy = rng.random((200, 5))
    fit = isotonic(noisy)
    assert np.all(np.diff(fit, axis=1) >= -1e-12)
    np.testing.assert_allclose(fit.mean(axis=1), noisy.mean(axis=1))  # L2 projection keeps the mean


def test_invert_is_monotone_exact_at_knots_and_censored_beyond() -> None:
    x = np.log(500 + np.array([0.0, 200, 1000]))
    curve = np.array([[0.40, 0.50, 0.60]])
    f = np.linspace(0.3, 0.7, 41)
    got = invert(x, np.repeat(curve, len(f), axis=0), f)
    assert np.all(got[1:] >= got[:-1])  # more F1, never fewer real posts
    assert got[f <= 0.40].tolist() == [x[0]] * int((f <= 0.40).sum())  # no better than seed only: n = 0
    assert np.all(np.isinf(got[f > 0.60 + 1e-12]))  # beyond the largest real cell: censored
    assert invert(x, curve, np.array([0.50]))[0] == x[1] and invert(x, curve, np.array([0.60]))[0] == x[2]
    flat = invert(x, np.array([[0.4, 0.5, 0.5]]), np.array([0.5]))[0]
    assert flat == x[1]  # a plateau: the smallest n that reaches it


def test_real_arm_reads_its_own_n_and_better_arms_are_censored(tmp_path: Path) -> None:
    root = tmp_path / "study"
    _study(root)
    from sentisynth.comparisons import load_predictions

    runs = collect(root)
    table = real_equivalents(runs, load_predictions(runs), n_boot=400).set_index(["arm", "augment_n"])
    for n in REAL:
        r = table.loc[("real", float(n))]
        assert r.real_equiv == n and r.ci_low <= n <= r.ci_high, r
    mid = table.loc[("mid", 1000.0)]
    assert 200 < mid.real_equiv < 500 and mid.ci_low < mid.real_equiv < mid.ci_high
    great = table.loc[("great", 1000.0)]
    assert np.isinf(great.real_equiv) and np.isinf(great.ci_high) and great.max_n == 1000
    worse = table.loc[("worse", 1000.0)]
    assert worse.real_equiv == 0 and worse.ci_high == 0
    assert (table.n_seeds == 2).all() and np.isnan(table.s_per_real_post).all()


def test_report_has_the_table_and_plot_and_prices_a_post(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sentisynth.report.N_BOOT", 300)
    monkeypatch.setattr("sentisynth.report.N_PERM", 199)
    root = tmp_path / "study"
    _study(root, n_seeds=1)
    for job in root.glob("*_mid_*"):  # an API run that says what its generation cost
        metrics = json.loads((job / "metrics.json").read_text())
        (job / "metrics.json").write_text(json.dumps({**metrics, "generate/cost_usd": 2.0}))
    text = build_report(root).read_text()
    assert "## What each arm is worth, in real posts" in text and "| great | +1000 |" in text
    assert ">= 1000" in text and (root / "report" / "real_equivalents.png").stat().st_size > 1000
    table = pd.read_csv(root / "report" / "real_equivalents.csv").set_index("arm")
    mid = table.loc["mid"]
    assert mid.usd_per_real_post == pytest.approx(2.0 / mid.real_equiv)


def test_a_planned_study_reads_the_real_arms_curve_and_compares_adaptive_with_shap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cells `sentisynth.study.plan_cells` plans for offline_tweeteval's shape (real at its own +100 ...
    +1000, the others at +1000), finished with known accuracies: the curve has every real level plus `none`
    (+0), each real cell's interval holds its own n, the report has adaptive - shap with interval and p for
    every classifier and seed size, and the real-post-equivalent table traces back to cells.csv."""
    from sentisynth.study import plan_cells

    monkeypatch.setattr("sentisynth.report.N_BOOT", 200)
    monkeypatch.setattr("sentisynth.report.N_PERM", 99)
    study = {
        "seeds": [0, 1],
        "seed_sizes": [500, 1000],
        "augment_n": [1000],
        "arms": {
            "none": ["augment=none"],
            "real": {"overrides": ["augment=real"], "augment_n": list(REAL)},
            "shap": ["augment=synthetic_shap"],
            "adaptive": {
                "overrides": ["augment=synthetic_adaptive"],
                "classifiers": ["tfidf_lr", "tfidf_xgb"],
            },
        },
        "classifiers": {"tfidf_lr": {"seeds": "all"}, "tfidf_xgb": {"seeds": "all"}},
        "compare": [["adaptive", "shap"]],
    }
    root = tmp_path / "study"
    root.mkdir()
    (root / "study.json").write_text(json.dumps({"study": study}))
    gold = np.random.default_rng(12345).choice(len(NAMES), size=1200, p=[0.4, 0.3, 0.1, 0.2])
    accuracy = {"none": 0.5, **{f"real{n}": a for n, a in REAL.items()}, "shap": 0.6, "adaptive": 0.64}
    for i, cell in enumerate(plan_cells(study)):
        acc = accuracy[cell.arm + (str(cell.augment_n) if cell.arm == "real" else "")]
        acc += 0.02 * (cell.classifier == "tfidf_xgb") + 0.01 * (cell.seed_size == 1000)
        pred = _noisy(gold, acc, 7 * i + cell.seed)
        n = cell.augment_n or 0
        _job(root, cell.arm, n, cell.seed, gold, pred, int(cell.seed_size), cell.classifier, cell.name)
    build_report(root)
    out = root / "report"
    equiv = pd.read_csv(out / "real_equivalents.csv")
    cells = pd.read_csv(out / "cells.csv")
    assert len(equiv) == 2 * 2 * (len(REAL) + 2)  # classifiers x seed sizes x (real levels, shap, adaptive)
    for r in equiv.itertuples():
        assert r.curve.split(", ")[0].startswith("+0 ") and len(r.curve.split(", ")) == 1 + len(REAL)
        if r.arm == "real":
            assert r.real_equiv == r.augment_n and r.ci_low <= r.augment_n <= r.ci_high
        same = (cells.classifier == r.classifier) & (cells.seed_size == r.seed_size)
        cell = cells[same & (cells.strategy == r.arm) & (cells.augment_n == r.augment_n)].iloc[0]
        assert r.macro_f1 == pytest.approx(cell.macro_f1) and r.n_seeds == cell.n_seeds == 2
        points = [cells[same & (cells.strategy == "none")].macro_f1.iloc[0]]
        points += [
            cells[same & (cells.strategy == "real") & (cells.augment_n == n)].macro_f1.iloc[0] for n in REAL
        ]
        assert [float(x.split(" ")[1]) for x in r.curve.split(", ")] == pytest.approx(points, abs=1e-4)
    comp = pd.read_csv(out / "comparisons.csv")
    pair = comp[(comp.arm == "adaptive") & (comp.baseline == "shap") & (comp.metric == "macro_f1")]
    assert len(pair) == 4 and pair.p.notna().all() and (pair.ci_low < pair["diff"]).all()
    assert (pair["diff"] > 0).all() and (pair.ci_low <= pair.ci_high).all() and (pair.n_seeds == 2).all()
    text = (out / "report.md").read_text()
    section = text.split("## Arms against each other")[1].split("\n## ")[0]
    assert section.count("| adaptive | shap |") == 4
