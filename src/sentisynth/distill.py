"""Distillation glue (SentiSynth): synthetic rows train on the teacher's soft labels.

The loss lives with the Lightning module (`distillation_loss`: alpha * T^2 * KL + (1 - alpha) * CE,
beta on synthetic rows); `TransformerClassifier.fit(..., soft_labels=, n_seed=)` uses it. This module
turns filtered samples (which carry `teacher.probs`) into the soft-label matrix an augmentation hands
to `fit`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from sentisynth.classifiers.lightning_module import distillation_loss, temper

log = logging.getLogger(__name__)

__all__ = ["distillation_loss", "soft_labels_from_samples", "temper"]


def soft_labels_from_samples(samples: Sequence[dict], n_classes: int) -> np.ndarray:
    """(n, n_classes) teacher probabilities; a sample without teacher scores gets its one-hot label."""
    out = np.zeros((len(samples), n_classes), dtype=np.float32)
    missing = 0
    for i, s in enumerate(samples):
        probs = (s.get("teacher") or {}).get("probs")
        if probs is not None and len(probs) == n_classes:
            row = np.asarray(probs, dtype=np.float32)
            out[i] = row / max(float(row.sum()), 1e-12)
        else:
            out[i, int(s["label"])] = 1.0
            missing += 1
    if missing:
        log.warning(
            "soft labels: %d of %d samples have no teacher probabilities; using their hard label",
            missing,
            len(samples),
        )
    return out
