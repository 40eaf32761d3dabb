"""No class without guidance: fallback keyword sources for classes SHAP leaves short.

At small seeds a minority class has few words that reach the document-frequency floor (TweetEval
emotion, 250 seed posts: optimism has 23 posts and 0-4 SHAP keywords). When a class has fewer than
`keywords.min_per_class` keywords, the list is topped up from these sources, in this order, each
keyword recording its `source` in guidance.json:

1. `shap_low_df`: the same SHAP + TF-IDF ranking with the floor lowered one post at a time down to
   `keywords.fallback_min_df`, keeping only words whose SHAP value pushes towards the class (> 0);
2. `tfidf`: the TF-IDF differential alone (> 0): words more frequent/weighted in the class than in
   the others, whatever the classifier made of them (e.g. words a tree model never split on);
3. `contrastive`: words that separate the class from its most confused class (`against`), by the
   pairwise TF-IDF differential (> 0); the confused class comes from cross-validated predictions on
   the seed (TF-IDF classifiers; other classifiers: their in-sample predictions).

The primary `shap` list is never reordered; fallbacks only append, up to `min_per_class`.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.model_selection import StratifiedKFold

from sentisynth.data import Split
from sentisynth.guidance.ranking import Keyword, excluded_terms, rank_class, tfidf_differential

FALLBACK_ORDER = ("shap_low_df", "tfidf", "contrastive")


@dataclass(frozen=True)
class Evidence:
    """What the fallbacks read: per-class SHAP and TF-IDF scores over the word vocabulary."""

    terms: np.ndarray  # (n_words,)
    shap: np.ndarray  # (n_classes, n_words), NaN where the word never occurs in the class
    count: np.ndarray  # (n_classes, n_words) posts of the class containing the word (SHAP's count)
    diff: np.ndarray  # (n_classes, n_words) TF-IDF differential
    class_means: np.ndarray  # (n_classes, n_words) mean TF-IDF weight per class
    docs: np.ndarray  # (n_classes, n_words) posts of the class containing the word (TF-IDF)
    sizes: np.ndarray  # (n_classes,) seed posts per class


def evidence(
    terms: np.ndarray, shap: np.ndarray, count: np.ndarray, X_words: sp.csr_matrix, labels: np.ndarray
) -> Evidence:
    """Per-class mean weights and document counts of the seed's word TF-IDF matrix."""
    n_classes = shap.shape[0]
    means = np.vstack([np.asarray(X_words[labels == c].mean(axis=0)).ravel() for c in range(n_classes)])
    docs = np.vstack([np.diff(X_words[labels == c].tocsc().indptr) for c in range(n_classes)])
    sizes = np.bincount(labels, minlength=n_classes)
    return Evidence(terms, shap, count, tfidf_differential(X_words, labels, n_classes), means, docs, sizes)


def cross_val_proba(
    classifier: Any, seed: Split, n_classes: int, folds: int, random_state: int
) -> np.ndarray | None:
    """Out-of-fold class probabilities of the seed posts (a copy of `classifier` refitted per fold).

    None when the seed is too small to split (fewer than 2 posts in every class) or a fold cannot be fitted.
    """
    labels = np.asarray(seed.labels, dtype=int)
    k = min(folds, int(np.bincount(labels, minlength=n_classes).max()))
    if k < 2:
        return None
    out = np.zeros((len(labels), n_classes))
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=random_state)
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", UserWarning
        )  # "least populated class has fewer members than n_splits"
        splits = list(splitter.split(np.zeros(len(labels)), labels))
    for train, held in splits:
        part = seed.subset(train)
        try:
            model = copy.deepcopy(classifier).fit(part.texts, part.labels)
        except ValueError:  # a fold with a single class
            return None
        out[held] = np.asarray(model.predict_proba([seed.texts[i] for i in held]))
    return out


def most_confused(proba: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """For each class c, the other class its posts are most often predicted as (ties: higher mean probability)."""
    labels = np.asarray(labels, dtype=int)
    pred = proba.argmax(axis=1)
    out = np.zeros(n_classes, dtype=int)
    for c in range(n_classes):
        rows = labels == c
        wrong = np.bincount(pred[rows], minlength=n_classes).astype(float)
        mean_p = proba[rows].mean(axis=0) if rows.any() else np.zeros(n_classes)
        score = wrong + mean_p / 2.0  # mean probability < 1: breaks ties between counts only
        score[c] = -np.inf
        out[c] = int(np.argmax(score))
    return out


def _eligible(ev: Evidence, c: int, floor: int, cfg: Any, taken: set[str]) -> np.ndarray:
    """Words of class c in >= floor of its posts, not excluded (stop words, ...), within max_ngram, not taken."""
    idx = np.flatnonzero(ev.docs[c] >= floor)
    keep = ~excluded_terms(
        ev.terms[idx],
        cfg.exclude_stop_words,
        cfg.exclude_numbers,
        cfg.exclude_punctuation,
        cfg.extra_stop_words,
    ) & np.array([t.count(" ") < cfg.max_ngram and t not in taken for t in ev.terms[idx]], dtype=bool)
    out = np.zeros(len(ev.terms), dtype=bool)
    out[idx[keep]] = True
    return out


def _by_score(
    ev: Evidence, cand: np.ndarray, score: np.ndarray, c: int, source: str, against: str | None = None
) -> list[Keyword]:
    idx = np.flatnonzero(cand & (score > 0))
    order = sorted(idx, key=lambda j: (-score[j], ev.terms[j]))
    return [
        Keyword(
            str(ev.terms[j]),
            float(np.nan_to_num(ev.shap[c, j])),
            float(ev.diff[c, j]),
            float(score[j]),
            source,
            against,
        )
        for j in order
    ]


def fill_class(
    c: int,
    keywords: list[Keyword],
    ev: Evidence,
    cfg: Any,
    confused: Callable[[], np.ndarray],
    label_names: list[str],
) -> list[Keyword]:
    """`keywords` topped up to `cfg.min_per_class` from the fallback sources, in FALLBACK_ORDER.

    `confused()` returns the most-confused-class array (called only if the contrastive step is reached).
    """
    out = list(keywords)
    need = cfg.min_per_class
    primary = max(1, min(cfg.min_class_df, int(ev.sizes[c])))
    floors = range(primary - 1, cfg.fallback_min_df - 1, -1)
    for floor in floors:
        if len(out) >= need:
            return out
        cand = _eligible(ev, c, floor, cfg, {k.term for k in out}) & (np.nan_to_num(ev.shap[c]) > 0)
        ranked = rank_class(
            ev.terms, ev.shap[c], ev.diff[c], cand, cfg.combine, cfg.weight_shap, cfg.weight_tfidf
        )
        out += [replace(k, source="shap_low_df") for k in ranked[: need - len(out)]]
    if len(out) < need:
        cand = _eligible(ev, c, cfg.fallback_min_df, cfg, {k.term for k in out})
        out += _by_score(ev, cand, ev.diff[c], c, "tfidf")[: need - len(out)]
    if len(out) < need and len(label_names) > 1:
        b = int(confused()[c])
        cand = _eligible(ev, c, cfg.fallback_min_df, cfg, {k.term for k in out})
        pair = ev.class_means[c] - ev.class_means[b]
        out += _by_score(ev, cand, pair, c, "contrastive", label_names[b])[: need - len(out)]
    return out
