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
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from sentisynth.data import DataError
from sentisynth.tracking import Tracker, session
from sentisynth.utils import to_plain

log = logging.getLogger("sentisynth")


def sweep_group() -> str | None:
    """The multirun's name (its sweep directory, after the experiment when one is chosen) inside a
    multirun job, else None: W&B groups a sweep's runs under it."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    hc = HydraConfig.get()
    name = os.path.basename(os.path.normpath(str(hc.sweep.dir)))
    experiment = hc.runtime.choices.get("experiment")
    return f"{experiment}_{name}" if experiment and experiment not in name else name


def register_resolvers() -> None:
    """`${sentisynth.pid:}` keeps run directories unique across processes started in the same instant;
    `${sentisynth.sweep_group:}` names a multirun's W&B group."""
    OmegaConf.register_new_resolver("sentisynth.pid", lambda: str(os.getpid()), replace=True)
    OmegaConf.register_new_resolver("sentisynth.sweep_group", sweep_group, replace=True)


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


def open_tracker(cfg: DictConfig, name: str, job_type: str | None = None) -> AbstractContextManager[Tracker]:
    """The run's logger (`cfg.logger`), started with the resolved config: `with open_tracker(cfg, out.name,
    "train") as tracker:` around the whole job, so every Lightning Trainer in it logs its curves there live,
    and the run is finished whatever happens. `logger: null` (a stage nested in a run) logs into the
    enclosing run, or nowhere."""
    return session(build(cfg.get("logger")), to_plain(cfg), name=name, job_type=job_type)


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
