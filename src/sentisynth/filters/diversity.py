"""Budget filter: when a class has more good samples than its budget, keep a diverse subset.

Maximal marginal relevance per class: greedily pick argmax lambda * relevance - (1 - lambda) *
max cosine similarity to the already picked samples. Relevance is the teacher's confidence when
the teacher filter ran before, else 1. Vectors: TF-IDF (default) or MiniLM mean-pooled embeddings.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from sentisynth.classifiers.embeddings import embed_texts
from sentisynth.filters.base import FilterContext, Sample, class_key, reject

__all__ = ["DiversityFilter", "embed_texts", "mmr_select", "tfidf_vectors"]


def tfidf_vectors(texts: Sequence[str]) -> np.ndarray | object:
    """L2-normalised sparse TF-IDF rows (tweet-aware word 1-2 grams)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from sentisynth.text import tweet_tokenize

    vec = TfidfVectorizer(
        tokenizer=tweet_tokenize, token_pattern=None, lowercase=False, ngram_range=(1, 2), sublinear_tf=True
    )
    return vec.fit_transform(list(texts)).tocsr()


def mmr_select(X: object, relevance: np.ndarray, k: int, lambda_: float = 0.7) -> list[int]:
    """Indices of k rows chosen by MMR over unit-norm rows of X (dense or sparse); O(n k)."""
    n = len(relevance)
    if k >= n:
        return list(range(n))
    chosen: list[int] = []
    max_sim = np.zeros(n)
    free = np.ones(n, dtype=bool)
    for _ in range(k):
        score = np.where(free, lambda_ * relevance - (1 - lambda_) * max_sim, -np.inf)
        j = int(np.argmax(score))
        chosen.append(j)
        free[j] = False
        row = X[j].toarray().ravel() if hasattr(X, "toarray") else np.asarray(X[j]).ravel()
        sim = np.asarray(X @ row).ravel()
        max_sim = np.maximum(max_sim, sim)
    return chosen


class DiversityFilter:
    """Per class, cut down to the budget (`FilterContext.budget_per_class` or `budget`) with MMR."""

    name = "diversity"

    def __init__(
        self,
        method: str = "tfidf",
        lambda_: float = 0.7,
        budget: int | None = None,
        model_path: str | None = None,
    ) -> None:
        if method not in ("tfidf", "embedding"):
            raise ValueError(f"diversity.method must be tfidf or embedding, got {method!r}")
        self.method, self.lambda_, self.budget, self.model_path = method, lambda_, budget, model_path

    def apply(self, samples: list[Sample], ctx: FilterContext) -> tuple[list[Sample], list[Sample]]:
        groups: dict[int, list[int]] = defaultdict(list)
        for i, s in enumerate(samples):
            groups[int(s["label"])].append(i)
        keep = np.zeros(len(samples), dtype=bool)
        budgets: dict[int, int] = {}
        for label, rows in groups.items():
            budget = ctx.budget_for(label, class_key(samples[rows[0]], ctx.label_names))
            budget = self.budget if budget is None else budget
            if budget is None or len(rows) <= budget:
                keep[rows] = True
                continue
            budgets[label] = budget
            texts = [str(samples[i]["text"]) for i in rows]
            X = tfidf_vectors(texts) if self.method == "tfidf" else embed_texts(texts, self.model_path)
            rel = np.array([float(samples[i].get("teacher", {}).get("confidence", 1.0)) for i in rows])
            for j in mmr_select(X, rel, budget, self.lambda_):
                keep[rows[j]] = True
        kept, dropped = [], []
        for i, s in enumerate(samples):
            if keep[i]:
                kept.append(s)
            else:
                dropped.append(
                    reject(
                        s,
                        "diversity_over_budget",
                        f"class over its budget of {budgets[int(s['label'])]}: not among the MMR picks",
                    )
                )
        return kept, dropped
