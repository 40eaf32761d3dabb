"""Saved models: TF-IDF and transformer classifiers round-trip without pickle; a run keeps its classifier
and `python -m sentisynth.predict <run dir> texts.txt` reproduces the run's own predictions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sentisynth import api
from sentisynth.classifiers.io import load_classifier, save_classifier
from sentisynth.classifiers.tfidf import TfidfClassifier
from sentisynth.data import DataError
from sentisynth.predict import load_predictor, main, read_texts
from tests.conftest import NAMES, make_posts
from tests.test_transformer import CPU, make_tiny_bert, toy_data


@pytest.mark.parametrize("model", ["lr", "svm", "xgb"])
def test_tfidf_round_trip_is_exact_and_pickle_free(tmp_path: Path, model: str) -> None:
    rows = make_posts(12)
    texts, labels = [t for t, _ in rows], np.array([y for _, y in rows])
    kwargs = {"xgb_params": {"n_estimators": 10}} if model == "xgb" else {}
    clf = TfidfClassifier(model, n_classes=4, **kwargs).fit(texts, labels)
    save_classifier(clf, tmp_path / "m", NAMES)
    again, names = load_classifier(tmp_path / "m")
    probe = [t for t, _ in make_posts(3, seed=9)] + ["unseen words only zzz"]
    assert names == NAMES
    np.testing.assert_allclose(again.predict_proba(probe), clf.predict_proba(probe), rtol=1e-6, atol=1e-9)
    assert not [p for p in (tmp_path / "m").iterdir() if p.suffix in (".pkl", ".pickle", ".joblib")]
    np.load(tmp_path / "m" / "tfidf_arrays.npz", allow_pickle=False)  # would raise on object arrays


@pytest.mark.slow
def test_transformer_saved_with_label_names(tmp_path: Path) -> None:
    from transformers import AutoConfig

    from tests.test_transformer import TransformerClassifier

    texts, labels = toy_data(24)
    clf = TransformerClassifier(
        str(make_tiny_bert(tmp_path / "bert")),
        n_classes=2,
        epochs=1,
        batch_size=8,
        trainer=CPU,
        progress=False,
    ).fit(texts, labels)
    save_classifier(clf, tmp_path / "m", ["pos", "neg"])
    assert AutoConfig.from_pretrained(tmp_path / "m").id2label == {0: "pos", 1: "neg"}  # save_pretrained
    predictor = load_predictor(tmp_path / "m", progress=False)
    np.testing.assert_allclose(predictor.predict_proba(texts[:5]), clf.predict_proba(texts[:5]), atol=1e-5)
    assert predictor.label_names == ["pos", "neg"]


def test_run_keeps_its_classifier_and_predict_cli_reproduces_it(
    tmp_path: Path, tiny_data_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    run = api.run_arm(
        [f"paths.data_dir={tiny_data_dir}", "data.seed_size=20", "logger=none"], output_dir=tmp_path / "run"
    )
    assert json.loads((run.dir / "models.json").read_text()) == {"classifier": "model", "teacher": None}
    test_rows = run.predictions().query("split == 'test'")
    (tmp_path / "texts.txt").write_text("\n".join(test_rows.text) + "\n")
    assert main([str(run.dir), str(tmp_path / "texts.txt"), "--out", str(tmp_path / "p.csv")]) == 0
    got = pd.read_csv(tmp_path / "p.csv")
    assert got.label.tolist() == test_rows.predicted.tolist()
    cols = [f"prob/{n}" for n in NAMES]
    np.testing.assert_allclose(got[cols].to_numpy(), test_rows[cols].to_numpy(), atol=2e-6)
    capsys.readouterr()
    assert main([str(run.dir), str(tmp_path / "texts.txt")]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split("\t")[:2] == ["text", "label"] and len(printed) == len(test_rows) + 1
    assert run.model().predict(["so happy love fun #joy"]) == ["joy"]


def test_predict_errors_are_one_line(
    tmp_path: Path, tiny_data_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    run = api.run_arm(
        [f"paths.data_dir={tiny_data_dir}", "data.seed_size=20", "logger=none", "save_model=false"],
        output_dir=tmp_path / "run",
    )
    assert not (run.dir / "model").exists()
    (tmp_path / "t.txt").write_text("hello\n")
    for args, message in (
        (
            [str(run.dir), str(tmp_path / "t.txt")],
            "no saved classifier (the run was made with save_model=false)",
        ),
        ([str(run.dir), str(tmp_path / "t.txt"), "--model", "teacher"], "no saved teacher"),
        ([str(tmp_path / "nope"), str(tmp_path / "t.txt")], "no such run or model directory"),
        ([str(tmp_path), str(tmp_path / "t.txt")], "not a saved sentisynth model"),
        ([str(tmp_path / "run" / "model"), str(tmp_path / "t.txt")], "no such run or model"),
        ([str(run.dir), str(tmp_path / "missing.txt")], "missing file"),
    ):
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and message in err and "\n" not in err
    with pytest.raises(DataError, match="missing file"):
        read_texts(str(tmp_path / "missing.txt"))
