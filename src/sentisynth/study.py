"""A study: every (seed, seed size, arm, classifier) cell of an experiment as one `train.py` run.

`python train.py experiment=offline_tweeteval` composes a `study` block; instead of one run, `run_study`
composes each cell's config from the same `conf/` (the cell's overrides + the study's common ones + what
the user passed on the command line), runs it in-process with `sentisynth.train.run`, and writes it in
the layout of a Hydra multirun (`<dir>/<cell>/metrics.json` and `.hydra/`), so `sentisynth.report`
reads it like any sweep. Why not a plain Hydra multirun: a grid cannot say "the transformer on seed 0
only", and a multirun restarts from zero when interrupted. Here a cell with a `metrics.json` is done and
skipped, so re-running the command resumes; teachers, generators and generated sets are shared between
cells through the content-addressed caches under `paths.cache_dir`.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from sentisynth.utils import atomic_write_text, read_json, to_plain, write_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cell:
    """One run of the study: where it goes and the overrides that compose its config."""

    name: str
    overrides: tuple[str, ...]
    arm: str
    classifier: str
    seed_size: int | str
    seed: int
    augment_n: int | float | None = None  # the study's augment.n axis value (None: not an axis, or seed only)


def plan_cells(study: dict[str, Any]) -> list[Cell]:
    """Cells in the order that fills the caches first: per seed and seed size, arms in config order.

    `study.classifiers` maps a classifier config to `{seeds: all | [seeds], overrides: [...]}` (overrides that
    only make sense for that classifier, e.g. `classifier.epochs=3`).
    """
    cells = []
    for seed in study["seeds"]:
        for size in study["seed_sizes"]:
            for arm, arm_overrides in study["arms"].items():
                arm_overrides = [str(o) for o in arm_overrides or []]
                # `study.augment_n: [200, 1000]` makes augment.n an axis; seed only adds nothing, so it runs once
                axis = study.get("augment_n") if "augment=none" not in arm_overrides else None
                for n in axis or [None]:
                    for clf, spec in study["classifiers"].items():
                        cell = _cell(study, int(seed), size, arm, arm_overrides, n, clf, spec)
                        if cell is not None:
                            cells.append(cell)
    return cells


def _cell(study: dict[str, Any], seed: int, size: int | str, arm: str, arm_overrides: list[str],
          n: int | float | None, clf: str, spec: Any) -> Cell | None:
    """One cell's overrides (None when the classifier does not run on this seed)."""
    spec = spec if isinstance(spec, dict) else {"seeds": spec}
    seeds = spec.get("seeds", "all")
    if seeds != "all" and seed not in [int(s) for s in seeds]:
        return None
    overrides = (*[str(o) for o in study.get("overrides") or []], f"data.seed_size={size}", f"seed={seed}",
                 f"classifier={clf}", *[str(o) for o in spec.get("overrides") or []], *arm_overrides)
    if n is not None:
        overrides = (*overrides, f"augment.n={n}")
    if any(o.startswith("augment=synthetic") for o in arm_overrides):  # generator/filter choices of generating arms
        overrides = (*overrides, *[str(o) for o in study.get("generation_overrides") or []])
    name = f"{size}_{arm}" + (f"_n{n}" if n is not None else "") + f"_{clf}_seed{seed}"
    return Cell(name, overrides, arm, clf, size, seed, n)


def user_overrides() -> list[str]:
    """What the user passed on the command line, minus the experiment choice (cells must not recurse)."""
    from hydra.core.hydra_config import HydraConfig

    try:
        task = list(HydraConfig.get().overrides.task)
    except ValueError:  # not under @hydra.main
        return []
    return [o for o in task if not o.lstrip("+~").startswith(("experiment=", "study."))]


def compose_cell(config_name: str, overrides: list[str], output_dir: Path) -> tuple[DictConfig, dict[str, Any]]:
    """The cell's config (without the `hydra` node) and its group choices (for the report)."""
    from hydra import compose

    cfg = compose(config_name=config_name, overrides=[*overrides, f"paths.output_dir={output_dir}"],
                  return_hydra_config=True)
    choices = to_plain(cfg.hydra.runtime.choices)
    with_hydra = OmegaConf.to_container(cfg, resolve=False)
    with_hydra.pop("hydra", None)
    return OmegaConf.create(with_hydra), choices


def write_hydra_dir(job_dir: Path, cfg: DictConfig, choices: dict[str, Any], overrides: list[str]) -> None:
    hydra_dir = job_dir / ".hydra"
    hydra_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(hydra_dir / "config.yaml", OmegaConf.to_yaml(cfg))
    atomic_write_text(hydra_dir / "hydra.yaml", OmegaConf.to_yaml({"hydra": {"runtime": {"choices": choices}}}))
    atomic_write_text(hydra_dir / "overrides.yaml", OmegaConf.to_yaml(list(overrides)))


def in_group(logger: DictConfig | None, group: str) -> DictConfig | None:
    """A study's runs (cells and report) grouped under its name in W&B, unless the user chose a group."""
    if logger is not None and "group" in logger and not logger.group:
        logger.group = group
    return logger


def run_study(cfg: DictConfig) -> dict[str, float]:
    """Run (or resume) every cell, then write the report. Returns counts of done/failed cells."""
    from sentisynth.cli import build
    from sentisynth.report import build_report
    from sentisynth.train import run

    study = to_plain(cfg.study)
    root = Path(study["dir"])
    root.mkdir(parents=True, exist_ok=True)
    cells = plan_cells(study)
    study_name = str(study.get("name") or root.name)
    extra = user_overrides()
    status_path = root / "study_status.json"
    status = read_json(status_path) if status_path.is_file() else {}
    status.setdefault("cells", {})
    write_json(root / "study.json", {"study": study, "user_overrides": extra, "cells": [c.name for c in cells]})
    todo = [c for c in cells if not (root / c.name / "metrics.json").is_file()]
    log.info("study %s: %d cells, %d done, %d to run -> %s", study.get("name"), len(cells), len(cells) - len(todo),
             len(todo), root)
    failed = []
    t_study = time.perf_counter()
    bar = tqdm(total=len(cells), initial=len(cells) - len(todo), desc=f"study {study.get('name')}", unit="run")
    for cell in todo:
        job_dir = root / cell.name
        overrides = [*cell.overrides, *extra]
        t0 = time.perf_counter()
        try:
            cell_cfg, choices = compose_cell(study.get("config_name", "train"), overrides, job_dir)
            in_group(cell_cfg.get("logger"), study_name)
            write_hydra_dir(job_dir, cell_cfg, choices, overrides)
            write_json(job_dir / "cell.json", {"arm": cell.arm, "classifier": cell.classifier,
                                               "seed_size": cell.seed_size, "seed": cell.seed,
                                               "augment_n": cell.augment_n})
            metrics = run(cell_cfg)
            status["cells"][cell.name] = {"status": "done", "seconds": round(time.perf_counter() - t0, 1),
                                          "test/macro_f1": metrics.get("test/macro_f1")}
        except Exception as e:  # one failed cell must not lose the others: record it, go on, fail at the end
            log.error("cell %s failed: %s\n%s", cell.name, e, traceback.format_exc())
            status["cells"][cell.name] = {"status": "failed", "error": f"{type(e).__name__}: {e}",
                                          "seconds": round(time.perf_counter() - t0, 1)}
            failed.append(cell.name)
        write_json(status_path, status)
        bar.update(1)
        bar.set_postfix(last=cell.name, s=f"{time.perf_counter() - t0:.0f}")
    bar.close()
    status["last_pass_s"] = round(time.perf_counter() - t_study, 1)
    write_json(status_path, status)
    done = sum(1 for c in cells if (root / c.name / "metrics.json").is_file())
    logger = in_group(OmegaConf.create(to_plain(cfg.logger)), study_name) if cfg.get("logger") else None
    report = build_report(root, tracker=build(logger)) if done else None  # tables + plots to the logger
    print(f"study {study.get('name')}: {done}/{len(cells)} cells done, {len(failed)} failed this pass; "
          f"report: {report}", flush=True)
    if failed:
        raise RuntimeError(f"{len(failed)} study cells failed (see {status_path}): {', '.join(failed[:5])}"
                           + (" ..." if len(failed) > 5 else "") + "; re-run the same command to retry them")
    return {"study/cells": len(cells), "study/done": done, "study/failed": len(failed)}

