"""`logger=tensorboard`: the run's metrics, tables and plots, and each Lightning Trainer's curves, as local
TensorBoard event files (the offline viewer)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("tensorboard")


def _scalars(folder: Path) -> dict[str, float]:
    """Last value of every scalar in the event files of one folder."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return {tag: acc.Scalars(tag)[-1].value for tag in acc.Tags()["scalars"]}


def test_train_run_writes_metrics_tables_and_plot(compose_cfg, tiny_data_dir: Path, tmp_path: Path) -> None:
    from sentisynth.train import run

    cfg = compose_cfg("train", f"paths.data_dir={tiny_data_dir}", "data.seed_size=20", "logger=tensorboard")
    metrics = run(cfg)
    board = tmp_path / "run" / "tensorboard"
    scalars = _scalars(board / "run")
    assert scalars["test/macro_f1"] == pytest.approx(metrics["test/macro_f1"], abs=1e-6)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(board / "run"), size_guidance={"images": 0, "tensors": 0})
    acc.Reload()
    assert "test/confusion_matrix_plot" in acc.Tags()["images"]
    texts = {t.rsplit("/", 1)[0] for t in acc.Tags()["tensors"]}  # add_text is stored as a tensor summary
    assert "config" in texts


def test_lightning_curves_go_to_tensorboard(tmp_path: Path) -> None:
    from sentisynth.classifiers.transformer import TransformerClassifier
    from sentisynth.tracking import TensorBoardTracker, session
    from tests.test_transformer import make_tiny_bert, toy_data

    model = make_tiny_bert(tmp_path / "bert")
    texts, labels = toy_data(32)
    vt, vl = toy_data(8, seed=1)
    clf = TransformerClassifier(
        str(model), n_classes=2, epochs=2, batch_size=8, warmup=0.0, progress=False, seed=0,
        trainer={"accelerator": "cpu", "devices": 1, "log_every_n_steps": 1},
    )  # fmt: skip
    with session(TensorBoardTracker(tmp_path / "tb"), {"x": 1}, name="t"):
        clf.fit(texts, labels, val_texts=vt, val_labels=vl)
    versions = sorted((tmp_path / "tb" / "classifier").glob("version_*"))
    assert versions, list((tmp_path / "tb").rglob("*"))
    scalars = _scalars(versions[0])
    assert "train_loss" in scalars and "val_macro_f1" in scalars, scalars
