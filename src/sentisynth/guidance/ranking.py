"""Per-class keyword ranking: SHAP (aggregated over occurrences) combined with a TF-IDF differential.

The TF-IDF differential of word j for class c is its mean TF-IDF weight over the posts of class c
minus the average of its per-class mean weights over the other classes (each class counts once, so
a large class does not dominate "the rest"). The two scores combine either as weighted z-scores
(z computed over the candidate words of class c) or as a weighted rank product (geometric mean of
ranks; reported score = 1 / that mean, so higher is better). Ties break on the term, so the
ranking is deterministic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from sentisynth.text import PLACEHOLDERS

_NUMBER = re.compile(r"^#?[\d.,:/%'+-]*\d[\d.,:/%'+-]*(?:st|nd|rd|th|s|k|m)?$")
_PUNCT = re.compile(r"^[\W_]+$")


@dataclass(frozen=True)
class Keyword:
    term: str
    shap: float
    tfidf_diff: float
    score: float
    source: str = "shap"  # shap | shap_low_df | tfidf | contrastive (guidance/fallback.py)
    against: str | None = None  # contrastive: the class the keyword separates this one from

    def to_dict(self) -> dict[str, float | str]:
        d: dict[str, float | str] = {
            "term": self.term,
            "shap": round(float(self.shap), 6),
            "tfidf_diff": round(float(self.tfidf_diff), 6),
            "score": round(float(self.score), 6),
            "source": self.source,
        }
        if self.against is not None:
            d["against"] = self.against
        return d


def tfidf_differential(X_words: sp.csr_matrix, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, n_words): mean weight in class c minus the mean of the other classes' mean weights."""
    means = np.vstack([np.asarray(X_words[labels == c].mean(axis=0)).ravel() for c in range(n_classes)])
    others = (means.sum(axis=0, keepdims=True) - means) / max(n_classes - 1, 1)
    return means - others


def excluded_terms(
    terms: np.ndarray,
    stop_words: bool = True,
    numbers: bool = True,
    punctuation: bool = True,
    extra: list[str] | tuple[str, ...] = (),
) -> np.ndarray:
    """Boolean mask of terms that are never keywords: placeholders, stop words, pure numbers, punctuation.

    An n-gram is excluded if any token is a placeholder, number or punctuation, or all its tokens are
    stop words. A hashtag counts as its word for the stop-word test (#the is noise too); contractions
    of stop words (it's, you're) and n't forms (doesn't) count as stop words.
    """
    extra_set = {e.lower() for e in extra}
    stop = set(ENGLISH_STOP_WORDS) if stop_words else set()
    return np.array(
        [_excluded(term.split(" "), extra_set, stop, numbers, punctuation) for term in terms], dtype=bool
    )


def _excluded(toks: list[str], extra: set[str], stop: set[str], numbers: bool, punctuation: bool) -> bool:
    if " ".join(toks) in extra or any(t in PLACEHOLDERS or t in extra for t in toks):
        return True
    if numbers and any(_NUMBER.match(t) for t in toks):
        return True
    if punctuation and any(_PUNCT.match(t) and not _is_symbolic(t) for t in toks):
        return True
    return bool(stop) and all(_is_stop(t.lstrip("#"), stop) for t in toks)


def _is_stop(tok: str, stop: set[str]) -> bool:
    """Stop words, plus contractions of them and negated auxiliaries (it's, you're, i'm, doesn't, can't)."""
    if tok in stop:
        return True
    head, sep, tail = tok.partition("'")
    return bool(sep) and (head in stop or tail == "t")


def _is_symbolic(tok: str) -> bool:
    """Emoji and emoticons carry emotion: keep them even though they are not \\w."""
    return any(ord(ch) > 0x2000 for ch in tok) or bool(re.search(r"[:;=8<][\-o*']?[()\[\]dDpP/\\|{}@3]", tok))


def _zscore(v: np.ndarray) -> np.ndarray:
    sd = v.std()
    return (v - v.mean()) / sd if sd > 0 else np.zeros_like(v)


def combine_scores(
    shap: np.ndarray, diff: np.ndarray, method: str, w_shap: float, w_tfidf: float
) -> np.ndarray:
    """One score per candidate (higher is better) from the SHAP and TF-IDF differential scores."""
    if method == "zscore":
        return w_shap * _zscore(shap) + w_tfidf * _zscore(diff)
    if method == "rank_product":
        r_s, r_t = rankdata(-shap), rankdata(-diff)  # 1 = best; ties get the average rank
        total = w_shap + w_tfidf
        if total <= 0:
            raise ValueError("keywords.weight_shap and keywords.weight_tfidf must not both be zero")
        return 1.0 / np.exp((w_shap * np.log(r_s) + w_tfidf * np.log(r_t)) / total)
    raise ValueError(f"unknown combine method {method!r} (use zscore or rank_product)")


def rank_class(
    terms: np.ndarray,
    shap: np.ndarray,
    diff: np.ndarray,
    candidates: np.ndarray,
    method: str,
    w_shap: float,
    w_tfidf: float,
) -> list[Keyword]:
    """All candidates of one class, best first (ties broken by term)."""
    idx = np.flatnonzero(candidates)
    if idx.size == 0:
        return []
    score = combine_scores(shap[idx], diff[idx], method, w_shap, w_tfidf)
    order = sorted(range(idx.size), key=lambda i: (-score[i], terms[idx[i]]))
    return [
        Keyword(str(terms[idx[i]]), float(shap[idx[i]]), float(diff[idx[i]]), float(score[i])) for i in order
    ]


def drop_shared(ranked: list[list[Keyword]], top_n: int, max_classes: int) -> list[list[Keyword]]:
    """Remove terms that sit in the top `top_n` of more than `max_classes` classes (generic emotion words)."""
    seen: dict[str, int] = {}
    for kws in ranked:
        for kw in kws[:top_n]:
            seen[kw.term] = seen.get(kw.term, 0) + 1
    shared = {t for t, n in seen.items() if n > max_classes}
    return [[kw for kw in kws if kw.term not in shared] for kws in ranked]
