"""Lightning DDP glue shared by the classifier, the teacher and generator fine-tuning.

`trainer=ddp` is Lightning's `strategy=ddp`: rank 0 re-runs the command for ranks 1..N-1 (for a Hydra
script: the same overrides with `hydra.run.dir` pinned), or srun/torchrun start them. Every rank then runs
the whole script and makes the same decisions (train, or load from a cache rank 0 filled before a
barrier); only rank 0 writes files. Batches are cut so that N ranks see the same global batches as one
process (each rank a slice), which keeps DDP results equal to a single-process run up to floating-point
and dropout noise.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler


def trainer_settings(trainer_cfg: Any, defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """Trainer keyword arguments from `cfg.trainer`: unknown keys dropped, `precision: auto` resolved
    (bf16-mixed on a bf16 GPU, else 32-true), the strategy dropped for one device."""
    import pytorch_lightning as pl
    from omegaconf import DictConfig, OmegaConf

    from sentisynth import quiet

    quiet.apply()  # every Trainer the project builds: no tips or per-step hints unless verbose
    settings = dict(defaults or {})
    if trainer_cfg is not None:
        user = (
            OmegaConf.to_container(trainer_cfg, resolve=True)
            if isinstance(trainer_cfg, DictConfig)
            else trainer_cfg
        )
        settings.update({k: v for k, v in dict(user).items() if not str(k).startswith("_")})
    allowed = set(inspect.signature(pl.Trainer.__init__).parameters)
    settings = {k: v for k, v in settings.items() if k in allowed}
    if settings.get("precision") == "auto":
        gpu = settings.get("accelerator", "auto") in ("auto", "gpu", "cuda") and torch.cuda.is_available()
        settings["precision"] = "bf16-mixed" if gpu and torch.cuda.is_bf16_supported() else "32-true"
    if settings.get("devices", "auto") == 1 and settings.get("num_nodes", 1) == 1:
        settings.pop("strategy", None)
    else:
        check_launchable(settings)
    return settings


def launched_externally() -> bool:
    """True when this process is a rank started by Lightning, torchrun or srun (no launching needed)."""
    if "LOCAL_RANK" in os.environ or "TORCHELASTIC_RUN_ID" in os.environ:
        return True
    return int(os.environ.get("SLURM_NTASKS") or 1) > 1


def check_launchable(settings: dict[str, Any]) -> None:
    """Lightning launches DDP ranks by re-running the command line. Inside a Hydra multirun job (joblib,
    submitit, the basic launcher) that command is the whole sweep or a launcher's worker: refuse with a
    message instead of re-running it. Under srun/torchrun the ranks already exist."""
    if str(settings.get("strategy", "")) != "ddp" or launched_externally():
        return
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        raise RuntimeError(
            "trainer=ddp with several devices cannot start its ranks from a Hydra multirun job: Lightning would "
            "re-run the whole sweep. Run it as a single `python train.py ... trainer=ddp` command, or on SLURM "
            "with hydra.launcher.tasks_per_node=<devices> (srun starts the ranks)."
        )


def local_threads(default: int | None = None) -> int:
    """CPU threads for this process: the configured count, OMP_NUM_THREADS (Lightning sets it per DDP rank
    to cores / ranks), else every core."""
    return (
        default
        or int(os.environ.get("SENTISYNTH_NUM_THREADS") or 0)
        or int(os.environ.get("OMP_NUM_THREADS") or 0)
        or os.cpu_count()
        or 1
    )


class RankSlices(Sampler[list[int]]):
    """This rank's slice (`rows[rank::world]`) of every global batch, so N ranks together take exactly the
    batches one process would. Batches with fewer rows than ranks are skipped on every rank (DDP needs the
    same number of steps everywhere); with one rank nothing changes."""

    def __init__(self, batches: Any, rank: int = 0, world: int = 1) -> None:
        self.batches, self.rank, self.world = batches, rank, world

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batches:
            if len(batch) >= self.world:
                yield list(batch)[self.rank :: self.world]


class ShuffledBatches(Sampler[list[int]]):
    """Seeded shuffled batches, a new order each epoch (seed, epoch): the same on every rank."""

    def __init__(self, n: int, batch_size: int, seed: int, done: int = 0) -> None:
        """`done`: batches already trained (a resumed run): start at that epoch and skip its first
        `done % len` batches once, so the data after a resume is the data an uninterrupted run would see."""
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.epoch, self.skip = divmod(done, len(self)) if n else (0, 0)

    def __len__(self) -> int:
        return (self.n + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[list[int]]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        self.epoch, skip, self.skip = self.epoch + 1, self.skip, 0
        for s in range(skip * self.batch_size, self.n, self.batch_size):
            yield order[s : s + self.batch_size].tolist()


def eval_batches(n: int, batch_size: int, rank: int = 0, world: int = 1) -> list[list[int]]:
    """Evaluation rows of this rank (every world-th row, no padding, so metrics synced over ranks count each
    row once), in batches. Ranks may get different batch counts: evaluation has no per-step collective."""
    rows = list(range(rank, n, world))
    return [rows[s : s + batch_size] for s in range(0, len(rows), batch_size)]


def rank_and_world(trainer: Any) -> tuple[int, int]:
    """(global rank, world size) of a Lightning trainer; (0, 1) without one."""
    if trainer is None:
        return 0, 1
    return int(trainer.global_rank), int(trainer.world_size)


def loader(
    dataset: Any, batch_sampler: Sampler[list[int]] | Sequence[list[int]], collate: Any, num_workers: int = 0
) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(
        dataset, batch_sampler=batch_sampler, collate_fn=collate, num_workers=num_workers
    )
