"""Quiet logs: a tiny transformer fit shows no Lightning tip, info line, per-step hint or deprecation notice
by default; `verbose` brings them back (so the test can see them when they are there)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest

from sentisynth import quiet
from tests.test_transformer import make_tiny_bert, toy_data


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _fit(model: Path) -> tuple[list[str], list[str]]:
    """Lightning's log lines and the warnings raised during one 1-epoch fit."""
    from sentisynth.classifiers.transformer import TransformerClassifier

    handler = _Records()
    loggers = [logging.getLogger(n) for n in ("pytorch_lightning", "lightning_fabric")]
    for lg in loggers:
        lg.addHandler(handler)
    texts, labels = toy_data(32)
    vt, vl = toy_data(8, seed=1)
    clf = TransformerClassifier(
        str(model), n_classes=2, epochs=1, batch_size=8, warmup=0.0, progress=False, seed=0,
        trainer={"accelerator": "cpu", "devices": 1, "log_every_n_steps": 50},
    )  # fmt: skip
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.warn_explicit("a third-party notice", DeprecationWarning, "dep.py", 1, module="dep")
            clf.fit(texts, labels, val_texts=vt, val_labels=vl)
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
    return handler.lines, [str(w.message) for w in caught]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("quiet_bert"))


def test_fit_is_quiet_by_default_and_verbose_shows_lightning(tiny_model: Path, monkeypatch) -> None:
    monkeypatch.delenv("SENTISYNTH_VERBOSE", raising=False)
    try:
        quiet.configure(None)
        lines, caught = _fit(tiny_model)
        assert not [x for x in lines if "Tip" in x or "available" in x], lines
        assert caught == [], caught  # neither the dependency's notice nor any hint from the fit
        quiet.configure(True)
        lines, caught = _fit(tiny_model)
        assert any("💡 Tip" in x for x in lines) and any("GPU available" in x for x in lines), lines
        assert "a third-party notice" in caught
    finally:
        quiet.configure(None)


def test_quiet_hides_third_party_deprecations_not_ours() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet.configure(False)
        warnings.warn_explicit("old api", DeprecationWarning, "lib.py", 1, module="somelib")
        warnings.warn_explicit("our notice", FutureWarning, "x.py", 1, module="sentisynth.report")
        warnings.warn_explicit(
            "The dataloader does not have many workers", UserWarning, "y.py", 1, module="pl"
        )
        quiet.configure(True)
        warnings.warn_explicit("old api again", DeprecationWarning, "lib.py", 2, module="somelib")
    quiet.configure(None)
    assert [str(w.message) for w in caught] == ["our notice", "old api again"]
