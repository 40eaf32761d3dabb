"""Tweet tokenization and the TF-IDF classifiers behind the TextClassifier interface."""

from __future__ import annotations

import numpy as np
import pytest

from sentisynth.classifiers import TextClassifier, TfidfClassifier
from sentisynth.text import normalize_tweet, tweet_tokenize
from tests.conftest import make_posts


def test_tweet_tokenize_keeps_tweet_tokens() -> None:
    toks = tweet_tokenize("@bob I can’t believe it!!! #SoAngry :-) <3 http://t.co/x 😡😡")
    assert toks == [
        "@user",
        "i",
        "can't",
        "believe",
        "it",
        "!!!",
        "#soangry",
        ":-)",
        "<3",
        "<url>",
        "😡",
        "😡",
    ]


def test_normalize_tweet_placeholders() -> None:
    assert normalize_tweet("@Ann  see https://x.y/z NOW") == "@user see <url> now"


@pytest.mark.parametrize("model", ["lr", "svm", "xgb"])
def test_fit_predict_proba(model: str) -> None:
    rows = make_posts(15)
    texts, labels = [t for t, _ in rows], np.array([y for _, y in rows])
    clf = TfidfClassifier(model=model, n_classes=4, xgb_params={"n_estimators": 20}, n_jobs=1)
    assert isinstance(clf, TextClassifier)
    clf.fit(texts, labels)
    proba = clf.predict_proba(texts)
    assert proba.shape == (60, 4)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert (clf.predict(texts) == labels).mean() > 0.9  # separable toy data
    assert clf.feature_names[clf.word_slice].tolist()[0].startswith("word__")


def test_missing_class_gets_zero_probability_column() -> None:
    rows = [(t, y) for t, y in make_posts(10) if y != 2]
    clf = TfidfClassifier(model="xgb", n_classes=4, xgb_params={"n_estimators": 10}, n_jobs=1)
    clf.fit([t for t, _ in rows], [y for _, y in rows])
    proba = clf.predict_proba(["hope tomorrow", "angry rage"])
    assert proba.shape == (2, 4) and np.allclose(proba[:, 2], 0.0)


def test_binary_svm_and_errors() -> None:
    texts = ["good great", "bad awful", "great fun", "awful dull"] * 3
    labels = [1, 0, 1, 0] * 3
    clf = TfidfClassifier(model="svm", char_ngram_range=None).fit(texts, labels)
    assert clf.n_classes == 2 and clf.predict(["great good"]).tolist() == [1]
    with pytest.raises(RuntimeError, match="not fitted"):
        TfidfClassifier().predict_proba(["x"])
    with pytest.raises(ValueError, match="empty training set"):
        TfidfClassifier().fit([], [])
    with pytest.raises(ValueError, match="unknown classical model"):
        TfidfClassifier(model="rf")  # type: ignore[arg-type]


def test_fit_is_deterministic() -> None:
    rows = make_posts(10)
    texts, labels = [t for t, _ in rows], [y for _, y in rows]
    a = TfidfClassifier(model="xgb", n_classes=4, xgb_params={"n_estimators": 15}, n_jobs=1).fit(
        texts, labels
    )
    b = TfidfClassifier(model="xgb", n_classes=4, xgb_params={"n_estimators": 15}, n_jobs=1).fit(
        texts, labels
    )
    assert np.array_equal(a.predict_proba(texts), b.predict_proba(texts))
