"""Synthetic data generation: generators (tiny, gpt2, lora_llm), guidance strategies, resumable output."""

from typing import Any

from sentisynth.generation import pipeline


def run_generate_stage(cfg: Any) -> dict[str, float]:
    """`stage=generate`: the set, or with `preview=N` a quick look at N posts per class (cached models only)."""
    if cfg.get("preview"):
        from sentisynth.generation.preview import run_preview_stage

        return run_preview_stage(cfg)
    return pipeline.run_generate_stage(cfg)


__all__ = ["run_generate_stage"]
