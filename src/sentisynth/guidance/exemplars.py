"""Exemplar posts per class, for few-shot prompts.

Strategies (all return distinct texts of the class, deterministic for a given seed):
- `random`: a seeded random sample;
- `confident`: the posts the classifier gives the highest probability of their own class;
- `keywords`: greedy cover of the class's top keywords (most not-yet-covered keywords first);
- `diverse`: maximal marginal relevance over L2-normalised TF-IDF vectors
  (lambda * confidence - (1 - lambda) * max cosine similarity to the exemplars already chosen),
  optionally among the `mmr_pool` most confident posts only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from sentisynth.text import tweet_tokenize

STRATEGIES = ("random", "confident", "keywords", "diverse")


def _distinct(rows: np.ndarray, texts: Sequence[str]) -> np.ndarray:
    """First row of each distinct (case/space-normalised) text, so exemplars never repeat a post."""
    seen: set[str] = set()
    keep = []
    for r in rows:
        key = " ".join(texts[r].lower().split())
        if key not in seen:
            seen.add(key)
            keep.append(r)
    return np.asarray(keep, dtype=int)


def select_exemplars(
    strategy: str,
    k: int,
    rows: np.ndarray,
    texts: Sequence[str],
    confidence: np.ndarray,
    X: sp.csr_matrix | None = None,
    keywords: Sequence[str] = (),
    seed: int = 0,
    mmr_lambda: float = 0.5,
    mmr_pool: int | None = None,
    min_tokens: int = 1,
) -> list[int]:
    """Pick up to k rows among `rows` (positions in `texts`); `confidence[r]` is P(own class | post r)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown exemplar strategy {strategy!r} (use one of {', '.join(STRATEGIES)})")
    rows = _distinct(np.sort(np.asarray(rows, dtype=int)), texts)
    if min_tokens > 1:  # one-word posts make poor few-shot examples; fall back to all if too few remain
        long_enough = np.array([len(tweet_tokenize(texts[r])) >= min_tokens for r in rows], dtype=bool)
        if long_enough.sum() >= min(k, rows.size):
            rows = rows[long_enough]
    k = min(k, rows.size)
    if k <= 0:
        return []
    by_conf = rows[np.lexsort((rows, -confidence[rows]))]  # most confident first, ties by row
    if strategy == "random":
        return sorted(np.random.default_rng(seed).choice(rows, size=k, replace=False).tolist())
    if strategy == "confident":
        return by_conf[:k].tolist()
    if strategy == "keywords":
        return _keyword_cover(by_conf, texts, keywords, k)
    if X is None:
        raise ValueError("the diverse strategy needs the TF-IDF matrix X")
    pool = by_conf[:mmr_pool] if mmr_pool else by_conf
    return _mmr(pool, normalize(X[pool]), confidence[pool], k, mmr_lambda)


def _keyword_cover(
    candidates: np.ndarray, texts: Sequence[str], keywords: Sequence[str], k: int
) -> list[int]:
    """Greedy set cover of the keywords (unigrams and n-grams as token runs); confidence breaks ties."""
    kw = list(keywords)
    tokens = [tweet_tokenize(texts[r]) for r in candidates]
    grams = [set(t) | {" ".join(t[i : i + 2]) for i in range(len(t) - 1)} for t in tokens]
    covered: set[str] = set()
    chosen: list[int] = []
    free = list(range(len(candidates)))
    for _ in range(k):
        gains = [len((grams[i] & set(kw)) - covered) for i in free]
        best = int(np.argmax(gains))  # first max = most confident among equals
        i = free.pop(best)
        chosen.append(int(candidates[i]))
        covered |= grams[i] & set(kw)
    return chosen


def _mmr(candidates: np.ndarray, V: sp.csr_matrix, relevance: np.ndarray, k: int, lam: float) -> list[int]:
    sim = (V @ V.T).toarray()
    chosen = [0]
    max_sim = sim[0].copy()
    for _ in range(k - 1):
        score = lam * relevance - (1 - lam) * max_sim
        score[chosen] = -np.inf
        j = int(np.argmax(score))
        chosen.append(j)
        max_sim = np.maximum(max_sim, sim[j])
    return [int(candidates[j]) for j in chosen]
