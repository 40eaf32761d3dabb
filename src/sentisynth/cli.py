"""Glue between Hydra entry points and the library: resolvers and one-line errors for bad input."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from omegaconf import DictConfig, OmegaConf

from sentisynth.data import DataError

log = logging.getLogger("sentisynth")


def register_resolvers() -> None:
    """`${sentisynth.pid:}` keeps run directories unique across processes started in the same instant."""
    OmegaConf.register_new_resolver("sentisynth.pid", lambda: str(os.getpid()), replace=True)


def run_task(task: Callable[[DictConfig], dict[str, float]], cfg: DictConfig) -> float | None:
    """Run a task; bad input exits non-zero with one line saying what and where (no traceback)."""
    try:
        metrics = task(cfg)
    except (DataError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)
    key = cfg.get("optimized_metric")
    if key and isinstance(metrics, dict):
        if key not in metrics:
            raise KeyError(f"optimized_metric {key!r} is not among the run's metrics: {sorted(metrics)[:10]}...")
        return float(metrics[key])
    return None


