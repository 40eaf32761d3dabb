"""`stage=generate`'s entry point: the generation pipeline, or the adaptive loop for `guidance=adaptive`.

A module of its own so that `adaptive` (which reuses the pipeline's steps) and `pipeline` never import
each other."""

from __future__ import annotations

from omegaconf import DictConfig

from sentisynth.cli import tracked_job
from sentisynth.generation import adaptive, pipeline


def run_generate_stage(cfg: DictConfig) -> dict[str, float]:
    """Generate the synthetic dataset of one config; returns flat metrics (also in metrics.json). With
    `preview=N`: a quick look at N posts per class (cached models only)."""
    if cfg.get("preview"):
        from sentisynth.generation.preview import run_preview_stage

        return run_preview_stage(cfg)
    if str((cfg.get("guidance") or {}).get("name")) == "adaptive":
        return tracked_job(cfg, "generate", adaptive.adaptive_job)
    return pipeline.run_generate_stage(cfg)
