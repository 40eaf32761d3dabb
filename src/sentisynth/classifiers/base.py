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
