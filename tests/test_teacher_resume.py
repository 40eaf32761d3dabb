"""Issue 28 item 2: a teacher fit interrupted after an epoch resumes from its last finished epoch."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl

from sentisynth.classifiers.transformer import TransformerClassifier
from tests.test_transformer import CPU, make_tiny_bert, toy_data


class Stop(Exception):
    pass


class StopAfter(pl.Callback):
    """Interrupts the fit at the end of epoch `epoch` (before that epoch's checkpoint is written)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            raise Stop


def teacher(bert: Path, work: Path) -> TransformerClassifier:
    clf = TransformerClassifier(
        str(bert),
        n_classes=2,
        lr=3e-3,
        epochs=4,
        batch_size=8,
        patience=0,
        warmup=0.0,
        trainer=CPU,
        progress=False,
        seed=0,
    )
    clf.resume_dir = work
    return clf


def test_interrupted_teacher_fit_resumes_from_its_last_finished_epoch(tmp_path: Path, caplog) -> None:
    bert = make_tiny_bert(tmp_path / "bert")
    texts, labels = toy_data(48)
    vt, vl = toy_data(16, seed=1)
    work = tmp_path / ".teacher.work"
    first = teacher(bert, work)
    plain = first._fit_callbacks
    first._fit_callbacks = lambda d, v: (plain(d, v)[0] + [StopAfter(2)], plain(d, v)[1])  # type: ignore[method-assign]
    with pytest.raises(Stop):
        first.fit(texts, labels, val_texts=vt, val_labels=vl)
    assert (work / "last.ckpt").is_file()  # epochs 0 and 1 finished: the last one is kept for the rerun
    caplog.set_level("INFO")
    second = teacher(bert, work).fit(texts, labels, val_texts=vt, val_labels=vl)
    assert "resuming the fit from its last finished epoch" in caplog.text
    assert second.fit_info["epochs_run"] == 4 and not work.exists()
