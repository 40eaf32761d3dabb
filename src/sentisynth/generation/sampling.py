"""Batched sampling (left padding + KV cache) with one random stream per request, and the `shap_bias`
logits processor.

Each row samples with its own seeded generator (the Gumbel-max trick on the warped logits), so a
request's sample depends on its own seed, not on which batch it shares or where it sits in it: the same
contract as vLLM's per-request `SamplingParams(seed=...)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopPLogitsWarper,
)

from sentisynth.errors import ConfigError


@dataclass
class SamplingParams:
    """SentiSynth's settings by default (temperature 0.7, top-k 50, top-p 0.95, penalty 1.2, 64 tokens)."""

    temperature: float = 0.7
    top_k: int = 50
    top_p: float = 0.95
    repetition_penalty: float = 1.2
    max_new_tokens: int = 64
    do_sample: bool = True

    def __post_init__(self) -> None:
        """Temperature 0 is not a silent 1.0 (the cache key and provenance would record 0): greedy decoding is
        `do_sample=false`; with sampling on, a temperature <= 0 or a top-p outside (0, 1] is an error."""
        if not self.do_sample:
            return
        if not self.temperature or self.temperature <= 0:  # NaN and None too
            raise ConfigError(
                f"generator.sampling.temperature must be > 0 when sampling, got {self.temperature!r} "
                "(for greedy decoding set generator.sampling.do_sample=false)"
            )
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ConfigError(f"generator.sampling.top_p must be in (0, 1], got {self.top_p!r}")

    def to_dict(self) -> dict:
        return asdict(self)


def keyword_token_ids(tokenizer, keywords: Sequence[str]) -> list[int]:
    """Token ids that start each keyword, as a word at the start of text and after a space.

    Only the first token of a multi-token keyword is biased: that starts the word and the model's own
    probabilities finish it, instead of pushing word pieces everywhere.
    """
    ids: list[int] = []
    special = set(tokenizer.all_special_ids)
    for kw in keywords:
        word = kw.lstrip("#@") or kw  # "#angry" -> bias "angry", not the generic "#" token
        for variant in (word, " " + word):
            toks = tokenizer(variant, add_special_tokens=False)["input_ids"]
            if not toks or toks[0] in special or toks[0] in ids:
                continue
            piece = tokenizer.decode([toks[0]])
            if not piece.strip() or (
                not any(ch.isalnum() for ch in piece) and any(ch.isalnum() for ch in word)
            ):
                continue  # a bare punctuation/space piece would push every word, not this one
            ids.append(toks[0])
    return ids


class KeywordBiasProcessor(LogitsProcessor):
    """Adds `bias` to the logits of given token ids (one id list per batch row, or one for all rows)."""

    def __init__(self, token_ids: Sequence[int] | Sequence[Sequence[int]], bias: float) -> None:
        self.token_ids = token_ids
        self.bias = float(bias)
        self._mask: torch.Tensor | None = None

    def _build(self, scores: torch.Tensor) -> torch.Tensor:
        rows = self.token_ids
        per_row = len(rows) > 0 and isinstance(rows[0], (list, tuple))
        mask = torch.zeros_like(scores)
        for r in range(scores.shape[0]):
            ids = rows[r] if per_row else rows
            ids = [i for i in ids if 0 <= i < scores.shape[-1]]
            if ids:
                mask[r, ids] = self.bias
        return mask

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._mask is None or self._mask.shape != scores.shape:
            self._mask = self._build(scores)
        return scores + self._mask.to(scores.dtype)


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for r, p in enumerate(prompts):
        ids[r, width - len(p) :] = torch.tensor(list(p), dtype=torch.long)
        mask[r, width - len(p) :] = 1
    return ids, mask


def row_seeds(seed: int | Sequence[int], n: int) -> list[int]:
    """One seed per row: given as a list, or derived from one batch seed and the row's position."""
    if isinstance(seed, int):
        return [int(np.random.SeedSequence([seed, r]).generate_state(1)[0]) for r in range(n)]
    if len(seed) != n:
        raise ValueError(f"{len(seed)} seeds for {n} prompts")
    return [int(s) for s in seed]


class RowSeededSampler(LogitsProcessor):
    """Turns greedy decoding into sampling with one generator per row: argmax(logits + Gumbel noise)
    is a draw from softmax(logits), and row r's noise comes only from its own seed."""

    def __init__(self, seeds: Sequence[int], device: torch.device) -> None:
        self.generators = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        u = torch.stack(
            [
                torch.rand(scores.shape[-1], generator=g, device=scores.device, dtype=torch.float32)
                for g in self.generators
            ]
        )
        gumbel = -torch.log(-torch.log(u.clamp_min(1e-20)))
        return scores.float() + gumbel


class RowSeededTopKSampler(LogitsProcessor):
    """Temperature, top-k, top-p and the per-row Gumbel-max draw on the k best logits only.

    The same distribution as HF's warpers followed by `RowSeededSampler`, without their full-vocabulary work:
    HF's top-p sorts all 8,000 logits of every row at every step after top-k has already masked all but 50,
    and the sampler drew 8,000 uniforms per row. Profiled on the tiny generator (batch 128, 48 new tokens,
    2 CPU cores) the vocabulary sort, mask and noise were over half of the step time; here each row sorts
    nothing (`topk` returns its k best in order) and draws k uniforms. Returns logits that are 0 at the
    drawn token and -inf elsewhere, so `generate`'s greedy step picks it.
    """

    def __init__(self, params: SamplingParams, seeds: Sequence[int], device: torch.device) -> None:
        self.k, self.top_p = int(params.top_k), params.top_p
        self.temperature = float(params.temperature)  # > 0: checked by SamplingParams
        self.generators = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        k = min(self.k, scores.shape[-1])
        top, idx = (scores.float() / self.temperature).topk(k, dim=-1)  # sorted, best first
        if self.top_p is not None and self.top_p < 1.0:
            probs = top.softmax(dim=-1)
            before = probs.cumsum(dim=-1) - probs  # mass of the better tokens: keep while < top_p
            top = top.masked_fill(before >= self.top_p, float("-inf"))  # the best token always stays
        u = torch.stack([torch.rand(k, generator=g, device=scores.device) for g in self.generators])
        choice = (top - torch.log(-torch.log(u.clamp_min(1e-20)))).argmax(dim=-1, keepdim=True)
        out = torch.full_like(scores, float("-inf"), dtype=torch.float32)
        return out.scatter_(-1, idx.gather(-1, choice), 0.0)


def sampling_processors(
    params: SamplingParams, seeds: Sequence[int], device: torch.device
) -> list[LogitsProcessor]:
    """The per-row sampler with its warping (top-k set: `RowSeededTopKSampler`; otherwise HF's warpers then
    `RowSeededSampler` over the whole vocabulary); none for greedy decoding."""
    if not params.do_sample:
        return []
    if params.top_k:
        return [RowSeededTopKSampler(params, seeds, device)]
    warpers: list[LogitsProcessor] = []
    if params.temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(params.temperature))
    if params.top_p is not None and params.top_p < 1.0:
        warpers.append(TopPLogitsWarper(params.top_p))
    return [*warpers, RowSeededSampler(seeds, device)]


@torch.no_grad()
def generate_batch(
    model,
    prompts: Sequence[Sequence[int]],
    params: SamplingParams,
    seed: int | Sequence[int],
    pad_id: int,
    stop_ids: Sequence[int],
    processors: Sequence[LogitsProcessor] = (),
) -> list[list[int]]:
    """Sample continuations for a batch of prompts (token ids) in one `generate` call.

    `seed` is one seed per prompt (or one batch seed rows derive theirs from): a prompt with the same
    seed gives the same sample in any batch, up to floating-point noise of the padded batch. Returns the
    new tokens of each row, cut at the first stop token.
    """
    device = next(model.parameters()).device
    ids, mask = left_pad(prompts, pad_id)
    sampler = sampling_processors(params, row_seeds(seed, len(prompts)), device)
    out = model.generate(
        input_ids=ids.to(device),
        attention_mask=mask.to(device),
        pad_token_id=pad_id,
        eos_token_id=list(stop_ids),
        use_cache=True,
        do_sample=False,
        max_new_tokens=params.max_new_tokens,
        repetition_penalty=params.repetition_penalty,
        logits_processor=LogitsProcessorList([*processors, *sampler]),
    )
    return cut_at_stop(out[:, ids.shape[1] :].tolist(), stop_ids)


def cut_at_stop(rows: Sequence[Sequence[int]], stop_ids: Sequence[int]) -> list[list[int]]:
    """Each row's tokens up to (not including) its first stop token."""
    stops = set(stop_ids)
    out = []
    for row in rows:
        cut = next((i for i, t in enumerate(row) if t in stops), len(row))
        out.append(list(row[:cut]))
    return out
