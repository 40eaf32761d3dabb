"""SHAP attributions of a TF-IDF classifier, aggregated per class over the posts that contain a word.

What is explained: for logistic regression and the linear SVM, each class's *margin* (the log-odds
logit of multinomial LR, the one-vs-rest SVM score) as returned by `TfidfClassifier.decision_scores`;
for XGBoost, each class's raw margin (the softmax logit), via TreeExplainer's tree-path-dependent
algorithm (xgboost's own C++ `pred_contribs`).

Why aggregate over occurrences only: on a linear TF-IDF model the SHAP value of an *absent* word is
`-coef * mean`, so a plain mean over all posts rewards words whose absence pushes towards a class
("sad" would become an anger keyword). Averaging over the posts of class c that contain the word
measures what the word does when it is there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm


@dataclass(frozen=True)
class WordAttributions:
    """Per-class, per-word aggregates over the word columns of the TF-IDF matrix.

    `shap[c, j]`: mean SHAP value of word j for class c over the posts of class c containing j
    (NaN where j never occurs in class c); `count[c, j]`: how many such posts.
    """

    terms: np.ndarray  # (n_words,) vocabulary, without the `word__` prefix
    shap: np.ndarray  # (n_classes, n_words)
    count: np.ndarray  # (n_classes, n_words) int
    explains: str


def linear_weights(clf: Any) -> tuple[np.ndarray, np.ndarray]:
    """(W, b) with shape (n_classes, n_features), (n_classes,) such that margins = X @ W.T + b.

    Matches `TfidfClassifier.decision_scores`: in the binary case sklearn keeps one margin s, which
    that method spreads as (-s/2, +s/2); classes absent from training get zero weights.
    """
    model = clf.model
    coef = np.asarray(model.coef_.toarray() if sp.issparse(model.coef_) else model.coef_, dtype=np.float64)
    intercept = np.atleast_1d(np.asarray(model.intercept_, dtype=np.float64))
    classes = np.asarray(model.classes_)
    if coef.shape[0] == 1:  # binary
        coef = np.vstack([-coef[0] / 2.0, coef[0] / 2.0])
        intercept = np.array([-intercept[0] / 2.0, intercept[0] / 2.0])
    W = np.zeros((clf.n_classes, coef.shape[1]))
    b = np.zeros(clf.n_classes)
    W[classes] = coef
    b[classes] = intercept
    return W, b


def linear_shap_values(W: np.ndarray, X: sp.spmatrix | np.ndarray, background_mean: np.ndarray) -> np.ndarray:
    """Exact interventional SHAP of a linear model: phi[i, j, c] = W[c, j] * (x_ij - mean_j). Dense; for small X."""
    Xd = X.toarray() if sp.issparse(X) else np.asarray(X)
    return (Xd - background_mean)[:, :, None] * W.T[None, :, :]


def _occurrence_sums(X: sp.csr_matrix, labels: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per class: sum of TF-IDF weights and number of posts containing each column."""
    sums = np.zeros((n_classes, X.shape[1]))
    counts = np.zeros((n_classes, X.shape[1]), dtype=np.int64)
    for c in range(n_classes):
        Xc = X[labels == c]
        sums[c] = np.asarray(Xc.sum(axis=0)).ravel()
        counts[c] = np.diff(Xc.tocsc().indptr)
    return sums, counts


def linear_word_attributions(
    clf: Any, X: sp.csr_matrix, labels: np.ndarray, background: sp.csr_matrix
) -> WordAttributions:
    """Closed form: mean over occurrences of W[c,j](x_ij - mu_j) = W[c,j](mean_occ_cj - mu_j); fully sparse."""
    W, _ = linear_weights(clf)
    words = clf.word_slice
    mu = np.asarray(background[:, words].mean(axis=0)).ravel()
    sums, counts = _occurrence_sums(X[:, words], labels, clf.n_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_occ = sums / counts
    shap = W[:, words] * (mean_occ - mu[None, :])
    shap[counts == 0] = np.nan
    return WordAttributions(
        terms=_strip(clf.feature_names[words]),
        shap=shap,
        count=counts,
        explains=f"{clf.model_name} per-class margin (decision_function), exact linear SHAP, "
        f"interventional, background = {background.shape[0]} seed posts",
    )


def tree_word_attributions(
    clf: Any, X: sp.csr_matrix, labels: np.ndarray, batch_size: int = 256
) -> WordAttributions:
    """TreeExplainer (tree-path-dependent) on xgboost, in row batches to bound memory (dense n x F x K)."""
    import shap

    explainer = shap.TreeExplainer(clf.model)
    words = clf.word_slice
    n_words = words.stop - words.start
    present = np.asarray(clf._xgb_classes)
    sums = np.zeros((clf.n_classes, n_words))
    counts = np.zeros((clf.n_classes, n_words), dtype=np.int64)
    X32 = X.astype(np.float32).tocsr()
    for start in tqdm(
        range(0, X.shape[0], batch_size), desc="TreeSHAP", leave=False, disable=X.shape[0] <= batch_size
    ):
        chunk = X32[start : start + batch_size]
        phi = np.asarray(explainer.shap_values(chunk))  # (b, F, K) or (b, F) for binary
        if phi.ndim == 2:  # binary xgboost: one logit for present[1]; spread like the linear case
            phi = np.stack([-phi / 2.0, phi / 2.0], axis=-1)
        coo = chunk[:, words].tocoo()
        lab = labels[start + coo.row]
        for k, c in enumerate(present):
            m = lab == c
            np.add.at(sums[c], coo.col[m], phi[coo.row[m], words.start + coo.col[m], k])
            np.add.at(counts[c], coo.col[m], 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        shap_mean = sums / counts
    shap_mean[counts == 0] = np.nan
    return WordAttributions(
        terms=_strip(clf.feature_names[words]),
        shap=shap_mean,
        count=counts,
        explains="xgb per-class raw margin (softmax logit), TreeExplainer tree_path_dependent",
    )


def _strip(names: np.ndarray) -> np.ndarray:
    return np.array([n.split("__", 1)[1] if n.startswith("word__") else n for n in names], dtype=object)
