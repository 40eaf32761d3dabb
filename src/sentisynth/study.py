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

from sentisynth.errors import DataError
from sentisynth.schema import check_config
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


ARM_KEYS = ("overrides", "augment_n", "classifiers")


@dataclass(frozen=True)
class Arm:
    """One arm of `study.arms`: its overrides, its `augment.n` axis (None: no axis) and its classifiers."""

    name: str
    overrides: list[str]
    axis: list[Any] | None
    classifiers: list[str] | None  # None: every classifier of `study.classifiers`


def parse_arm(study: dict[str, Any], name: str, spec: Any) -> Arm:
    """An arm is a list of overrides (it runs at `study.augment_n`) or `{overrides: [...], augment_n: [...],
    classifiers: [...]}`: its own axis (the `real` arm at 100, 200, 500, 1000 for the learning curve while the
    generating arms run at 1000 only) and, optionally, only some of the study's classifiers."""
    where = f"study.arms.{name}"
    if isinstance(spec, dict):
        unknown = sorted(set(spec) - set(ARM_KEYS))
        if unknown:
            raise DataError(
                f"{where}: unknown keys {unknown}; an arm is a list of overrides or {{{', '.join(ARM_KEYS)}}}"
            )
        overrides, axis = spec.get("overrides"), spec.get("augment_n", study.get("augment_n"))
        classifiers = spec.get("classifiers")
    else:
        overrides, axis, classifiers = spec, study.get("augment_n"), None
    overrides = [str(o) for o in overrides or []]
    if "augment=none" in overrides:
        axis = None  # seed only adds nothing, so it runs once (it is the n = 0 of every axis)
    if axis is not None and any(str(n) == "0" for n in axis):
        raise DataError(
            f"{where}.augment_n holds 0: seed only is the `none` arm ([augment=none]); leave 0 out"
        )
    unknown = sorted(set(map(str, classifiers or [])) - set(map(str, study["classifiers"])))
    if unknown:
        raise DataError(
            f"{where}.classifiers: {unknown} not in study.classifiers ({', '.join(study['classifiers'])})"
        )
    return Arm(
        name, overrides, list(axis) if axis else None, [str(c) for c in classifiers] if classifiers else None
    )


def plan_cells(study: dict[str, Any]) -> list[Cell]:
    """Cells in the order that fills the caches first: per seed and seed size, arms in config order.

    `study.augment_n: [200, 1000]` makes augment.n an axis for every arm (an arm may carry its own: `parse_arm`).
    `study.classifiers` maps a classifier config to `{seeds: all | [seeds], overrides: [...]}` (overrides that
    only make sense for that classifier, e.g. `classifier.epochs=3`) and optionally `generation_overrides`,
    applied to that classifier's generating-arm cells only (e.g. the loss weight of synthetic rows it was
    tuned with on validation, `augment.weight=0.25`).
    """
    arms = [parse_arm(study, str(name), spec) for name, spec in study["arms"].items()]
    cells = []
    for seed in study["seeds"]:
        for size in study["seed_sizes"]:
            for arm in arms:
                for n in arm.axis or [None]:
                    for clf, spec in study["classifiers"].items():
                        if arm.classifiers is not None and str(clf) not in arm.classifiers:
                            continue
                        cell = _cell(study, int(seed), size, arm.name, arm.overrides, n, clf, spec)
                        if cell is not None:
                            cells.append(cell)
    return cells


def _cell(
    study: dict[str, Any],
    seed: int,
    size: int | str,
    arm: str,
    arm_overrides: list[str],
    n: int | float | None,
    clf: str,
    spec: Any,
) -> Cell | None:
    """One cell's overrides (None when the classifier does not run on this seed, seed size or augment.n:
    `{seeds: [0], seed_sizes: [1000], augment_n: [1000]}` limits an expensive classifier to a slice)."""
    spec = spec if isinstance(spec, dict) else {"seeds": spec}
    for key, value in (("seeds", seed), ("seed_sizes", size), ("augment_n", n)):
        wanted = spec.get(key, "all")
        if wanted != "all" and value is not None and str(value) not in [str(v) for v in wanted]:
            return None
    overrides = (
        *[str(o) for o in study.get("overrides") or []],
        f"data.seed_size={size}",
        f"seed={seed}",
        f"classifier={clf}",
        *[str(o) for o in spec.get("overrides") or []],
        *arm_overrides,
    )
    if n is not None:
        overrides = (*overrides, f"augment.n={n}")
    if any(
        o.startswith("augment=synthetic") for o in arm_overrides
    ):  # generator/filter choices of generating arms; then the classifier's own (e.g. its augment.weight)
        overrides = (
            *overrides,
            *[str(o) for o in study.get("generation_overrides") or []],
            *[str(o) for o in spec.get("generation_overrides") or []],
        )
    name = f"{size}_{arm}" + (f"_n{n}" if n is not None else "") + f"_{clf}_seed{seed}"
    return Cell(name, overrides, arm, clf, size, seed, n)


def plan_summary(cells: list[Cell]) -> str:
    """Cells per arm and augment.n (seeds x seed sizes x classifiers), then every cell's name: what
    `study.plan_only=true` prints."""
    counts: dict[tuple[str, Any], list[Cell]] = {}
    for c in cells:
        counts.setdefault((c.arm, c.augment_n), []).append(c)
    lines = [f"{len(cells)} cells"]
    for (arm, n), part in counts.items():
        classifiers = sorted({c.classifier for c in part})
        lines.append(
            f"  {arm:<12} {'' if n is None else f'+{n}':>6}  {len(part):>3} ({', '.join(classifiers)})"
        )
    return "\n".join(lines + [c.name for c in cells])


def user_overrides() -> list[str]:
    """What the user passed on the command line, minus the experiment choice (cells must not recurse)."""
    from hydra.core.hydra_config import HydraConfig

    try:
        task = list(HydraConfig.get().overrides.task)
    except ValueError:  # not under @hydra.main
        return []
    return [o for o in task if not o.lstrip("+~").startswith(("experiment=", "study."))]


def compose_cell(
    config_name: str, overrides: list[str], output_dir: Path
) -> tuple[DictConfig, dict[str, Any]]:
    """The cell's config (without the `hydra` node) and its group choices (for the report)."""
    from hydra import compose

    cfg = compose(
        config_name=config_name,
        overrides=[*overrides, f"paths.output_dir={output_dir}"],
        return_hydra_config=True,
    )
    choices = to_plain(cfg.hydra.runtime.choices)
    with_hydra = OmegaConf.to_container(cfg, resolve=False)
    with_hydra.pop("hydra", None)
    cell = OmegaConf.create(with_hydra)
    check_config(cell)  # the arm's own overrides too (sentisynth.schema), before the cell's work
    return cell, choices


def write_hydra_dir(job_dir: Path, cfg: DictConfig, choices: dict[str, Any], overrides: list[str]) -> None:
    hydra_dir = job_dir / ".hydra"
    hydra_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(hydra_dir / "config.yaml", OmegaConf.to_yaml(cfg))
    atomic_write_text(
        hydra_dir / "hydra.yaml", OmegaConf.to_yaml({"hydra": {"runtime": {"choices": choices}}})
    )
    atomic_write_text(hydra_dir / "overrides.yaml", OmegaConf.to_yaml(list(overrides)))


def in_group(logger: DictConfig | None, group: str) -> DictConfig | None:
    """A study's runs (cells and report) grouped under its name in W&B, unless the user chose a group."""
    if logger is not None and "group" in logger and not logger.group:
        logger.group = group
    return logger


def run_study(cfg: DictConfig) -> dict[str, float]:
    """Run (or resume) every cell, then write the report. Returns counts of done/failed cells.

    With `hydra/launcher=<joblib | local_submitit | slurm>` the cells go through that Hydra launcher (job
    arrays on a cluster) instead of this process: first the per-seed-set work, then the classifier cells."""
    from sentisynth.cli import build
    from sentisynth.report import build_report

    study = to_plain(cfg.study)
    cells = plan_cells(study)
    if study.get("plan_only"):  # `study.plan_only=true`: the cells it would run, nothing run or written
        print(plan_summary(cells), flush=True)
        return {"study/cells": len(cells), "study/done": 0, "study/failed": 0}
    root = Path(study["dir"])
    root.mkdir(parents=True, exist_ok=True)
    study_name = str(study.get("name") or root.name)
    extra = user_overrides()
    status_path = root / "study_status.json"
    status = read_json(status_path) if status_path.is_file() else {}
    status.setdefault("cells", {})
    write_json(
        root / "study.json", {"study": study, "user_overrides": extra, "cells": [c.name for c in cells]}
    )
    todo = [c for c in cells if not (root / c.name / "metrics.json").is_file()]
    launcher = launcher_name()
    log.info(
        "study %s: %d cells, %d done, %d to run (%s) -> %s",
        study.get("name"),
        len(cells),
        len(cells) - len(todo),
        len(todo),
        f"launcher {launcher}" if launcher else "in this process",
        root,
    )
    t_study = time.perf_counter()
    if launcher and todo:
        failed = run_with_launcher(root, todo, extra, status, status_path)
    else:
        failed = run_in_process(study, root, cells, todo, extra, status, status_path)
    status["last_pass_s"] = round(time.perf_counter() - t_study, 1)
    write_json(status_path, status)
    done = sum(1 for c in cells if (root / c.name / "metrics.json").is_file())
    logger = in_group(OmegaConf.create(to_plain(cfg.logger)), study_name) if cfg.get("logger") else None
    report = build_report(root, tracker=build(logger)) if done else None  # tables + plots to the logger
    print(
        f"study {study.get('name')}: {done}/{len(cells)} cells done, {len(failed)} failed this pass; "
        f"report: {report}",
        flush=True,
    )
    if failed:
        raise RuntimeError(
            f"{len(failed)} study cells failed (see {status_path}): {', '.join(failed[:5])}"
            + (" ..." if len(failed) > 5 else "")
            + "; re-run the same command to retry them"
        )
    return {"study/cells": len(cells), "study/done": done, "study/failed": len(failed)}


def run_in_process(
    study: dict[str, Any],
    root: Path,
    cells: list[Cell],
    todo: list[Cell],
    extra: list[str],
    status: dict[str, Any],
    status_path: Path,
) -> list[str]:
    """The cells one after another in this process (a cell that trains with DDP gets its own process)."""
    failed = []
    bar = tqdm(
        total=len(cells), initial=len(cells) - len(todo), desc=f"study {study.get('name')}", unit="run"
    )
    for cell in todo:
        job_dir = root / cell.name
        overrides = [*cell.overrides, *extra]
        t0 = time.perf_counter()
        try:
            cell_cfg, choices = compose_cell(study.get("config_name", "train"), overrides, job_dir)
            in_group(cell_cfg.get("logger"), str(study.get("name") or root.name))
            write_hydra_dir(job_dir, cell_cfg, choices, overrides)
            write_cell_json(job_dir, cell)
            metrics = run_cell_here(cell_cfg, overrides, job_dir)
            status["cells"][cell.name] = {
                "status": "done",
                "seconds": round(time.perf_counter() - t0, 1),
                "test/macro_f1": metrics.get("test/macro_f1"),
            }
        except Exception as e:  # one failed cell must not lose the others: record it, go on, fail at the end
            log.error("cell %s failed: %s\n%s", cell.name, e, traceback.format_exc())
            status["cells"][cell.name] = {
                "status": "failed",
                "error": f"{type(e).__name__}: {e}",
                "seconds": round(time.perf_counter() - t0, 1),
            }
            failed.append(cell.name)
        write_json(status_path, status)
        bar.update(1)
        bar.set_postfix(last=cell.name, s=f"{time.perf_counter() - t0:.0f}")
    bar.close()
    return failed


def write_cell_json(job_dir: Path, cell: Cell) -> None:
    write_json(
        job_dir / "cell.json",
        {
            "arm": cell.arm,
            "classifier": cell.classifier,
            "seed_size": cell.seed_size,
            "seed": cell.seed,
            "augment_n": cell.augment_n,
        },
    )


def run_cell_here(cell_cfg: DictConfig, overrides: list[str], job_dir: Path) -> dict[str, float]:
    """`train.run` in this process; a cell whose trainer launches DDP ranks runs as `python train.py ...`
    instead, because Lightning starts the other ranks by re-running this process's command (the study)."""
    import subprocess
    import sys

    from sentisynth.distributed import check_launchable, launched_externally
    from sentisynth.train import run

    trainer = to_plain(cell_cfg.get("trainer")) or {}
    if str(trainer.get("strategy")) != "ddp" or trainer.get("devices") == 1 or launched_externally():
        return run(cell_cfg)
    check_launchable(trainer)
    from hydra.utils import get_original_cwd

    script = Path(sys.argv[0]).resolve()
    cmd = [sys.executable, str(script), *overrides, f"hydra.run.dir={job_dir}", "hydra.output_subdir=null"]
    log.info("cell %s trains with DDP: running %s", job_dir.name, " ".join(cmd))
    done = subprocess.run(cmd, cwd=get_original_cwd())
    if done.returncode != 0 or not (job_dir / "metrics.json").is_file():
        raise RuntimeError(f"the DDP cell process exited with {done.returncode}; see {job_dir}/train.log")
    return read_json(job_dir / "metrics.json")


# -- cells as Hydra launcher jobs (joblib, submitit: local processes or SLURM job arrays) -----------------


def launcher_name() -> str | None:
    """The `hydra/launcher` the user chose, or None for the default (cells run in this process)."""
    from hydra.core.hydra_config import HydraConfig

    try:
        choice = HydraConfig.get().runtime.choices.get("hydra/launcher")
    except ValueError:  # not under @hydra.main
        return None
    return None if choice in (None, "basic") else str(choice)


PREPARE = ".prepare"  # phase-1 jobs that fill a seed set's caches land in <study>/.prepare/<job>/


def fills_cache(cell: Cell) -> bool:
    """Whether the cell's arm builds a cache (teacher, pseudo corpus, generated set) that other cells read."""
    return any(o.startswith(("augment=pseudo", "augment=synthetic")) for o in cell.overrides)


def is_adaptive(cell: Cell) -> bool:
    """Whether the cell's arm generates with `guidance=adaptive` (its set depends on the cell's classifier)."""
    return any(o in ("guidance=adaptive", "augment=synthetic_adaptive") for o in cell.overrides)


def prepare_jobs(todo: list[Cell], extra: list[str]) -> list[tuple[str, list[str]]]:
    """One job per (seed, seed size, arm) whose augmentation fills a cache. The cells of an arm at every
    `augment.n` share it: the +200 cells draw from the +1000 set (`augment.generate_n`), the pseudo arm's
    corpus does not depend on n. (One job per augment.n made the second one wait on the first's lock.) An
    adaptive arm's set depends on the classifier too (its loop refits the cell's own classifier): one job per
    classifier."""
    jobs: dict[str, list[str]] = {}
    for cell in todo:
        if fills_cache(cell):
            clf = f"_{cell.classifier}" if is_adaptive(cell) else ""
            jobs.setdefault(
                f"{PREPARE}/{cell.seed_size}_{cell.arm}{clf}_seed{cell.seed}", [*cell.overrides, *extra]
            )
    return list(jobs.items())


def phase_one(todo: list[Cell], extra: list[str]) -> list[tuple[str, list[str]]]:
    """The first phase, as a work queue for the launcher's workers, in the order that keeps them busy: one
    generating job first (it also builds the generator's one-time pretraining, the longest single step: 13
    min for `tiny` on 2 cores), then the teacher-only jobs (pseudo arms: the teachers the generating jobs
    filter with), then the cells that read no cache (`none`, `real`), then the other generating jobs, which
    wait on the pretraining's lock only if the other workers ran out of work before it ended."""
    prep = prepare_jobs(todo, extra)
    generating = [j for j in prep if any(o.startswith("augment=synthetic") for o in j[1])]
    others = [j for j in prep if j not in generating]
    free = [(c.name, [*c.overrides, *extra]) for c in todo if not fills_cache(c)]
    return generating[:1] + others + free + generating[1:]


def study_task(cfg: DictConfig) -> dict[str, float] | None:
    """A launcher job: a phase-1 job under `.prepare/` builds the arm's augmentation only (its caches, no
    classifier); any other job is one cell, written like a multirun job (metrics.json, .hydra/)."""
    from hydra.core.hydra_config import HydraConfig

    from sentisynth.cli import register_resolvers, run_dir_of
    from sentisynth.train import augmented_data, run

    register_resolvers()
    if str(HydraConfig.get().sweep.subdir).startswith(f"{PREPARE}/"):
        augmented_data(cfg, run_dir_of(cfg))
        return None
    return run(cfg)


def run_with_launcher(
    root: Path, todo: list[Cell], extra: list[str], status: dict[str, Any], status_path: Path
) -> list[str]:
    """Two launches through the chosen launcher: the caches (and the cells that need none), then the cells that
    read the caches. A failed job is recorded and retried by the next pass."""
    for cell in todo:
        write_cell_json(root / cell.name, cell)
    first = phase_one(todo, extra)
    n_prep = sum(name.startswith(f"{PREPARE}/") for name, _ in first)
    log.info(
        "study: phase 1, %d per-seed-set jobs (teachers, pseudo corpora, generated sets) and %d cells "
        "that need none of them",
        n_prep,
        len(first) - n_prep,
    )
    errors: dict[str, Any] = {}
    for (name, _), ret in zip(first, launch(study_task, first, root)):
        if ret is not None and name.startswith(f"{PREPARE}/"):
            status.setdefault("prepare", {})[name.removeprefix(f"{PREPARE}/")] = ret
        errors[name] = ret
    write_json(status_path, status)
    second = [c for c in todo if fills_cache(c)]
    jobs = [(c.name, [*c.overrides, *extra]) for c in second]
    errors.update(zip([c.name for c in second], launch(study_task, jobs, root) if jobs else []))
    failed = []
    for cell in todo:
        ok = (root / cell.name / "metrics.json").is_file()
        status["cells"][cell.name] = (
            {"status": "done"} if ok else {"status": "failed", **(errors.get(cell.name) or {})}
        )
        if not ok:
            failed.append(cell.name)
    write_json(status_path, status)
    return failed


def launch(task: Any, jobs: list[tuple[str, list[str]]], sweep_dir: Path) -> list[dict[str, Any] | None]:
    """Run `task` for each (name, overrides) through the Hydra launcher of this run: job `name` composes like a
    multirun job and lands in `<sweep_dir>/<name>/`. Returns None per job that succeeded, else its error."""
    import logging as logging_

    from hydra._internal.callbacks import Callbacks
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.plugins import Plugins
    from hydra.core.utils import JobStatus
    from hydra.types import HydraContext, RunMode

    hc = HydraConfig.get()
    loader = GlobalHydra.instance().config_loader()
    master = loader.load_configuration(
        hc.job.config_name,
        [*hc.overrides.hydra, f"hydra.sweep.dir={sweep_dir}", *hc.overrides.task],
        RunMode.MULTIRUN,
    )
    context = HydraContext(config_loader=loader, callbacks=Callbacks(master))
    launcher = Plugins.instance().instantiate_launcher(
        hydra_context=context, task_function=task, config=master
    )
    root_log = logging_.getLogger()
    handlers, level = root_log.handlers[:], root_log.level  # launchers reconfigure logging; keep the study's
    try:
        returns = launcher.launch(
            [[*ov, f"hydra.sweep.subdir={name}"] for name, ov in jobs], initial_job_idx=0
        )
    except (
        Exception
    ) as e:  # a launcher-level failure (a killed SLURM job): every job of this phase is retried
        log.error("launcher failed: %s\n%s", e, traceback.format_exc())
        return [{"error": f"{type(e).__name__}: {e}"} for _ in jobs]
    finally:
        root_log.handlers[:] = handlers
        root_log.setLevel(level)
    out = []
    for (name, _), ret in zip(jobs, returns):
        err = None if ret.status == JobStatus.COMPLETED else ret._return_value
        if err is not None:
            log.error("job %s failed: %s: %s", name, type(err).__name__, err)
        out.append(None if err is None else {"error": f"{type(err).__name__}: {err}"})
    return out
