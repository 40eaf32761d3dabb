"""Batched sampling (left padding + KV cache) and the `shap_bias` logits processor."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from transformers import LogitsProcessor, LogitsProcessorList


@dataclass
class SamplingParams:
    """SentiSynth's settings by default (temperature 0.7, top-k 50, top-p 0.95, penalty 1.2, 64 tokens)."""

    temperature: float = 0.7
    top_k: int = 50
    top_p: float = 0.95
    repetition_penalty: float = 1.2
    max_new_tokens: int = 64
    do_sample: bool = True

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
            if not piece.strip() or (not any(ch.isalnum() for ch in piece) and any(ch.isalnum() for ch in word)):
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
        ids[r, width - len(p):] = torch.tensor(list(p), dtype=torch.long)
        mask[r, width - len(p):] = 1
    return ids, mask


@torch.no_grad()
def generate_batch(model, prompts: Sequence[Sequence[int]], params: SamplingParams, seed: int, pad_id: int,
                   stop_ids: Sequence[int], processors: Sequence[LogitsProcessor] = ()) -> list[list[int]]:
    """Sample continuations for a batch of prompts (token ids) in one `generate` call.

    The batch's seed fixes the sampling noise, so the same batch gives the same samples. Returns the new
    tokens of each row, cut at the first stop token.
    """
    device = next(model.parameters()).device
    ids, mask = left_pad(prompts, pad_id)
    torch.manual_seed(seed)
    kwargs = dict(do_sample=params.do_sample, max_new_tokens=params.max_new_tokens,
                  repetition_penalty=params.repetition_penalty)
    if params.do_sample:
        kwargs.update(temperature=params.temperature, top_k=params.top_k, top_p=params.top_p)
    out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), pad_token_id=pad_id,
                         eos_token_id=list(stop_ids), use_cache=True,
                         logits_processor=LogitsProcessorList(processors), **kwargs)
    stops = set(stop_ids)
    rows = []
    for row in out[:, ids.shape[1]:].tolist():
        cut = next((i for i, t in enumerate(row) if t in stops), len(row))
        rows.append(row[:cut])
    return rows
