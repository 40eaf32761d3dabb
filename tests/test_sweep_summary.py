"""A sweep that concludes: at the end of `train.py -m` the sweep directory, the aggregate table and the report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf

from sentisynth.sweep import SweepSummary
from tests.conftest import run_cli
from tests.test_comparisons import NAMES, _noisy
from tests.test_report_reading import _run


def _sweep(root: Path) -> None:
    gold = np.random.default_rng(0).choice(len(NAMES), size=120)
    for k, (arm, seed) in enumerate([("none", 0), ("real", 0), ("none", 1), ("real", 1)]):
        _run(root, str(k), "tfidf_lr", arm, 250, seed, gold, _noisy(gold, 0.5 + 0.2 * (arm == "real"), k))
        overrides = [f"augment={arm}", f"seed={seed}", "logger=none"]
        (root / str(k) / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))


def test_callback_prints_directory_and_table_and_writes_the_report(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setattr("sentisynth.report.N_BOOT", 200)
    monkeypatch.setattr("sentisynth.report.N_PERM", 199)
    _sweep(tmp_path / "sweep")
    cfg = OmegaConf.create({"sweep_summary": True, "hydra": {"sweep": {"dir": str(tmp_path / "sweep")}}})
    SweepSummary().on_multirun_end(cfg)
    out = capsys.readouterr().out
    assert f"sweep directory: {(tmp_path / 'sweep').resolve()}" in out
    assert "Same in every row: logger=none" in out and "| augment | n_seeds | test/macro_f1 |" in out
    assert (tmp_path / "sweep" / "report" / "report.md").is_file() and "report: " in out
    assert "arms against none and real" in out and "| tfidf_lr | 250 | 40 | real | none |" in out
    cfg.sweep_summary = False  # off: nothing printed
    SweepSummary().on_multirun_end(cfg)
    assert capsys.readouterr().out == ""


def test_callback_on_a_sweep_without_metrics_says_so(tmp_path: Path, capsys) -> None:
    (tmp_path / "gen" / "0").mkdir(parents=True)  # generate.py -m: no metrics.json to compare
    SweepSummary().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / "gen")}}}))
    assert "nothing to compare" in capsys.readouterr().out


@pytest.mark.slow
def test_two_job_multirun_ends_with_its_directory_and_a_comparison_table(
    tmp_path: Path, tiny_data_dir: Path
) -> None:
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "train.py",
        "-m",
        f"paths.data_dir={tiny_data_dir}",
        f"hydra.sweep.dir={sweep}",
        "data.seed_size=12",
        "augment=none,real",
        "augment.n=20",
        "logger=none",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    tail = proc.stdout[proc.stdout.index("sweep directory:") :]
    assert str(sweep.resolve()) in tail and "| augment | n_seeds | test/macro_f1 |" in tail
    assert "| none |" in tail and "| real |" in tail
    assert "| tfidf_lr | 12 | 20 | real | none |" in tail  # the arm against seed only, printed
    report = (sweep / "report" / "report.md").read_text()
    assert "real | none" in report  # the arm against seed only, with its interval


@pytest.mark.slow
def test_multirun_over_classifiers_gives_a_report_row_comparing_them(
    tmp_path: Path, tiny_data_dir: Path
) -> None:
    """classifier=tfidf_lr,transformer (the offline MiniLM, 2 optimizer steps): the report compares the two
    classifiers on the same arm, paired by seed and test post."""
    import pandas as pd

    sweep = tmp_path / "sweep"
    proc = run_cli(
        "train.py",
        "-m",
        f"paths.data_dir={tiny_data_dir}",
        f"hydra.sweep.dir={sweep}",
        "data.seed_size=12",
        "classifier=tfidf_lr,transformer",
        "+trainer.max_steps=2",
        "trainer.enable_progress_bar=false",
        "logger=none",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    pairs = pd.read_csv(sweep / "report" / "classifier_comparisons.csv")
    assert len(pairs) == 1 and pairs.classifier[0] == "tfidf_lr" and pairs.vs[0] == "transformer"
    assert pairs.ci_low[0] <= pairs["diff"][0] <= pairs.ci_high[0] and 0 < pairs.p[0] <= 1
    report = (sweep / "report" / "report.md").read_text()
    assert "| none | 12 | 0 | tfidf_lr | transformer |" in report
