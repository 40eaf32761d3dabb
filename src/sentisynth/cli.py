"""Glue between Hydra and the library: resolvers, `build`, run directories, one-line errors for bad input.

Stages (`train.run`, `run_generate_stage`, `run_guidance_stage`) take a composed config; they are called by
the Hydra mains, by the study runner, and in-process by tests and the Python API. `with_run_paths` makes a
config composed outside a Hydra run usable: there `${hydra:...}` in `paths` cannot resolve.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from sentisynth.data import DataError
from sentisynth.tracking import NullTracker, Tracker
from sentisynth.utils import to_plain

log = logging.getLogger("sentisynth")


def register_resolvers() -> None:
    """`${sentisynth.pid:}` keeps run directories unique across processes started in the same instant."""
    OmegaConf.register_new_resolver("sentisynth.pid", lambda: str(os.getpid()), replace=True)


def build(node: DictConfig | None, **kwargs: Any) -> Any:
    """`hydra.utils.instantiate`, but our own input errors surface as themselves, not wrapped."""
    if node is None:
        return None
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as e:
        cause = e.__cause__
        while cause is not None and not isinstance(cause, (DataError, FileNotFoundError)):
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        raise


def with_run_paths(cfg: DictConfig, output_dir: str | os.PathLike | None = None) -> DictConfig:
    """Outside a Hydra run, fill `paths.root_dir` (the working directory) and `paths.output_dir` (`output_dir`,
    else `outputs/<task_name>/runs/<time>-<microseconds>_<pid>`, as conf/hydra names them) where they still point at `${hydra:...}`; values set
    explicitly are kept. Inside a Hydra run, `cfg` as is. Changes `cfg` in place and returns it."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized() or "paths" not in cfg:
        return cfg
    raw = OmegaConf.to_container(cfg.paths, resolve=False)
    default_out = Path("outputs", str(cfg.get("task_name", "run")), "runs",
                      f"{time.strftime('%Y-%m-%d_%H-%M-%S')}-{time.time_ns() // 1000 % 1_000_000:06d}_{os.getpid()}")
    fill = {"root_dir": os.getcwd(), "output_dir": str(output_dir or default_out)}
    with open_dict(cfg):
        for key, value in fill.items():
            if key not in raw or "${hydra:" in str(raw[key]):
                cfg.paths[key] = value
    return cfg


def run_dir_of(cfg: DictConfig) -> Path:
    """The run's output directory (`paths.output_dir`), created; works inside and outside a Hydra run."""
    out = Path(with_run_paths(cfg).paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out


def open_tracker(cfg: DictConfig, name: str) -> Tracker:
    """The run's logger (`cfg.logger`; none: a no-op one), started with the resolved config. Use it as
    `with open_tracker(cfg, out.name) as tracker:` so the run is finished whatever happens."""
    tracker: Tracker = build(cfg.get("logger")) or NullTracker()
    return tracker.session(to_plain(cfg), name=name)


def run_task(task: Callable[[DictConfig], dict[str, float]], cfg: DictConfig) -> float | None:
    """Run a task; bad input exits non-zero with one line saying what and where (no traceback)."""
    try:
        metrics = task(cfg)
    except (DataError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)
    key = cfg.get("optimized_metric")
    if key and isinstance(metrics, dict):
        if "study/cells" in metrics:  # a study returns cell counts, not an objective: nothing to optimise
            return None
        if key not in metrics:
            raise KeyError(f"optimized_metric {key!r} is not among the run's metrics: {sorted(metrics)[:10]}...")
        return float(metrics[key])
    return None
