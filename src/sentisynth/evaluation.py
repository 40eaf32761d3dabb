"""Metrics for one evaluation split: macro-F1 first, per-class numbers because minority classes matter."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sentisynth.utils import pyplot, save_figure


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, label_names: Sequence[str], prefix: str
) -> dict[str, float]:
    """Flat `/`-namespaced metrics: `<prefix>/macro_f1`, `<prefix>/f1/<class>`, ..."""
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support  # lazy: startup

    labels = list(range(len(label_names)))
    p, r, f, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    out = {
        f"{prefix}/macro_f1": float(
            f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
        ),
        f"{prefix}/accuracy": float(accuracy_score(y_true, y_pred)),
        f"{prefix}/weighted_f1": float(
            f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)
        ),
    }
    for i, name in enumerate(label_names):
        out[f"{prefix}/f1/{name}"] = float(f[i])
        out[f"{prefix}/precision/{name}"] = float(p[i])
        out[f"{prefix}/recall/{name}"] = float(r[i])
        out[f"{prefix}/support/{name}"] = int(support[i])
    return out


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(y_true, y_pred, labels=list(range(n_classes)))


MAX_LABELLED_CLASSES = 30


def _plot_confusion_summary(plt: Any, norm: np.ndarray, n: int, path: str | Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(8, 7))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xlabel(f"predicted (class id, {n} classes)")
    ax.set_ylabel("gold (class id)")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title(f"{title} (row-normalised; per-class counts in predictions.csv)".strip())
    return save_figure(fig, path)


def plot_confusion(cm: np.ndarray, label_names: Sequence[str], path: str | Path, title: str = "") -> Path:
    """Row-normalised confusion matrix as a PNG (counts in the cells). Above `MAX_LABELLED_CLASSES` classes a
    fixed-size heat map without names or counts (200 classes drew a 6 MB figure in 110 s)."""
    plt = pyplot()

    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    if len(label_names) > MAX_LABELLED_CLASSES:
        return _plot_confusion_summary(plt, norm, len(label_names), path, title)
    size = 1.2 + 0.9 * len(label_names)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(label_names)), label_names, rotation=45, ha="right")
    ax.set_yticks(range(len(label_names)), label_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(
                j, i, str(cm[i, j]), ha="center", va="center", color="white" if norm[i, j] > 0.5 else "black"
            )
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title(title)
    return save_figure(fig, path)


def read_test_predictions(path: str | Path) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    """A run's test rows from its `predictions.csv`: (label names, gold ids, predicted ids, texts)."""
    import pandas as pd

    frame = pd.read_csv(path, keep_default_na=False)
    names = [c.split("/", 1)[1] for c in frame.columns if c.startswith("prob/")]
    test = frame[frame["split"] == "test"]
    if not names or test.empty:
        raise ValueError(f"{path}: no test rows or no prob/<class> columns")
    ids = {n: i for i, n in enumerate(names)}
    gold = test["gold"].astype(str).map(ids).to_numpy()
    pred = test["predicted"].astype(str).map(ids).to_numpy()
    return names, gold.astype(int), pred.astype(int), test["text"].astype(str).tolist()


class TestSetMismatch(ValueError):
    """Two runs to be compared post by post were not scored on the same test posts."""


def check_same_test_set(
    reference: tuple[list[str], np.ndarray, list[str]],
    other: tuple[list[str], np.ndarray, list[str]],
    where: str,
) -> None:
    """Pairing is by position: the label names, gold labels and texts must match row for row, or this raises."""
    (names_a, gold_a, texts_a), (names_b, gold_b, texts_b) = reference, other
    if names_a != names_b:
        raise TestSetMismatch(f"{where}: label names differ ({names_a} vs {names_b})")
    if len(gold_a) != len(gold_b) or texts_a != texts_b or not np.array_equal(gold_a, gold_b):
        raise TestSetMismatch(
            f"{where}: test posts differ from the other runs' ({len(gold_b)} vs {len(gold_a)} "
            "rows, or different texts/gold labels at the same positions): cannot pair them"
        )
