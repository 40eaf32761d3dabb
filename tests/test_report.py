"""The study report on a tiny hand-made multirun directory: numbers trace back to metrics.json."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from sentisynth.report import build_report, main


def _job(root: Path, num: int, augment: str, seed_size: int, seed: int, f1: dict[str, float]) -> None:
    job = root / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "config.yaml").write_text(
        yaml.safe_dump({"seed": seed, "data": {"seed_size": seed_size}})
    )
    choices = {"data": "tweet_eval_emotion", "classifier": "tfidf_lr", "augment": augment}
    (job / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"runtime": {"choices": choices}}}))
    metrics = {
        "test/macro_f1": sum(f1.values()) / len(f1),
        **{f"test/f1/{k}": v for k, v in f1.items()},
        "train/n/anger": 400,
        "train/n/optimism": 90,
    }
    (job / "metrics.json").write_text(json.dumps(metrics))


def test_report_numbers_trace_back(tmp_path: Path) -> None:
    root = tmp_path / "multirun"
    n = 0
    for seed in (0, 1):
        for augment, bump in (("none", 0.0), ("real", 0.1)):
            for size in (250, 1000):
                _job(
                    root,
                    n,
                    augment,
                    size,
                    seed,
                    {"anger": 0.6 + bump / 2 + seed * 0.02, "optimism": 0.2 + bump},
                )
                n += 1
    (root / "99").mkdir()  # an unfinished job is ignored
    report = build_report(root)
    text = report.read_text()
    assert "## test/macro_f1 by seed size" in text and "f1_vs_seed_size.png" in text
    summary = pd.read_csv(root / "report" / "summary.csv")
    row = summary[(summary.strategy == "real") & (summary.seed_size == 250)].iloc[0]
    assert row["n_seeds"] == 2
    assert row["test/macro_f1 mean"] == pytest.approx(((0.65 + 0.3) / 2 + (0.67 + 0.3) / 2) / 2)
    delta = pd.read_csv(root / "report" / "per_class_delta.csv")
    assert list(delta.columns[-2:]) == ["optimism", "anger"]  # rarest class first
    assert delta.optimism.tolist() == pytest.approx([0.1, 0.1]) and delta.anger.tolist() == pytest.approx(
        [0.05, 0.05]
    )
    assert (root / "report" / "per_class_delta.png").stat().st_size > 1000


def test_report_cli_error(tmp_path: Path) -> None:
    assert main([str(tmp_path / "missing")]) == 2
    assert not (tmp_path / "missing").exists()  # checked before anything is created
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 2 and list((tmp_path / "empty").iterdir()) == []


def test_one_seed_has_no_spread_rather_than_zero(tmp_path: Path) -> None:
    root = tmp_path / "multirun"
    for n, augment in enumerate(("none", "real")):
        _job(root, n, augment, 250, 0, {"anger": 0.6, "optimism": 0.2 + 0.1 * n})
    text = build_report(root).read_text()
    summary = pd.read_csv(root / "report" / "summary.csv")
    assert summary["n_seeds"].tolist() == [1, 1] and summary["test/macro_f1 std"].isna().all()
    assert "| 0.4500 | n/a | 1 |" in text  # real: mean 0.45, std not measured
    assert (root / "report" / "f1_vs_seed_size.png").stat().st_size > 1000


def test_aggregate_markdown_prints_no_spread_for_one_seed() -> None:
    from sentisynth.aggregate import to_markdown

    summary = pd.DataFrame(
        {
            "augment": ["none", "real"],
            "n_seeds": [1, 2],
            "test/macro_f1 mean": [0.5, 0.6],
            "test/macro_f1 std": [float("nan"), 0.01],
        }
    )
    lines = to_markdown(summary, digits=2).splitlines()
    assert lines[2].endswith("| 0.50 |") and lines[3].endswith("| 0.60 ± 0.01 |")
