"""TF-IDF + classical model (logistic regression, linear SVM, XGBoost) behind `TextClassifier`.

The fitted `vectorizer` (word and character n-grams) and `model` stay exposed so SHAP can read
them: `word_slice` tells which columns of the feature matrix are word features.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion
from sklearn.svm import LinearSVC
from sklearn.utils.class_weight import compute_sample_weight
from threadpoolctl import threadpool_limits

from sentisynth.classifiers.base import check_training_data
from sentisynth.text import normalize_tweet, tweet_tokenize

ModelName = Literal["lr", "svm", "xgb"]


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class TfidfClassifier:
    """Tweet-aware TF-IDF features and a classical model.

    Linear SVMs have no probabilities: `predict_proba` is the softmax of the decision margins (it
    ranks and argmaxes like the SVM, but is not calibrated).
    """

    def __init__(
        self,
        model: ModelName = "lr",
        n_classes: int | None = None,
        word_ngram_range: Sequence[int] = (1, 2),
        char_ngram_range: Sequence[int] | None = (2, 5),
        min_df: int = 1,
        max_df: float = 1.0,
        sublinear_tf: bool = True,
        max_features: int | None = None,
        class_weight: str | None = "balanced",
        C: float = 1.0,
        max_iter: int = 2000,
        xgb_params: dict[str, Any] | None = None,
        random_state: int = 0,
        n_jobs: int = 1,
        blas_threads: int | None = 1,
    ) -> None:
        if model not in ("lr", "svm", "xgb"):
            raise ValueError(f"unknown classical model {model!r} (use lr, svm or xgb)")
        self.model_name = model
        self.n_classes = n_classes
        self.word_ngram_range = tuple(word_ngram_range)
        self.char_ngram_range = tuple(char_ngram_range) if char_ngram_range else None
        self.min_df = min_df
        self.max_df = max_df
        self.sublinear_tf = sublinear_tf
        self.max_features = max_features
        self.class_weight = class_weight
        self.C = C
        self.max_iter = max_iter
        self.xgb_params = dict(xgb_params or {})
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.blas_threads = blas_threads
        self.vectorizer: FeatureUnion | None = None
        self.model: Any = None

    # -- features ---------------------------------------------------------------------------------
    def _make_vectorizer(self) -> FeatureUnion:
        parts = [
            (
                "word",
                TfidfVectorizer(
                    tokenizer=tweet_tokenize,
                    token_pattern=None,
                    lowercase=False,
                    ngram_range=self.word_ngram_range,
                    min_df=self.min_df,
                    max_df=self.max_df,
                    sublinear_tf=self.sublinear_tf,
                    max_features=self.max_features,
                    dtype=np.float64,
                ),
            )
        ]
        if self.char_ngram_range:
            parts.append(
                (
                    "char",
                    TfidfVectorizer(
                        analyzer="char_wb",
                        preprocessor=normalize_tweet,
                        ngram_range=self.char_ngram_range,
                        min_df=max(self.min_df, 2),
                        sublinear_tf=self.sublinear_tf,
                        max_features=self.max_features,
                        dtype=np.float64,
                    ),
                )
            )
        return FeatureUnion(parts)

    @property
    def word_vectorizer(self) -> TfidfVectorizer:
        self._check_fitted()
        return dict(self.vectorizer.transformer_list)["word"]

    @property
    def word_slice(self) -> slice:
        """Columns of `transform(...)` that hold word (not character) n-gram features."""
        return slice(0, len(self.word_vectorizer.vocabulary_))

    @property
    def feature_names(self) -> np.ndarray:
        self._check_fitted()
        return self.vectorizer.get_feature_names_out()

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        self._check_fitted()
        return self.vectorizer.transform(list(texts)).tocsr()

    # -- fitting ----------------------------------------------------------------------------------
    def _make_model(self) -> Any:
        if self.model_name == "lr":
            return LogisticRegression(
                C=self.C,
                max_iter=self.max_iter,
                class_weight=self.class_weight,
                random_state=self.random_state,
            )
        if self.model_name == "svm":
            return LinearSVC(
                C=self.C,
                max_iter=self.max_iter,
                class_weight=self.class_weight,
                random_state=self.random_state,
            )
        from xgboost import XGBClassifier

        params = dict(
            n_estimators=300,
            max_depth=6,
            learning_rate=0.1,
            subsample=0.9,
            colsample_bytree=0.5,
            tree_method="hist",
            eval_metric="mlogloss",
        )
        params.update(self.xgb_params)
        return XGBClassifier(**params, random_state=self.random_state, n_jobs=self.n_jobs)

    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[int] | np.ndarray,
        sample_weight: np.ndarray | None = None,
        val_texts: Sequence[str] | None = None,
        val_labels: Sequence[int] | np.ndarray | None = None,
    ) -> "TfidfClassifier":
        labels, self.n_classes = check_training_data(texts, labels, self.n_classes)
        present = np.unique(labels)
        if present.size < 2:
            raise ValueError(f"need at least two classes to fit, got only {present.tolist()}")
        self.vectorizer = self._make_vectorizer()
        X = self.vectorizer.fit_transform(list(texts)).tocsr()
        self.model = self._make_model()
        with threadpool_limits(self.blas_threads):  # L-BFGS on sparse data gains nothing from BLAS threads
            self._fit_model(X, labels, present, sample_weight)
        return self

    def _fit_model(
        self, X: sp.csr_matrix, labels: np.ndarray, present: np.ndarray, sample_weight: np.ndarray | None
    ) -> None:
        if self.model_name == "xgb":
            # xgboost needs contiguous class ids: train on the present ones, map back in predict_proba
            self._xgb_classes = present
            y = np.searchsorted(present, labels)
            w = sample_weight
            if self.class_weight == "balanced":
                cw = compute_sample_weight("balanced", labels)
                w = cw if w is None else w * cw
            self.model.fit(X.astype(np.float32), y, sample_weight=w)
        else:
            self.model.fit(X, labels, sample_weight=sample_weight)

    # -- prediction -------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if self.vectorizer is None or self.model is None:
            raise RuntimeError("classifier is not fitted yet: call fit(texts, labels) first")

    def decision_scores(self, X: sp.csr_matrix) -> np.ndarray:
        """Per-class scores on features (margins for linear models, class probabilities for xgboost)."""
        self._check_fitted()
        n = X.shape[0]
        out = np.full((n, self.n_classes), -np.inf if self.model_name != "xgb" else 0.0)
        if self.model_name == "xgb":
            out[:, self._xgb_classes] = self.model.predict_proba(X.astype(np.float32))
            return out
        scores = self.model.decision_function(X)
        classes = self.model.classes_
        if scores.ndim == 1:  # binary: sklearn returns the positive-class margin only
            scores = np.stack([-scores, scores], axis=1) / 2.0
        out[:, classes] = scores
        return out

    def predict_proba_features(self, X: sp.csr_matrix) -> np.ndarray:
        scores = self.decision_scores(X)
        if self.model_name == "xgb":
            return scores
        if self.model_name == "lr":
            proba = np.zeros_like(scores)
            proba[:, self.model.classes_] = self.model.predict_proba(X)
            return proba
        return _softmax(scores)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.predict_proba_features(self.transform(texts))

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return self.predict_proba(texts).argmax(axis=1)
