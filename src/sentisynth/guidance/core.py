"""`build_guidance`: a classifier fitted on the seed -> per-class keywords and exemplars (`guidance.json`)."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from threadpoolctl import threadpool_limits

from sentisynth.classifiers import TfidfClassifier
from sentisynth.data import DataError, Split
from sentisynth.guidance.attributions import (
    WordAttributions,
    linear_word_attributions,
    tree_word_attributions,
)
from sentisynth.guidance.exemplars import STRATEGIES, select_exemplars
from sentisynth.guidance.fallback import cross_val_proba, evidence, fill_class, most_confused
from sentisynth.guidance.ranking import Keyword, drop_shared, excluded_terms, rank_class, tfidf_differential
from sentisynth.guidance.text_explainer import text_word_attributions
from sentisynth.text import tweet_tokenize
from sentisynth.utils import write_json


@dataclass
class KeywordConfig:
    """The `keywords` config group (conf/keywords/default.yaml): keyword ranking and exemplar selection;
    see there for what each knob does."""

    top_k: int = 20
    combine: str = "zscore"  # zscore | rank_product
    weight_shap: float = 1.0
    weight_tfidf: float = 1.0
    min_class_df: int = 3  # a keyword must occur in >= min(this, class size) posts of its class
    max_ngram: int = 1  # 1: unigram keywords; 2: bigrams may rank too
    exclude_stop_words: bool = True
    exclude_numbers: bool = True
    exclude_punctuation: bool = True
    extra_stop_words: list[str] = field(default_factory=list)
    drop_shared: bool = False
    shared_top_n: int = 50
    shared_max_classes: int = 1
    background_size: int | None = None  # linear SHAP background rows (None: the whole seed)
    exemplar_k: int = 5
    exemplar_strategy: str = "diverse"  # random | confident | keywords | diverse
    exemplar_min_tokens: int = 4  # prefer posts with at least this many tokens (if enough exist)
    mmr_lambda: float = 0.5
    mmr_pool: int | None = 300  # diverse: MMR over the most confident posts of the class only (speed)
    transformer_budget: int = 200  # posts per class explained by the text explainer (non-TF-IDF classifiers)
    transformer_max_evals: int = 300  # model calls per post for the Partition explainer
    blas_threads: int | None = 1  # OpenBLAS busy-waits on L-BFGS's small vector ops: 1 thread is faster
    random_state: int = 0
    min_per_class: int = 5  # fewer SHAP keywords: top up from guidance/fallback.py's sources (0: never)
    fallback_min_df: int = 1  # lowest document-frequency floor a fallback keyword may have
    cv_folds: int = 5  # folds of the seed's cross-validated predictions (contrastive fallback)

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> KeywordConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise ValueError(f"unknown keywords option(s) {unknown}; known: {sorted(known)}")
        cfg = cls(**kwargs)
        cfg.extra_stop_words = list(cfg.extra_stop_words or [])
        if cfg.combine not in ("zscore", "rank_product"):
            raise ValueError(f"keywords.combine must be zscore or rank_product, got {cfg.combine!r}")
        if cfg.exemplar_strategy not in STRATEGIES:
            raise ValueError(
                f"keywords.exemplar_strategy must be one of {', '.join(STRATEGIES)}, "
                f"got {cfg.exemplar_strategy!r}"
            )
        if not 0 <= cfg.min_per_class <= cfg.top_k or cfg.fallback_min_df < 1 or cfg.cv_folds < 2:
            raise ValueError(
                f"keywords.min_per_class must be in [0, top_k={cfg.top_k}], keywords.fallback_min_df >= 1 and "
                f"keywords.cv_folds >= 2 (got {cfg.min_per_class}, {cfg.fallback_min_df}, {cfg.cv_folds})"
            )
        if cfg.top_k < 1 or cfg.exemplar_k < 0:
            raise ValueError(
                f"keywords.top_k must be >= 1 and keywords.exemplar_k >= 0 (got {cfg.top_k}, {cfg.exemplar_k})"
            )
        return cfg


@dataclass
class ClassGuidance:
    keywords: list[Keyword]
    exemplars: list[dict[str, Any]]  # {"text", "index"}


@dataclass
class Guidance:
    """Per-class keywords and exemplars; `to_dict()` is the `guidance.json` schema."""

    classes: dict[str, ClassGuidance]
    classifier: str
    n_seed: int
    explains: str = ""
    config: dict[str, Any] = field(default_factory=dict)

    def keywords(self, name: str, k: int | None = None) -> list[str]:
        return [kw.term for kw in self.classes[name].keywords[:k]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "classes": {
                n: {
                    "keywords": [kw.to_dict() for kw in g.keywords],
                    "exemplars": [dict(e) for e in g.exemplars],
                }
                for n, g in self.classes.items()
            },
            "classifier": self.classifier,
            "n_seed": self.n_seed,
            "explains": self.explains,
            "config": self.config,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Guidance:
        try:
            classes = {
                n: ClassGuidance(
                    [
                        Keyword(
                            k["term"],
                            k["shap"],
                            k["tfidf_diff"],
                            k["score"],
                            k.get("source", "shap"),
                            k.get("against"),
                        )
                        for k in g["keywords"]
                    ],
                    [{"text": e["text"], "index": int(e["index"])} for e in g["exemplars"]],
                )
                for n, g in d["classes"].items()
            }
            return cls(classes, d["classifier"], int(d["n_seed"]), d.get("explains", ""), d.get("config", {}))
        except (KeyError, TypeError) as e:
            raise DataError(f"guidance: malformed guidance dict, missing or bad field {e}") from None

    def save(self, path: str | os.PathLike) -> None:
        write_json(path, self.to_dict())


def load_guidance(path: str | os.PathLike) -> Guidance:
    """Read a `guidance.json` written by the guidance stage."""
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"guidance file not found: {path} (run generate.py stage=guidance first)"
        ) from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}): {e.msg}") from None
    try:
        return Guidance.from_dict(d)
    except DataError as e:
        raise DataError(f"{path}: {e}") from None


def _check_seed(seed: Split, label_names: list[str]) -> None:
    counts = np.bincount(seed.labels, minlength=len(label_names))
    if len(counts) > len(label_names):
        raise DataError(f"seed has label id {len(counts) - 1} but only {len(label_names)} label names")
    missing = [f"{label_names[c]!r} (id {c})" for c in np.flatnonzero(counts == 0)]
    if missing:
        raise DataError(
            f"guidance needs at least one seed post per class; class {', '.join(missing)} has none "
            f"in the seed of {len(seed)} posts (increase data.seed_size)"
        )


def word_attributions(
    classifier: TfidfClassifier, X: Any, labels: np.ndarray, cfg: KeywordConfig
) -> WordAttributions:
    """Exact linear SHAP for lr/svm, TreeSHAP for xgboost."""
    if classifier.model_name in ("lr", "svm"):
        bg = X
        if cfg.background_size is not None and cfg.background_size < X.shape[0]:
            rows = np.random.default_rng(cfg.random_state).choice(
                X.shape[0], cfg.background_size, replace=False
            )
            bg = X[np.sort(rows)]
        return linear_word_attributions(classifier, X, labels, bg)
    return tree_word_attributions(classifier, X, labels)


def explain(
    classifier: Any, seed: Split, cfg: KeywordConfig, n_classes: int
) -> tuple[WordAttributions, sp.csr_matrix, np.ndarray, str]:
    """(word attributions, word TF-IDF matrix of the seed, class probabilities, classifier name)."""
    labels = np.asarray(seed.labels, dtype=int)
    if isinstance(classifier, TfidfClassifier):
        X = classifier.transform(seed.texts)
        attr = word_attributions(classifier, X, labels, cfg)
        return (
            attr,
            X[:, classifier.word_slice],
            classifier.predict_proba_features(X),
            f"tfidf_{classifier.model_name}",
        )
    if not callable(getattr(classifier, "predict_proba", None)):
        raise NotImplementedError(
            f"SHAP guidance needs a TfidfClassifier or a classifier with predict_proba(texts); "
            f"{type(classifier).__name__} has neither"
        )
    vec = TfidfVectorizer(tokenizer=tweet_tokenize, token_pattern=None, lowercase=False, sublinear_tf=True)
    Xw = vec.fit_transform(list(seed.texts)).tocsr()
    attr = text_word_attributions(
        classifier.predict_proba,
        seed.texts,
        labels,
        n_classes,
        vec.vocabulary_,
        cfg.transformer_budget,
        cfg.transformer_max_evals,
        cfg.random_state,
    )
    proba = np.asarray(classifier.predict_proba(list(seed.texts)))
    return attr, Xw, proba, type(classifier).__name__


def rank_all(
    attr: WordAttributions, diff: np.ndarray, labels: np.ndarray, cfg: KeywordConfig
) -> list[list[Keyword]]:
    """Per class, every word that passes the document-frequency floor and the exclusions, best first."""
    terms = attr.terms
    n_classes = attr.shap.shape[0]
    class_sizes = np.bincount(labels, minlength=n_classes)
    min_df = np.maximum(1, np.minimum(cfg.min_class_df, class_sizes))[:, None]
    frequent = (attr.count >= min_df) & np.isfinite(attr.shap)  # (n_classes, n_words)
    eligible = np.zeros(len(terms), dtype=bool)
    idx = np.flatnonzero(
        frequent.any(axis=0)
    )  # test exclusions only where it matters (cheap on big vocabularies)
    eligible[idx] = ~excluded_terms(
        terms[idx], cfg.exclude_stop_words, cfg.exclude_numbers, cfg.exclude_punctuation, cfg.extra_stop_words
    )
    eligible &= np.array([t.count(" ") < cfg.max_ngram for t in terms], dtype=bool)
    ranked = [
        rank_class(
            terms,
            attr.shap[c],
            diff[c],
            eligible & frequent[c],
            cfg.combine,
            cfg.weight_shap,
            cfg.weight_tfidf,
        )
        for c in range(n_classes)
    ]
    return drop_shared(ranked, cfg.shared_top_n, cfg.shared_max_classes) if cfg.drop_shared else ranked


def confusion_source(
    classifier: Any, seed: Split, proba: np.ndarray, cfg: KeywordConfig
) -> Callable[[], np.ndarray]:
    """A lazy `most_confused` per class: cross-validated on the seed for TF-IDF classifiers (cheap refits),
    the fitted classifier's in-sample predictions otherwise (or when the seed is too small to split)."""

    @functools.cache
    def confused() -> np.ndarray:
        n_classes = proba.shape[1]
        cv = None
        if isinstance(classifier, TfidfClassifier):
            cv = cross_val_proba(classifier, seed, n_classes, cfg.cv_folds, cfg.random_state)
        return most_confused(proba if cv is None else cv, seed.labels, n_classes)

    return confused


def with_fallbacks(
    ranked: list[list[Keyword]],
    attr: WordAttributions,
    X_words: Any,
    labels: np.ndarray,
    confused: Callable[[], np.ndarray],
    label_names: list[str],
    cfg: KeywordConfig,
) -> list[list[Keyword]]:
    """The top_k keywords per class, topped up to min_per_class where SHAP leaves a class short."""
    top = [r[: cfg.top_k] for r in ranked]
    if all(len(t) >= cfg.min_per_class for t in top):
        return top
    ev = evidence(attr.terms, attr.shap, attr.count, X_words, labels)
    return [
        t if len(t) >= cfg.min_per_class else fill_class(c, t, ev, cfg, confused, label_names)
        for c, t in enumerate(top)
    ]


def build_guidance(classifier: Any, seed: Split, label_names: list[str], **keyword_cfg: Any) -> Guidance:
    """Keywords (top_k per class, at least min_per_class) and exemplars (exemplar_k per class) from a
    classifier fitted on `seed`.

    `keyword_cfg` are the `keywords` config group's keys (`**OmegaConf.to_container(cfg.keywords, resolve=True)`).
    A class without any seed post raises `DataError`.
    """
    cfg = KeywordConfig.from_kwargs(**keyword_cfg)
    _check_seed(seed, label_names)
    n_classes = len(label_names)
    labels = np.asarray(seed.labels, dtype=int)
    with threadpool_limits(cfg.blas_threads, user_api="blas") if cfg.blas_threads else nullcontext():
        attr, X_words, proba, clf_name = explain(classifier, seed, cfg, n_classes)
        diff = tfidf_differential(X_words, labels, n_classes)
        ranked = rank_all(attr, diff, labels, cfg)
        confused = confusion_source(classifier, seed, proba, cfg)
        chosen = with_fallbacks(ranked, attr, X_words, labels, confused, label_names, cfg)

    classes: dict[str, ClassGuidance] = {}
    own_conf = proba[np.arange(len(labels)), labels]
    for c, name in enumerate(label_names):
        keywords = chosen[c]
        rows = select_exemplars(
            cfg.exemplar_strategy,
            cfg.exemplar_k,
            np.flatnonzero(labels == c),
            seed.texts,
            own_conf,
            X_words,
            [kw.term for kw in keywords],
            seed=cfg.random_state + c,
            mmr_lambda=cfg.mmr_lambda,
            mmr_pool=cfg.mmr_pool,
            min_tokens=cfg.exemplar_min_tokens,
        )
        exemplars = [{"text": seed.texts[r], "index": int(seed.index[r])} for r in rows]
        classes[name] = ClassGuidance(keywords, exemplars)
    return Guidance(classes, clf_name, len(seed), attr.explains, asdict(cfg))
