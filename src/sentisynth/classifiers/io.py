"""Save and reload fitted classifiers for prediction, in formats that never run code on load.

A saved model is a directory with `sentisynth_model.json` (kind, label names, settings):
- transformers: `save_pretrained` (model + tokenizer, `id2label` set to the label names) plus the
  classifier's own settings file; loads with `from_pretrained`, or any Hugging Face tool.
- TF-IDF models: the vocabularies and settings as JSON, the idf weights and linear coefficients in a
  `.npz` read with `allow_pickle=False`, XGBoost trees in XGBoost's own JSON format. No pickle anywhere,
  so loading a model from someone else cannot execute code (the tokenizer functions come from sentisynth).
Every saved model is sealed (`sentisynth.cache.seal`: sha256 of each file, `integrity.json`) and verified at
load: a flipped byte in the weights or reordered `label_names` is one error naming the file, never a model
that silently predicts other classes. A folder without a seal (made by an older version) loads with a warning.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from sentisynth.cache import SEAL, problem, seal
from sentisynth.errors import DataError
from sentisynth.utils import read_json

log = logging.getLogger(__name__)

INDEX_FILE = "sentisynth_model.json"
TFIDF_PARAMS = (
    "model_name",
    "n_classes",
    "word_ngram_range",
    "char_ngram_range",
    "min_df",
    "max_df",
    "sublinear_tf",
    "max_features",
    "class_weight",
    "C",
    "max_iter",
    "xgb_params",
    "random_state",
    "n_jobs",
    "blas_threads",
)


def write_tfidf(clf: Any, path: Path) -> None:
    params = {k: getattr(clf, k) for k in TFIDF_PARAMS}
    params["model"] = params.pop("model_name")
    parts = dict(clf.vectorizer.transformer_list)
    vocab = {name: sorted(v.vocabulary_, key=v.vocabulary_.__getitem__) for name, v in parts.items()}
    arrays = {f"idf_{name}": v.idf_ for name, v in parts.items()}
    if clf.model_name == "xgb":
        clf.model.save_model(path / "xgb.json")
        arrays["xgb_classes"] = np.asarray(clf._xgb_classes)
    else:
        arrays.update(coef=clf.model.coef_, intercept=clf.model.intercept_, classes=clf.model.classes_)
    (path / "tfidf.json").write_text(json.dumps({"params": params, "vocabulary": vocab}, ensure_ascii=False))
    np.savez(path / "tfidf_arrays.npz", **arrays)


def read_tfidf(path: Path) -> Any:
    from sentisynth.classifiers.tfidf import TfidfClassifier

    meta = read_json(path / "tfidf.json")
    try:
        arrays = np.load(path / "tfidf_arrays.npz", allow_pickle=False)
    except (OSError, ValueError) as e:  # zipfile.BadZipFile is an OSError
        raise DataError(
            f"{path / 'tfidf_arrays.npz'}: unreadable ({e}); the model directory is damaged"
        ) from None
    clf = TfidfClassifier(**meta["params"])
    clf.vectorizer = clf._make_vectorizer()
    for name, vec in clf.vectorizer.transformer_list:
        vec.vocabulary_ = {t: i for i, t in enumerate(meta["vocabulary"][name])}
        vec.idf_ = arrays[f"idf_{name}"]
    clf.model = clf._make_model()
    if clf.model_name == "xgb":
        clf.model.load_model(path / "xgb.json")
        clf._xgb_classes = arrays["xgb_classes"]
    else:
        clf.model.coef_, clf.model.intercept_ = arrays["coef"], arrays["intercept"]
        clf.model.classes_ = arrays["classes"]
        clf.model.n_features_in_ = arrays["coef"].shape[1]
    return clf


def kind_of(clf: Any) -> str:
    """`tfidf` or `transformer`, without importing the transformer stack (Lightning) for a TF-IDF model."""
    from sentisynth.classifiers.tfidf import TfidfClassifier

    if isinstance(clf, TfidfClassifier):
        return "tfidf"
    transformer = sys.modules.get("sentisynth.classifiers.transformer")  # imported if clf is one
    if transformer is not None and isinstance(clf, transformer.TransformerClassifier):
        return "transformer"
    raise TypeError(
        f"cannot save a {type(clf).__name__}: only TF-IDF and transformer classifiers are supported"
    )


def save_classifier(clf: Any, path: str | os.PathLike, label_names: list[str]) -> Path:
    """Save a fitted classifier with its label names; atomic (temp dir, then rename)."""
    kind, path = kind_of(clf), Path(path)
    if kind == "transformer":
        clf._check_fitted()
        clf.model.config.id2label = dict(enumerate(label_names))
        clf.model.config.label2id = {n: i for i, n in enumerate(label_names)}
        clf.save(path)  # save_pretrained + tokenizer, atomically
        tmp = None
    else:
        clf._check_fitted()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
        write_tfidf(clf, tmp)
    target = tmp or path
    (target / INDEX_FILE).write_text(json.dumps({"kind": kind, "label_names": list(label_names)}, indent=2))
    seal(target)  # every file, the label names included, hashed: load_classifier verifies them
    if tmp is not None:
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    return path


def verify_model(path: Path) -> None:
    """Refuse a sealed model folder whose files changed since it was saved (one line naming the file)."""
    if not (path / SEAL).is_file():
        if not (path / INDEX_FILE).is_file():
            return  # not a saved model at all: load_classifier says so
        log.warning("model %s has no %s (saved by an older version): not verified", path, SEAL)
        return
    issue = problem(path)
    if issue is not None:
        raise DataError(
            f"model directory {path} is damaged: {issue}; retrain it (or restore the folder from a copy)"
        )


def load_classifier(path: str | os.PathLike, **runtime: Any) -> tuple[Any, list[str]]:
    """(classifier, label names) from a directory written by `save_classifier` (or a cached teacher)."""
    path = Path(path)
    if path.is_dir():
        verify_model(path)
    meta = read_json(path / INDEX_FILE) if (path / INDEX_FILE).is_file() else None
    if meta is not None and (not isinstance(meta, dict) or meta.get("kind") not in ("tfidf", "transformer")):
        raise DataError(f"{path / INDEX_FILE}: not a sentisynth model index; the model directory is damaged")
    if meta and meta["kind"] == "tfidf":
        return read_tfidf(path), list(meta["label_names"])
    from sentisynth.classifiers.transformer import META_FILE, TransformerClassifier  # noqa: I001 - Lightning: only when needed

    if not meta and not (path / META_FILE).is_file():
        raise FileNotFoundError(f"{path}: not a saved sentisynth model (no {INDEX_FILE})")
    clf = TransformerClassifier.load(path, **runtime)
    if meta:
        return clf, list(meta["label_names"])
    id2label = clf.model.config.id2label or {}  # a teacher cached before label names were saved with it
    return clf, [str(id2label.get(i, i)) for i in range(clf.n_classes)]
