"""train: in-process runs of composed configs (both augment modes, determinism, outside-Hydra paths); slow CLI
runs end to end (multirun + aggregation, launchers, W&B offline, bad input)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from sentisynth.aggregate import aggregate
from sentisynth.train import run
from tests.conftest import NAMES, ROOT, run_cli

REQUIRED = [
    "test/macro_f1",
    "test/accuracy",
    "val/macro_f1",
    "train/n_seed",
    "train/n_real",
    "train/n_synthetic",
]


def _train(tmp_path: Path, data_dir: Path, *overrides: str, name: str = "run"):
    out = tmp_path / name
    proc = run_cli("train.py", f"paths.data_dir={data_dir}", f"hydra.run.dir={out}", *overrides)
    return proc, out


@pytest.mark.parametrize("augment", ["none", "real"])
def test_run_in_process(compose_cfg, tiny_data_dir: Path, tmp_path: Path, augment: str, capsys) -> None:
    cfg = compose_cfg(
        "train",
        f"paths.data_dir={tiny_data_dir}",
        "data.seed_size=20",
        f"augment={augment}",
        "augment.n=40",
        "logger=csv",
    )
    metrics = run(cfg)
    out = tmp_path / "run"
    assert json.loads((out / "metrics.json").read_text()) == metrics
    for key in REQUIRED + [f"test/f1/{n}" for n in NAMES]:
        assert key in metrics, key
    assert metrics["train/n_seed"] == 20
    assert metrics["train/n_real"] == (40 if augment == "real" else 0)
    assert metrics["train/n_synthetic"] == 0
    assert 0.0 <= metrics["test/macro_f1"] <= 1.0
    preds = pd.read_csv(out / "predictions.csv")
    assert set(preds.split) == {"val", "test"} and len(preds) == 32 + 48
    assert {"text", "gold", "predicted", *(f"prob/{n}" for n in NAMES)} <= set(preds.columns)
    assert (out / "confusion_test.png").stat().st_size > 1000
    assert "macro_f1" in capsys.readouterr().out  # the printed summary table
    csv_rows = pd.read_csv(out / "metrics.csv")
    assert "test/macro_f1" in set(csv_rows.key)


def test_same_config_same_metrics(compose_cfg, tiny_data_dir: Path, tmp_path: Path) -> None:
    args = (
        f"paths.data_dir={tiny_data_dir}",
        "data.seed_size=16",
        "augment=real",
        "augment.n=20",
        "classifier=tfidf_xgb",
        "classifier.xgb_params.n_estimators=20",
        "classifier.n_jobs=1",
        "logger=none",
    )
    texts = []
    for name in ("a", "b"):
        run(compose_cfg("train", *args, f"paths.output_dir={tmp_path / name}"))
        texts.append((tmp_path / name / "metrics.json").read_text())
    assert texts[0] == texts[1]


def test_outside_hydra_the_run_dir_is_filled_in(cfg_train, tmp_path: Path, monkeypatch) -> None:
    """Without a Hydra run, `${hydra:...}` paths would not resolve: `with_run_paths` fills them."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from sentisynth.cli import run_dir_of, with_run_paths
    from tests.conftest import CONF

    assert run_dir_of(cfg_train) == tmp_path / "run"
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        bare = compose(config_name="train")
    monkeypatch.chdir(tmp_path)
    filled = with_run_paths(bare)
    assert filled.paths.root_dir == str(tmp_path)
    assert filled.paths.output_dir.startswith("outputs/train/runs/")


@pytest.mark.slow
def test_train_cli_end_to_end(tmp_path: Path, tiny_data_dir: Path) -> None:
    proc, out = _train(
        tmp_path, tiny_data_dir, "data.seed_size=20", "augment=real", "augment.n=40", "logger=none"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((out / "metrics.json").read_text())["train/n_real"] == 40
    assert "macro_f1" in proc.stdout


@pytest.mark.slow
def test_multirun_and_aggregate(tmp_path: Path, tiny_data_dir: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "train.py",
        "-m",
        f"paths.data_dir={tiny_data_dir}",
        f"hydra.sweep.dir={sweep}",
        "data.seed_size=12",
        "augment=none,real",
        "augment.n=20",
        "seed=0,1",
        "logger=none",
        "hydra/launcher=joblib",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(p.parent.name for p in sweep.glob("*/metrics.json"))
    assert jobs == ["0", "1", "2", "3"]
    summary = aggregate(sweep)
    assert len(summary) == 2 and summary["n_seeds"].tolist() == [2, 2]
    runs = pd.read_csv(sweep / "runs.csv")
    real = runs[runs.augment == "real"]["test/macro_f1"]
    row = summary[summary.augment == "real"].iloc[0]
    assert row["test/macro_f1 mean"] == pytest.approx(real.mean())  # traces back to metrics.json
    md = (sweep / "summary.md").read_text()
    assert "± " in md and "real" in md


@pytest.mark.slow
def test_aggregate_cli_errors(tmp_path: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "sentisynth.aggregate", str(tmp_path / "none")], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "multirun directory not found" in proc.stderr


@pytest.mark.slow
def test_runs_started_together_do_not_collide(tmp_path: Path, tiny_data_dir: Path) -> None:
    import subprocess
    import sys

    cmd = [
        sys.executable,
        str(ROOT / "train.py"),
        f"paths.data_dir={tiny_data_dir}",
        "data.seed_size=12",
        "logger=none",
        "task_name=collide",
        "save_predictions=false",
    ]
    procs = [
        subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    assert all(p.wait(timeout=300) == 0 for p in procs)
    runs = list((tmp_path / "outputs" / "collide" / "runs").iterdir())
    assert len(runs) == 2 and all((r / "metrics.json").is_file() for r in runs)


@pytest.mark.slow
def test_wandb_offline_run_is_recorded_without_network(tmp_path: Path, tiny_data_dir: Path) -> None:
    """The W&B offline run holds the metrics, table and plot; strace sees no internet connection."""
    strace = shutil.which("strace")
    out = tmp_path / "wb"
    args = [f"paths.data_dir={tiny_data_dir}", f"hydra.run.dir={out}", "data.seed_size=20", "logger=wandb"]
    if strace:
        import subprocess
        import sys

        trace = tmp_path / "strace.txt"
        proc = subprocess.run(
            [
                strace,
                "-f",
                "-qq",
                "-e",
                "trace=connect",
                "-o",
                str(trace),
                sys.executable,
                str(ROOT / "train.py"),
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=600,
            env={**__import__("os").environ, "WANDB_MODE": "offline"},
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        inet = [line for line in trace.read_text().splitlines() if "AF_INET" in line]
        assert inet == [], inet
    else:
        proc = run_cli("train.py", *args)
        assert proc.returncode == 0, proc.stderr[-2000:]
    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    blob = next(runs[0].glob("run-*.wandb")).read_bytes()
    for key in (b"test/macro_f1", b"test/per_class", b"test/confusion_matrix_plot", b"seed_size"):
        assert key in blob, key
    assert list((runs[0] / "files" / "media" / "images").rglob("*.png"))


@pytest.mark.slow
def test_missing_label_column_one_line_error(tmp_path: Path) -> None:
    csv = tmp_path / "posts.csv"
    csv.write_text("text,sentiment\nhello,1\nbye,0\n")
    proc = run_cli(
        "train.py", "data=files", f"data.path={csv}", f"hydra.run.dir={tmp_path / 'o'}", "logger=none"
    )
    assert proc.returncode != 0
    err = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(err) == 1, proc.stderr
    assert "label" in err[0] and str(csv) in err[0]


@pytest.mark.slow
def test_unknown_data_dir_error(tmp_path: Path) -> None:
    proc = run_cli(
        "train.py",
        f"paths.data_dir={tmp_path / 'missing'}",
        f"hydra.run.dir={tmp_path / 'o'}",
        "logger=none",
        env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
    )
    assert proc.returncode == 2
    assert "looked in local directory" in proc.stderr and "Hub" in proc.stderr


@pytest.mark.slow
def test_real_data_baselines(tmp_path: Path, shared_data: Path) -> None:
    """The issue's acceptance numbers on TweetEval emotion (seed 1000, LR): >= 0.50, and real data helps."""
    scores = {}
    for augment in ("none", "real"):
        proc, out = _train(
            tmp_path,
            shared_data,
            "classifier=tfidf_lr",
            "data.seed_size=1000",
            f"augment={augment}",
            "augment.n=1000",
            "logger=none",
            "save_predictions=false",
            name=augment,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        scores[augment] = json.loads((out / "metrics.json").read_text())["test/macro_f1"]
    assert scores["none"] >= 0.50
    assert scores["real"] > scores["none"]


@pytest.mark.slow
def test_submitit_local_launcher(tmp_path: Path, tiny_data_dir: Path) -> None:
    """The SLURM code path (submitit), run by submitit's local executor."""
    sweep = tmp_path / "submitit"
    proc = run_cli(
        "train.py",
        "-m",
        "hydra/launcher=local_submitit",
        f"paths.data_dir={tiny_data_dir}",
        f"hydra.sweep.dir={sweep}",
        "data.seed_size=12",
        "seed=0",
        "logger=none",
        "save_predictions=false",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((sweep / "0" / "metrics.json").read_text())
    assert metrics["train/n_seed"] == 12
    assert len(aggregate(sweep)) == 1


def test_rank_check_does_not_import_torch() -> None:
    """The TF-IDF job's startup skips torch (2.3 s): `is_rank_zero` reads the launchers' variables unless
    torch.distributed is already imported (benchmarks/bench_startup.py)."""
    import subprocess
    import sys

    code = (
        "import os, sys; from sentisynth.utils import is_rank_zero, barrier; a = is_rank_zero(); barrier(); "
        "os.environ['LOCAL_RANK'] = '1'; b = is_rank_zero(); print(a, b, 'torch' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "False", "False"]


def test_wandb_launch_inputs_applied_only_when_staged(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skipping W&B Launch's import (1.1 s of startup) must not skip inputs that were staged: with the
    module imported, the original method runs."""
    import sys

    from sentisynth.tracking import LAUNCH_INPUTS, skip_unstaged_launch_inputs

    calls = []

    class Run:
        def _detect_and_apply_job_inputs(self) -> None:
            calls.append(self)

    skip_unstaged_launch_inputs(Run)
    skip_unstaged_launch_inputs(Run)  # idempotent: wrapped once
    monkeypatch.delitem(sys.modules, LAUNCH_INPUTS, raising=False)
    Run()._detect_and_apply_job_inputs()
    assert calls == []
    monkeypatch.setitem(sys.modules, LAUNCH_INPUTS, object())
    run = Run()
    run._detect_and_apply_job_inputs()
    assert calls == [run]
