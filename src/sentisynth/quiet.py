"""Quiet logs: Lightning's tips and info lines, its per-step warnings and third-party deprecation notices are
hidden unless the run is verbose (`verbose=true` in train.py / generate.py, or SENTISYNTH_VERBOSE=1).

A training log should show what the project did (counts, metrics, where files went), not "💡 Tip: try
litlogger" and a DataLoader hint once per Trainer. Every Trainer the project builds goes through
`distributed.trainer_settings`, which calls `apply()`; the entry points call `configure(cfg.verbose)` first.
Our own warnings (module `sentisynth...`) are always shown.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

# Lightning's per-Trainer hints that say nothing about this project's runs (it sizes its own loaders)
NOISY_MESSAGES = (
    r".*does not have many workers.*",
    r".*number of training batches.*smaller than the logging interval.*",
    r".*LeafSpec.*",
    r".*litlogger.*",
    r".*litmodels.*",
    r".*Checkpoint directory .* exists and is not empty.*",
    r".*`tensorboardX` has been removed as a dependency.*",
    r".*You defined a `validation_step` but have no `val_dataloader`.*",
    r".*GPU available but not used.*",
)
DEPRECATIONS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)
# Lightning logs its tips ("💡 Tip: ...") and "GPU available: ..." lines at INFO through these loggers
INFO_LOGGERS = (
    "pytorch_lightning.utilities.rank_zero",
    "lightning_fabric.utilities.rank_zero",
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
)

_STATE: dict[str, bool | None] = {"verbose": None}


def is_verbose() -> bool:
    """`configure`'s choice, else SENTISYNTH_VERBOSE (1/true), else quiet."""
    if _STATE["verbose"] is not None:
        return bool(_STATE["verbose"])
    return os.environ.get("SENTISYNTH_VERBOSE", "").lower() in ("1", "true", "yes")


def configure(verbose: bool | None) -> None:
    """Set the process's mode (None: back to the environment's) and apply it now."""
    _STATE["verbose"] = None if verbose is None else bool(verbose)
    apply()


def apply() -> None:
    """Install (quiet) or remove (verbose) the filters; idempotent, cheap, safe to call before every Trainer."""
    verbose = is_verbose()
    for name in INFO_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.WARNING)
    if verbose:
        _remove_filters()
        return
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # read when transformers is first imported
    for category in DEPRECATIONS:
        warnings.filterwarnings("ignore", category=category)
    for message in NOISY_MESSAGES:
        warnings.filterwarnings("ignore", message=message)
    if "lightning_fabric" in sys.modules:  # not imported here: entry points call this before importing torch
        from lightning_fabric.utilities.warnings import PossibleUserWarning

        warnings.filterwarnings("ignore", category=PossibleUserWarning)
    for category in DEPRECATIONS:  # inserted last, so first in the list: our own notices stay visible
        warnings.filterwarnings("default", category=category, module=r"sentisynth(\.|$)")


def _ours(entry: tuple) -> bool:
    action, message, category, module, _ = entry
    text = getattr(message, "pattern", message) or ""
    if action == "ignore" and text in NOISY_MESSAGES:
        return True
    silenced = category in DEPRECATIONS or category.__name__ == "PossibleUserWarning"
    ours = module is None or getattr(module, "pattern", module) == r"sentisynth(\.|$)"
    return silenced and not text and ours and action in ("ignore", "default")


def _remove_filters() -> None:
    """Verbose after quiet (a test, a notebook): drop the filters `apply` installed, nothing else."""
    warnings.filters[:] = [f for f in warnings.filters if not _ours(f)]
    warnings.filterwarnings(
        "default", category=DeprecationWarning, module=r"sentisynth(\.|$)"
    )  # resets caches
