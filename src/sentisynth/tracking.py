"""Experiment tracking behind one tiny interface: W&B (offline by default), CSV, or nothing.

Metric names are `/`-namespaced (`test/macro_f1`). Nothing here reads or logs credentials; W&B
stays offline unless the user asks for `mode=online` (then wandb uses its own login).
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class Tracker:
    """No-op base: every method is safe to call whatever the backend.

    A context manager: `with tracker.session(config, name) as t: t.log_metrics(...)` finishes the run
    whatever happens inside.
    """

    def start(self, config: dict[str, Any], name: str | None = None) -> None: ...

    def session(self, config: dict[str, Any], name: str | None = None) -> Tracker:
        self.start(config, name=name)
        return self

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None: ...

    def log_table(self, key: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None: ...

    def log_image(self, key: str, path: str | os.PathLike) -> None: ...

    def log_artifact(self, path: str | os.PathLike, name: str, kind: str = "dataset") -> None: ...

    def finish(self) -> None: ...


class NullTracker(Tracker):
    pass


class CSVTracker(Tracker):
    """Appends `step,key,value` rows to `<dir>/metrics.csv`; tables go to `<dir>/tables/<key>.csv`."""

    def __init__(self, dir: str | os.PathLike = ".") -> None:
        self.dir = Path(dir)

    def start(self, config: dict[str, Any], name: str | None = None) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)

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
    ) -> None:
        if mode not in ("offline", "online", "disabled"):
            raise ValueError(f"logger.mode must be offline, online or disabled, got {mode!r}")
        self.project, self.entity, self.mode, self.group = project, entity, mode, group
        self.tags = list(tags or [])
        self.dir = Path(dir)
        self.run: Any = None

    def start(self, config: dict[str, Any], name: str | None = None) -> None:
        if self.mode != "online":
            # wandb's error reporting probes its server over HTTPS even in offline mode: keep offline offline
            os.environ.setdefault("WANDB_ERROR_REPORTING", "false")
        import wandb

        self.dir.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=self.project,
            entity=self.entity,
            mode=self.mode,
            group=self.group,
            tags=self.tags,
            name=name,
            dir=str(self.dir),
            config=config,
            settings=wandb.Settings(silent=True, console="off", x_disable_stats=True),
        )
        log.info("W&B run %s (%s) in %s", self.run.id, self.mode, self.run.dir)

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
