"""Guidance and synthetic data generation.

python generate.py stage=guidance data.seed_size=1000            # guidance.json + keyword plot
python generate.py data.seed_size=1000 generator=tiny guidance=shap  # synthetic.jsonl
"""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from sentisynth import quiet
from sentisynth.cli import fail, precheck_overrides, register_resolvers, run_task

register_resolvers()
quiet.apply()  # third-party deprecation notices and Lightning's tips: shown with verbose=true

STAGES = {
    "guidance": "sentisynth.guidance:run_guidance_stage",
    "generate": "sentisynth.generation:run_generate_stage",
}


@hydra.main(version_base="1.3", config_path="conf", config_name="generate")
def main(cfg: DictConfig) -> float | None:
    import importlib

    if cfg.stage not in STAGES:
        fail(f"stage={cfg.stage!r} is not a stage of generate.py (known: {', '.join(STAGES)})")
    module, func = STAGES[cfg.stage].split(":")
    return run_task(getattr(importlib.import_module(module), func), cfg)


if __name__ == "__main__":
    precheck_overrides(Path(__file__).parent / "conf", "generate", sys.argv[1:])
    main()
