"""Python API for notebooks and scripts: the same configs and code as `train.py`/`generate.py`, no Hydra run.

    from sentisynth import api
    cfg = api.compose(["data.seed_size=250", "augment=real", "augment.n=200"])   # conf/train.yaml + overrides
    run = api.run_arm(cfg)                          # -> RunResult: metrics, predictions, saved model
    gen = api.generate(["generator=tiny", "guidance=shap_bias"])    # -> synthetic set + dataset card
    g = api.guidance(["data.seed_size=250"])       # -> run dir with guidance.json
    api.load_run("outputs/train/runs/...").metrics

A composed config is an ordinary `DictConfig`; `paths.output_dir` (which Hydra would set) becomes a fresh
directory under `outputs/<task>/runs/`, or the `output_dir` you pass.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from sentisynth.utils import read_json


def config_dir() -> Path:
    """`conf/` of this checkout (or `SENTISYNTH_CONF_DIR`)."""
    env = os.environ.get("SENTISYNTH_CONF_DIR")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "conf"
    if not (path / "train.yaml").is_file():
        raise FileNotFoundError(
            f"no sentisynth config directory at {path} (set SENTISYNTH_CONF_DIR=<repo>/conf)"
        )
    return path


def compose(
    overrides: Sequence[str] = (), config_name: str = "train", output_dir: str | Path | None = None
) -> DictConfig:
    """The config `python <config_name>.py <overrides>` would run, with the paths Hydra would have set
    (`cli.with_run_paths`: the working directory, and `output_dir` or a fresh `outputs/<task>/runs/...`)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.initialize import get_gh_backup, restore_gh_from_backup

    from sentisynth.cli import register_resolvers, with_run_paths

    register_resolvers()
    backup = get_gh_backup()  # works inside a Hydra app too: its global state comes back afterwards
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(config_dir()), version_base="1.3", job_name=config_name):
            cfg = hydra_compose(config_name=config_name, overrides=list(overrides))
    finally:
        restore_gh_from_backup(backup)
    if output_dir is not None:
        cfg.paths.output_dir = str(output_dir)
    return with_run_paths(cfg)


def as_config(
    cfg_or_overrides: DictConfig | Sequence[str] | None,
    config_name: str,
    output_dir: str | Path | None,
    extra: Sequence[str] = (),
) -> DictConfig:
    from sentisynth.schema import check_config

    if isinstance(cfg_or_overrides, DictConfig):
        if output_dir is not None:
            cfg_or_overrides.paths.output_dir = str(output_dir)
        cfg = cfg_or_overrides
    else:
        cfg = compose([*extra, *(cfg_or_overrides or [])], config_name, output_dir)
    check_config(cfg)  # every option's type and range (sentisynth.schema): one ConfigError before any work
    return cfg


def save_config(cfg: DictConfig) -> Path:
    """The resolved config in `<run dir>/.hydra/config.yaml`, as a Hydra run leaves it (for `load_run`)."""
    from sentisynth.utils import atomic_write_text

    out = Path(cfg.paths.output_dir)
    (out / ".hydra").mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / ".hydra" / "config.yaml", OmegaConf.to_yaml(cfg))
    return out


@dataclass
class RunResult:
    """What a run left in its directory: config, metrics, timings; tables and models on demand."""

    dir: Path
    config: DictConfig | None
    metrics: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)

    def predictions(self) -> pd.DataFrame:
        return pd.read_csv(self.dir / "predictions.csv")

    def synthetic(self) -> pd.DataFrame:
        """The synthetic set with its provenance columns (`synthetic.parquet`, else `synthetic.jsonl`)."""
        if (self.dir / "synthetic.parquet").is_file():
            return pd.read_parquet(self.dir / "synthetic.parquet")
        return pd.read_json(self.dir / "synthetic.jsonl", lines=True)

    def guidance(self) -> dict[str, Any]:
        return read_json(self.dir / "guidance.json")

    def filter_report(self) -> dict[str, Any]:
        return read_json(self.dir / "filter_report.json")

    def model(self, which: str = "classifier") -> Any:
        """The saved classifier (or `teacher`) as a `sentisynth.predict.Predictor`."""
        from sentisynth.predict import load_predictor

        return load_predictor(self.dir, which)


def load_run(run_dir: str | Path) -> RunResult:
    """Read a run directory (from `train.py`, `generate.py` or this API)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory not found: {run_dir}")
    cfg_path = run_dir / ".hydra" / "config.yaml"
    cfg = OmegaConf.load(cfg_path) if cfg_path.is_file() else None

    def read(name: str) -> dict[str, Any]:
        return read_json(run_dir / name) if (run_dir / name).is_file() else {}

    return RunResult(run_dir, cfg, read("metrics.json"), read("timings.json"))


def run_arm(cfg: DictConfig | Sequence[str] | None = None, output_dir: str | Path | None = None) -> RunResult:
    """One arm of `train.py` (a config from `compose`, or overrides for it); returns its results."""
    from sentisynth.train import run

    cfg = as_config(cfg, "train", output_dir)
    save_config(cfg)
    run(cfg)
    return load_run(cfg.paths.output_dir)


def generate(
    cfg: DictConfig | Sequence[str] | None = None, output_dir: str | Path | None = None
) -> RunResult:
    """`generate.py`: a synthetic set (jsonl, Parquet, HF dataset, card) in the run directory."""
    from sentisynth.generation.stage import run_generate_stage

    cfg = as_config(cfg, "generate", output_dir, extra=["stage=generate"])
    save_config(cfg)
    run_generate_stage(cfg)
    return load_run(cfg.paths.output_dir)


def guidance(
    cfg: DictConfig | Sequence[str] | None = None, output_dir: str | Path | None = None
) -> RunResult:
    """`generate.py stage=guidance`: SHAP keywords and exemplars (`RunResult.guidance()`)."""
    from sentisynth.guidance import run_guidance_stage

    cfg = as_config(cfg, "generate", output_dir, extra=["stage=guidance"])
    save_config(cfg)
    run_guidance_stage(cfg)
    return load_run(cfg.paths.output_dir)
