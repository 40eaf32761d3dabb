"""What every generator shares: the context it is prepared with and the requests it answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sentisynth.generation.prompts import GuidanceStrategy


@dataclass
class GenContext:
    """Inputs a generator needs to get ready (fine-tune) and to build prompts."""

    seed_texts: list[str]
    seed_labels: np.ndarray
    seed_index: np.ndarray
    label_names: list[str]
    strategy: GuidanceStrategy
    guidance: dict | None
    cache_dir: Path
    trainer_cfg: Any = None
    seed: int = 0
    seed_fingerprint: str = ""
    guidance_fingerprint: str = ""


@dataclass
class Request:
    """One prompt: which class, what it says (for provenance) and its token ids."""

    label: int
    label_name: str
    prompt: str
    prompt_ids: list[int]
    keywords: list[str] = field(default_factory=list)
    exemplar_indices: list[int] = field(default_factory=list)
    n_posts: int = 1


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
