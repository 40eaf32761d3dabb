"""Synthetic data generation: generators (tiny, gpt2, lora_llm), guidance strategies, resumable output."""

from sentisynth.generation.stage import run_generate_stage

__all__ = ["run_generate_stage"]
