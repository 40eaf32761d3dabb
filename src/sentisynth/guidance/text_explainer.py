"""Model-agnostic word attributions for classifiers that only offer `predict_proba(texts)` (transformers).

shap's Partition explainer with a Text masker over tweet-aware word tokens (so attributions land on
the same words as the TF-IDF route: hashtags, emoji, `@user`), run on a budgeted, seeded sample of
posts per class. What is explained: each class's predicted probability. Aggregation as elsewhere: a
word's score for class c is its mean SHAP value over the explained posts of class c containing it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from sentisynth.guidance.attributions import WordAttributions
from sentisynth.text import TOKEN_RE, tweet_tokenize


class TweetTokenizer:
    """The minimal tokenizer interface shap's Text masker needs (token strings + character offsets)."""

    def __call__(self, s: str, return_offsets_mapping: bool = True) -> dict[str, list]:
        spans = [m.span() for m in TOKEN_RE.finditer(s)]
        out: dict[str, list] = {"input_ids": [s[a:b] for a, b in spans]}
        if return_offsets_mapping:
            out["offset_mapping"] = spans
        return out


def text_word_attributions(
    predict_proba: Any,
    texts: Sequence[str],
    labels: np.ndarray,
    n_classes: int,
    vocabulary: dict[str, int],
    budget: int = 200,
    max_evals: int = 300,
    seed: int = 0,
) -> WordAttributions:
    """Partition-SHAP on up to `budget` posts per class; values summed onto `vocabulary` columns."""
    import shap

    masker = shap.maskers.Text(TweetTokenizer(), mask_token="...", collapse_mask_token=True)
    explainer = shap.Explainer(
        lambda batch: np.asarray(predict_proba(list(batch))), masker, algorithm="partition", seed=seed
    )
    rng = np.random.default_rng(seed)
    terms = np.empty(len(vocabulary), dtype=object)
    for t, j in vocabulary.items():
        terms[j] = t
    sums = np.zeros((n_classes, len(vocabulary)))
    counts = np.zeros((n_classes, len(vocabulary)), dtype=np.int64)
    for c in range(n_classes):
        rows = np.flatnonzero(labels == c)
        if rows.size > budget:
            rows = np.sort(rng.choice(rows, budget, replace=False))
        for r in tqdm(rows, desc=f"text SHAP class {c}", leave=False, disable=rows.size < 50):
            expl = explainer([texts[r]], max_evals=max_evals, silent=True)
            values = np.asarray(expl.values[0])  # (n_tokens, n_classes)
            word_vals: dict[int, float] = {}
            for tok, v in zip(expl.data[0], values[:, c]):
                for w in tweet_tokenize(tok):
                    j = vocabulary.get(w)
                    if j is not None:
                        word_vals[j] = word_vals.get(j, 0.0) + float(v)
            for j, v in word_vals.items():  # one occurrence per post, however often the word repeats
                sums[c, j] += v
                counts[c, j] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / counts
    mean[counts == 0] = np.nan
    return WordAttributions(
        terms=terms,
        shap=mean,
        count=counts,
        explains=f"per-class probability, shap Partition explainer over tweet word tokens, "
        f"<= {budget} posts per class, max_evals={max_evals}",
    )
