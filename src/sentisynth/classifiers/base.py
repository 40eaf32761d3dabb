"""The one interface every downstream classifier, teacher and guidance model implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class TextClassifier(Protocol):
    """Fit on texts and integer labels; predict class probabilities (rows sum to 1)."""

    n_classes: int

    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[int] | np.ndarray,
        sample_weight: np.ndarray | None = None,
        val_texts: Sequence[str] | None = None,
        val_labels: Sequence[int] | np.ndarray | None = None,
    ) -> "TextClassifier": ...

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...

    def predict(self, texts: Sequence[str]) -> np.ndarray: ...


def check_training_data(
    texts: Sequence[str], labels: Sequence[int] | np.ndarray, n_classes: int | None
) -> tuple[np.ndarray, int]:
    """Labels as an int array and the number of classes (given, or the largest label + 1); raises on an
    empty training set or texts and labels of different length."""
    labels = np.asarray(labels, dtype=int)
    if len(texts) == 0:
        raise ValueError("cannot fit a classifier on an empty training set")
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    return labels, int(labels.max()) + 1 if n_classes is None else n_classes
