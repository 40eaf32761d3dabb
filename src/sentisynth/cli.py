"""Glue between Hydra and the library: resolvers, `build`, run directories, one-line errors for bad input.

Stages (`train.run`, `run_generate_stage`, `run_guidance_stage`) take a composed config; they are called by
the Hydra mains, by the study runner, and in-process by tests and the Python API. `with_run_paths` makes a
config composed outside a Hydra run usable: there `${hydra:...}` in `paths` cannot resolve.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TypeVar

from hydra.errors import InstantiationException
from hydra.experimental.callback import Callback
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from sentisynth.errors import ConfigError, DataError, RunStopped
from sentisynth.schema import check_config
from sentisynth.tracking import NullTracker, Tracker, session
from sentisynth.utils import is_rank_zero, to_plain

T = TypeVar("T")

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


def precheck_overrides(config_dir: str | os.PathLike, config_name: str, argv: Sequence[str]) -> None:
    """Before Hydra composes: an unknown option of a config group (`generator=gpt3`) or `+group=` for a group
    the script already has gives one `error:` line and exit code 2 (Hydra's own messages span several
    lines and, for `+`, do not say what to type instead). Anything else is left to Hydra."""
    import yaml

    root = Path(config_dir)
    primary = yaml.safe_load((root / f"{config_name}.yaml").read_text(encoding="utf-8")).get("defaults", [])
    own = {k.split()[-1] for d in primary if isinstance(d, dict) for k in d}
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, value = arg.split("=", 1)
        group = key.lstrip("+")
        if any(c in group for c in "@./~") or not (root / group).is_dir() or "(" in value:
            continue
        options = sorted(p.stem for p in (root / group).glob("*.yaml"))
        unknown = [v for v in value.split(",") if v not in options and v != "null"]
        if unknown:
            fail(f"{group}={unknown[0]}: no such option; choose from {', '.join(options)} (conf/{group}/)")
        if key.startswith("+") and group in own:
            fail(
                f"{arg}: {group} is already a group of {config_name}.py; select it with {group}={value} (no +)"
            )


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def register_resolvers() -> None:
    """`${sentisynth.pid:}` keeps run directories unique across processes started in the same instant;
    `${sentisynth.sweep_group:}` names a multirun's W&B group; `${sentisynth.options:group}` lists a group."""
    OmegaConf.register_new_resolver("sentisynth.pid", lambda: str(os.getpid()), replace=True)
    OmegaConf.register_new_resolver("sentisynth.sweep_group", sweep_group, replace=True)
    OmegaConf.register_new_resolver("sentisynth.options", group_options, replace=True)


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
    default_out = Path(
        "outputs",
        str(cfg.get("task_name", "run")),
        "runs",
        f"{time.strftime('%Y-%m-%d_%H-%M-%S')}-{time.time_ns() // 1000 % 1_000_000:06d}_{os.getpid()}",
    )
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
    enclosing run, or nowhere. DDP ranks other than 0 get a no-op tracker: one run, not one per rank."""
    tracker = build(cfg.get("logger")) if is_rank_zero() else NullTracker()
    return session(tracker, to_plain(cfg), name=name, job_type=job_type)


def tracked_job(cfg: DictConfig, job_type: str, job: Callable[[DictConfig, Path, Tracker], T]) -> T:
    """Run `job(cfg, run_dir, tracker)` inside the run's tracker session (train, generate, ... entry points)."""
    out = run_dir_of(cfg)
    with open_tracker(cfg, out.name, job_type=job_type) as tracker:
        return job(cfg, out, tracker)


def group_options(group: str) -> str:
    """The options of a config group on Hydra's search path (for the --help templates)."""
    from hydra.core.global_hydra import GlobalHydra

    return " | ".join(GlobalHydra.instance().config_loader().get_group_options(group))


GENERATION_GROUPS = ("generator", "guidance", "filters")


def task_overrides() -> list[str]:
    """The command line's overrides of the running Hydra job ([] outside one)."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def augment_choice() -> str:
    from hydra.core.hydra_config import HydraConfig

    return str(HydraConfig.get().runtime.choices.get("augment")) if HydraConfig.initialized() else "this arm"


def check_generation_choices(cfg: DictConfig) -> None:
    """train.py: `generator=`, `guidance=`, `filters=` act only in an arm that generates (augment=synthetic*
    without a path). Choosing one elsewhere is an error, not a warning: the run would be the seed-only (or
    file) baseline while its config and W&B record say a generator was used, and a sweep would compare it
    as if it were a synthetic arm."""
    augment = cfg.get("augment") or {}
    block = augment.get("generate") if "generate" in augment else None
    for key in GENERATION_GROUPS if block is not None else ():
        if key in block and not OmegaConf.is_dict(block[key]):
            raise ConfigError(
                f"augment.generate.{key}={block[key]!r} is not a {key} config: choose one with "
                f"{key}={block[key]} (options in conf/{key}/)"
            )
    if block is not None and not augment.get("path"):
        return
    chosen = [
        o
        for o in task_overrides()
        if o.lstrip("+~").split("=")[0].split("@")[0].split(".")[0] in GENERATION_GROUPS
    ]
    if chosen:
        why = (
            "augment.path reads a finished set"
            if block is not None
            else f"augment={augment_choice()} does not generate"
        )
        raise ConfigError(
            f"{chosen[0]} has no effect: {why}; use augment=synthetic (or synthetic_naive, "
            "synthetic_shap) without augment.path to generate, or drop it"
        )


NO_SPACE = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


def unwritable(e: OSError, run_dir: str | None = None) -> str | None:
    """The one-line message for a file we may not or cannot write (read-only run or cache dir, a full disk, a
    file-size limit, a vanished directory), else None. Writes are atomic and finished work is cached, so
    rerunning resumes."""
    where = e.filename or (f"a file under {run_dir}" if run_dir else "a file")
    reason = (e.strerror or os.strerror(e.errno or 0)).lower()
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write {where}: {reason} (is the run directory or paths.cache_dir read-only?)"
    if e.errno in NO_SPACE:
        return (
            f"cannot write {where}: {reason} (disk full or a file-size limit); free space and run the same "
            "command again: it resumes from the finished, cached work"
        )
    if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.EIO):
        return (
            f"cannot write {where}: {reason} (was a directory removed or a disk unmounted while running?); "
            "run the same command again: it resumes from the finished, cached work"
        )
    return None


def ensure_writable(directory: str | os.PathLike, option: str) -> None:
    """Stop with one line, before any work, when `directory` cannot be created or written."""
    import tempfile

    try:
        os.makedirs(directory, exist_ok=True)
        tempfile.TemporaryFile(dir=directory).close()
    except OSError as e:
        fail(f"{option}={directory} cannot be written: {e.strerror or type(e).__name__}")


class CheckDirectories(Callback):
    """Hydra callback: a read-only run or sweep directory is one line (exit 2), not Hydra's traceback."""

    def on_run_start(self, config: DictConfig, **_: Any) -> None:
        ensure_writable(config.hydra.run.dir, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **_: Any) -> None:
        ensure_writable(config.hydra.sweep.dir, "hydra.sweep.dir")


def _run_dir_or_none(cfg: DictConfig) -> str | None:
    try:
        return OmegaConf.select(cfg, "paths.output_dir", default=None)
    except Exception:  # noqa: BLE001 - only for naming the directory in a message
        return None


def run_task(
    task: Callable[[DictConfig], dict[str, float]],
    cfg: DictConfig,
    checks: Sequence[Callable[[DictConfig], None]] = (),
) -> float | None:
    """Run a task after its config checks; bad input exits non-zero with one line saying what and where."""
    from sentisynth import quiet

    quiet.configure(bool(cfg.get("verbose", False)))  # Lightning tips, per-step hints: only when verbose
    cache_dir = OmegaConf.select(cfg, "paths.cache_dir")
    if cache_dir:
        ensure_writable(cache_dir, "paths.cache_dir")
    try:
        check_config(cfg)  # every option's type and range (sentisynth.schema), before any work
        for check in checks:
            check(cfg)
        metrics = task(cfg)
    except (DataError, FileNotFoundError, ConfigError) as e:
        fail(str(e))
    except RunStopped as e:
        print(f"stopped: {e}", file=sys.stderr, flush=True)
        sys.exit(e.exit_code)
    except OSError as e:
        message = unwritable(e, _run_dir_or_none(cfg))
        if message is None:
            raise
        fail(message)
    key = cfg.get("optimized_metric")
    if not is_rank_zero():  # DDP ranks 1..N-1 write nothing and report nothing
        return None
    if key and isinstance(metrics, dict):
        if "study/cells" in metrics:  # a study returns cell counts, not an objective: nothing to optimise
            return None
        if key not in metrics:
            raise KeyError(
                f"optimized_metric {key!r} is not among the run's metrics: {sorted(metrics)[:10]}..."
            )
        return float(metrics[key])
    return None
