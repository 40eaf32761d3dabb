"""Experiment tracking behind one tiny interface: W&B (offline by default), TensorBoard (local), CSV, or nothing.

Metric names are `/`-namespaced (`test/macro_f1`). Nothing here reads or logs credentials; W&B
stays offline unless the user asks for `mode=online` (then wandb uses its own login).
"""

from __future__ import annotations

import csv
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class Tracker:
    """No-op base: every method is safe to call whatever the backend. Run one with `session` below."""

    def start(self, config: dict[str, Any], name: str | None = None, job_type: str | None = None) -> None: ...

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None: ...

    def log_table(self, key: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None: ...

    def log_image(self, key: str, path: str | os.PathLike) -> None: ...

    def log_artifact(self, path: str | os.PathLike, name: str, kind: str = "dataset") -> None: ...

    def lightning_logger(self, prefix: str) -> Any:
        """The Lightning logger that writes a Trainer's curves into this tracker (False: none)."""
        return False

    def finish(self) -> None: ...


class NullTracker(Tracker):
    pass


_ACTIVE: list[Tracker] = []


def active() -> Tracker:
    """The tracker of the run in progress (a NullTracker outside any run)."""
    return _ACTIVE[-1] if _ACTIVE else NullTracker()


@contextmanager
def session(
    tracker: Tracker | None, config: dict[str, Any], name: str | None = None, job_type: str | None = None
) -> Iterator[Tracker]:
    """Track a whole run: started before any work, so every Lightning Trainer in it logs its curves live
    (`lightning_logger`), finished at the end even on error. `tracker=None` is a stage nested in a run
    (generation inside a train arm): it logs into the enclosing run instead of starting its own."""
    if tracker is None:
        yield active()
        return
    tracker.start(config, name=name, job_type=job_type)
    _ACTIVE.append(tracker)
    try:
        yield tracker
    finally:
        _ACTIVE.remove(tracker)
        tracker.finish()


def stage_logger(prefix: str, trainer_settings: dict[str, Any] | None = None) -> Any:
    """Logger for a Trainer of stage `prefix` (classifier, teacher, generator, ...) in the active run.
    None under a spawning strategy: the logger would be pickled into workers that start runs of their own."""
    if "spawn" in str((trainer_settings or {}).get("strategy", "")):
        return False
    return active().lightning_logger(prefix)


class CSVTracker(Tracker):
    """Appends `step,key,value` rows to `<dir>/metrics.csv`; tables go to `<dir>/tables/<key>.csv`."""

    def __init__(self, dir: str | os.PathLike = ".") -> None:
        self.dir = Path(dir)

    def start(self, config: dict[str, Any], name: str | None = None, job_type: str | None = None) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)

    def lightning_logger(self, prefix: str) -> Any:
        """Lightning's CSVLogger: `<dir>/lightning/<prefix>/version_<k>/metrics.csv` per Trainer."""
        from pytorch_lightning.loggers import CSVLogger

        return CSVLogger(save_dir=str(self.dir), name=f"lightning/{prefix}")

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        path = self.dir / "metrics.csv"
        new = not path.exists()
        with open(path, "a", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            if new:
                w.writerow(["step", "key", "value"])
            for k, v in metrics.items():
                w.writerow(["" if step is None else step, k, v])

    def log_table(self, key: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        path = self.dir / "tables" / (key.replace("/", "_") + ".csv")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(columns)
            w.writerows(rows)


class TensorBoardTracker(Tracker):
    """TensorBoard event files under `<dir>`, viewed offline with `tensorboard --logdir <run or sweep dir>`:
    the run's metrics as scalars (`<dir>/run/`), tables as markdown text, plots as images, and each
    Lightning Trainer's curves through Lightning's TensorBoardLogger (`<dir>/<prefix>/version_<k>/`)."""

    def __init__(self, dir: str | os.PathLike = "tensorboard") -> None:
        self.dir = Path(dir)
        self.writer: Any = None

    def start(self, config: dict[str, Any], name: str | None = None, job_type: str | None = None) -> None:
        import yaml
        from torch.utils.tensorboard import SummaryWriter

        self.dir.mkdir(parents=True, exist_ok=True)
        self.writer = SummaryWriter(log_dir=str(self.dir / "run"))
        text = yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
        self.writer.add_text("config", "    " + text.replace("\n", "\n    "))  # indented: a code block
        log.info("TensorBoard run %s (%s): tensorboard --logdir %s", name, job_type, self.dir)

    def lightning_logger(self, prefix: str) -> Any:
        from pytorch_lightning.loggers import TensorBoardLogger

        return TensorBoardLogger(save_dir=str(self.dir), name=prefix, default_hp_metric=False)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if self.writer is not None:
            for k, v in metrics.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    self.writer.add_scalar(k, float(v), global_step=step or 0)
            self.writer.flush()

    def log_table(self, key: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if self.writer is not None:
            from sentisynth.utils import markdown_table

            self.writer.add_text(key, markdown_table(list(columns), rows, str))

    def log_image(self, key: str, path: str | os.PathLike) -> None:
        if self.writer is not None:
            import numpy as np
            from PIL import Image

            with Image.open(path) as image:
                self.writer.add_image(key, np.asarray(image.convert("RGB")), dataformats="HWC")

    def log_artifact(self, path: str | os.PathLike, name: str, kind: str = "dataset") -> None:
        if self.writer is not None:  # TensorBoard has no artifact store: record where the file is
            self.writer.add_text(f"artifacts/{name}", f"{kind}: {Path(path).resolve()}")

    def finish(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


LAUNCH_INPUTS = "wandb.sdk.launch.inputs.internal"


def skip_unstaged_launch_inputs(run_cls: Any) -> None:
    """`wandb.init` imports W&B Launch (1.1 s of pydantic models: a third of the default job's startup,
    benchmarks/bench_startup.py) only to apply job inputs staged in this process, and inputs can only have
    been staged by code that imported that module already. So: apply them when it is imported, else skip
    the import. Same behaviour, 1.1 s less; a no-op on a wandb without that method."""
    original = getattr(run_cls, "_detect_and_apply_job_inputs", None)
    if original is None or getattr(original, "skips_unstaged", False):
        return

    def detect_and_apply_job_inputs(self: Any) -> None:
        if LAUNCH_INPUTS in sys.modules:
            original(self)

    detect_and_apply_job_inputs.skips_unstaged = True  # type: ignore[attr-defined]
    run_cls._detect_and_apply_job_inputs = detect_and_apply_job_inputs


class WandbTracker(Tracker):
    """Weights & Biases run; `mode="offline"` (default) writes under `<dir>/wandb/` and sends nothing."""

    def __init__(
        self,
        project: str = "sentisynth",
        entity: str | None = None,
        mode: str = "offline",
        group: str | None = None,
        tags: Sequence[str] | None = None,
        dir: str | os.PathLike = ".",
        job_type: str | None = None,
    ) -> None:
        if mode not in ("offline", "online", "disabled"):
            raise ValueError(f"logger.mode must be offline, online or disabled, got {mode!r}")
        self.project, self.entity, self.mode, self.group = project, entity, mode, group
        self.job_type = job_type
        self.tags = list(tags or [])
        self.dir = Path(dir)
        self.run: Any = None

    def start(self, config: dict[str, Any], name: str | None = None, job_type: str | None = None) -> None:
        if self.mode != "online":
            # wandb's error reporting probes its server over HTTPS even in offline mode: keep offline offline
            os.environ.setdefault("WANDB_ERROR_REPORTING", "false")
        import wandb

        skip_unstaged_launch_inputs(wandb.sdk.wandb_run.Run)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=self.project,
            entity=self.entity,
            mode=self.mode,
            group=self.group,
            job_type=self.job_type or job_type,
            tags=self.tags,
            name=name,
            dir=str(self.dir),
            config=config,
            settings=wandb.Settings(silent=True, console="off", x_disable_stats=True),
        )
        log.info("W&B run %s (%s) in %s", self.run.id, self.mode, self.run.dir)

    def lightning_logger(self, prefix: str) -> Any:
        """Lightning's WandbLogger on this very run: `<prefix>/train_loss` per step, `<prefix>/val_*` per
        epoch, against `trainer/global_step` (each Trainer counts from 0)."""
        if self.run is None:
            return False
        from pytorch_lightning.loggers import WandbLogger

        logger = WandbLogger(experiment=self.run, prefix=prefix)
        logger.LOGGER_JOIN_CHAR = "/"  # teacher/train_loss, not teacher-train_loss
        self.run.define_metric("trainer/global_step")
        self.run.define_metric(f"{prefix}/*", step_metric="trainer/global_step", step_sync=True)
        return logger

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if self.run is not None:
            self.run.log(dict(metrics), step=step)
            for k, v in metrics.items():
                self.run.summary[k] = v

    def log_table(self, key: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if self.run is not None:
            import wandb

            self.run.log({key: wandb.Table(columns=list(columns), data=[list(r) for r in rows])})

    def log_image(self, key: str, path: str | os.PathLike) -> None:
        if self.run is not None:
            import wandb

            self.run.log({key: wandb.Image(str(path))})

    def log_artifact(self, path: str | os.PathLike, name: str, kind: str = "dataset") -> None:
        if self.run is not None:
            import wandb

            art = wandb.Artifact(name, type=kind)
            art.add_file(str(path))
            self.run.log_artifact(art)

    def finish(self) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None
