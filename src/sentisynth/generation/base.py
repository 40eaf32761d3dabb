"""What every generator shares: the `Generator` protocol, the context it is prepared with, the requests it answers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from sentisynth.generation.attributes import AttributeSpace, attributes_line, draw_attributes
from sentisynth.generation.prompts import (
    GuidanceStrategy,
    class_exemplars,
    class_keywords,
    render_instruction,
    sample_exemplars,
    sample_keywords,
)
from sentisynth.generation.sampling import keyword_token_ids

if TYPE_CHECKING:
    from sentisynth.generation.backends import Backend
    from sentisynth.generation.sampling import SamplingParams


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
    attributes: AttributeSpace | None = None  # guidance.attributes on: what each request draws from


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
    n_anchor: int = 0  # seed-anchored: the last n_anchor prompt ids open the post (a seed post's first words)
    anchor_index: int | None = None  # which seed post they come from (provenance)
    attributes: dict[str, str] = field(default_factory=dict)  # drawn topic/style/length/persona (provenance)


class Generator(Protocol):
    """What the pipeline needs from a generator (`LabelLMGenerator`, `TinyGenerator`, `InstructGenerator`).

    `prepare` gets it ready for a context (fine-tuning, cached); `make_requests` builds a batch of prompts for
    one class; `run_batch` samples them, one seed per request, on its `backend` (hf | vllm) and returns posts
    per request and the new token count; `workers` is how many processes generate (`shards.chunk_runner`);
    `lm_scorer` gives per-text perplexities for the perplexity filter, or is None where the generator has no
    local LM (`generator=api`: the filter then needs `filters.perplexity.model_path`, else skips with a log
    line). `identity` keys the caches. A generator may also have `prefetch(ctx, requests, seeds)` (a whole
    wave at once, `shards.run_local`) and `metrics()` (`generate/*` keys such as requests and cost).
    """

    kind: str
    reads_instruction: bool  # True: the strategy's instruction text is its prompt (instruction LMs)
    sampling: SamplingParams
    budget: dict
    batch_size: int
    backend: Backend
    workers: int

    def identity(self) -> dict[str, Any]: ...

    def prepare(self, ctx: GenContext) -> None: ...

    def make_requests(
        self, ctx: GenContext, label: int, n: int, rng: np.random.Generator
    ) -> list[Request]: ...

    def run_batch(
        self, ctx: GenContext, requests: Sequence[Request], seeds: Sequence[int]
    ) -> tuple[list[list[str]], int]: ...

    lm_scorer: Callable[[Sequence[str]], np.ndarray] | None


class Posts(list):
    """A request's posts, with what its answer says about itself (API generators: model, usage, finish
    reason), which `shards.run_chunk` adds to each sample's provenance."""

    def __init__(self, posts: Sequence[str] = (), meta: dict[str, Any] | None = None) -> None:
        super().__init__(posts)
        self.meta = dict(meta or {})


def guided_instruction(
    ctx: GenContext, label: int, n_posts: int, rng: np.random.Generator
) -> tuple[str, list[str], list[int], dict[str, str]]:
    """The strategy's instruction for one request of class `label` (instruction LMs and API generators):
    keywords, exemplars and then attributes (when on) sampled with `rng`; returns (instruction, keywords,
    exemplar indices, attributes)."""
    s, name = ctx.strategy, ctx.label_names[label]
    terms, weights = class_keywords(ctx.guidance, name, s.keyword_pool)
    kws = sample_keywords(rng, terms, weights, s.n_keywords)
    exs = sample_exemplars(rng, class_exemplars(ctx.guidance, name), s.n_exemplars)
    attrs = draw_attributes(rng, ctx.attributes)
    text = render_instruction(
        s.instruction, name, n_posts, kws, [t for t, _ in exs], attributes_line(attrs, ctx.attributes)
    )
    return text, kws, [i for _, i in exs], attrs


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def bias_token_ids(tokenizer: Any, ctx: GenContext, label: int) -> list[int]:
    """`shap_bias`: the first tokens of the class's top `bias_keywords` keywords; none without a bias."""
    if not ctx.strategy.bias:
        return []
    terms, _ = class_keywords(ctx.guidance, ctx.label_names[label], ctx.strategy.bias_keywords)
    return keyword_token_ids(tokenizer, terms) if terms else []


def posts_per_request(gen: Any) -> int:
    """How many posts one request asks for (instruction LMs: several per completion)."""
    return max(1, int(getattr(gen, "posts_per_prompt", 1)))
