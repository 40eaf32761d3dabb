"""`build_guidance`: a classifier fitted on the seed -> per-class keywords and exemplars (`guidance.json`)."""

from __future__ import annotations

import json
import os
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
                    [Keyword(k["term"], k["shap"], k["tfidf_diff"], k["score"]) for k in g["keywords"]],
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


def build_guidance(classifier: Any, seed: Split, label_names: list[str], **keyword_cfg: Any) -> Guidance:
    """Keywords (top_k per class) and exemplars (exemplar_k per class) from a classifier fitted on `seed`.

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

    terms = attr.terms
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
    ranked = []
    for c in range(n_classes):
        cand = eligible & frequent[c]
        ranked.append(
            rank_class(terms, attr.shap[c], diff[c], cand, cfg.combine, cfg.weight_shap, cfg.weight_tfidf)
        )
    if cfg.drop_shared:
        ranked = drop_shared(ranked, cfg.shared_top_n, cfg.shared_max_classes)

    classes: dict[str, ClassGuidance] = {}
    own_conf = proba[np.arange(len(labels)), labels]
    for c, name in enumerate(label_names):
        keywords = ranked[c][: cfg.top_k]
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
