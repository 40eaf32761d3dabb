"""Fluency filter: drop samples whose perplexity is above a ceiling or a percentile of the batch.

Perplexity comes from the generator itself (`FilterContext.lm_scorer`, supplied by generation) or
from a reference causal LM given by path or Hub name (`CausalLMScorer`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from sentisynth.filters.base import FilterContext, Sample, reject

log = logging.getLogger(__name__)


@torch.inference_mode()
def per_text_perplexity(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    batch_size: int = 64,
    max_length: int = 128,
    progress: bool = False,
) -> np.ndarray:
    """Perplexity exp(mean token NLL) of each text under a causal LM, unconditioned (the first token is
    scored after BOS); texts go in length-sorted batches. NaN for a text with no token to score."""
    from tqdm.auto import tqdm

    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (bos if bos is not None else 0)
    device = next(model.parameters()).device
    model.eval()
    out = np.full(len(texts), np.nan)
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"][: max_length - 1] for t in texts]
    order = np.argsort([len(x) for x in ids], kind="stable")
    starts = range(0, len(texts), batch_size)
    for s in tqdm(starts, desc="perplexity", disable=not progress or len(starts) < 10, leave=False):
        rows = order[s : s + batch_size]
        seqs = [([bos] if bos is not None else []) + ids[i] for i in rows]
        width = max(len(x) for x in seqs)
        inp = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, x in enumerate(seqs):
            inp[r, : len(x)] = torch.as_tensor(x)
            mask[r, : len(x)] = 1
        inp, mask = inp.to(device), mask.to(device)
        logits = model(input_ids=inp, attention_mask=mask).logits.float()
        nll = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), inp[:, 1:], reduction="none")
        tmask = mask[:, 1:].float()
        n_tok = tmask.sum(1)
        ppl = torch.exp((nll * tmask).sum(1) / n_tok.clamp_min(1)).cpu().numpy()
        ppl[n_tok.cpu().numpy() == 0] = np.nan
        out[rows] = ppl
    return out


class CausalLMScorer:
    """A reference causal LM (path or Hub name) as a perplexity scorer: `scorer(texts) -> perplexities`."""

    def __init__(
        self,
        model_path: str,
        batch_size: int = 32,
        max_length: int = 128,
        device: str | None = None,
        trust_remote_code: bool = False,
        progress: bool = True,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust_remote_code)
        self.model = AutoModelForCausalLM.from_pretrained(model_path, trust_remote_code=trust_remote_code)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model.to(self.device).eval()
        self.batch_size, self.max_length, self.progress = batch_size, max_length, progress

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        return per_text_perplexity(
            self.model, self.tokenizer, texts, self.batch_size, self.max_length, self.progress
        )


class PerplexityFilter:
    """Keep fluent samples; every sample gets its `perplexity` (NaN/inf rejected as unscorable)."""

    name = "perplexity"

    def __init__(
        self,
        max_perplexity: float | None = None,
        percentile: float | None = 95.0,
        model_path: str | None = None,
        batch_size: int = 32,
        max_length: int = 128,
    ) -> None:
        if percentile is not None and not 0 < percentile <= 100:
            raise ValueError(f"perplexity.percentile must be in (0, 100], got {percentile}")
        self.max_perplexity, self.percentile = max_perplexity, percentile
        self.model_path, self.batch_size, self.max_length = model_path, batch_size, max_length
        self._scorer: CausalLMScorer | None = None

    def scorer(self, ctx: FilterContext):
        if self.model_path:
            if self._scorer is None:
                self._scorer = CausalLMScorer(
                    self.model_path, self.batch_size, self.max_length, progress=ctx.progress
                )
            return self._scorer
        return ctx.lm_scorer

    def apply(self, samples: list[Sample], ctx: FilterContext) -> tuple[list[Sample], list[Sample]]:
        scorer = self.scorer(ctx)
        if scorer is None:
            log.warning(
                "perplexity filter: no generator scorer and no filters.perplexity.model_path: skipped"
            )
            return list(samples), []
        if not samples:
            return [], []
        ppl = np.asarray(scorer([str(s["text"]) for s in samples]), dtype=float)
        if ppl.shape != (len(samples),):
            raise ValueError(f"perplexity scorer returned shape {ppl.shape} for {len(samples)} texts")
        finite = np.isfinite(ppl)
        cut = math.inf
        if self.max_perplexity is not None:
            cut = float(self.max_perplexity)
        if self.percentile is not None and finite.any():
            cut = min(cut, float(np.percentile(ppl[finite], self.percentile)))
        kept, dropped = [], []
        for s, p, ok in zip(samples, ppl, finite):
            s["perplexity"] = round(float(p), 4) if ok else None
            if not ok:
                dropped.append(reject(s, "perplexity_unscorable", "no finite perplexity"))
            elif p > cut:
                dropped.append(reject(s, "perplexity_high", f"perplexity {p:.1f} > {cut:.1f}"))
            else:
                kept.append(s)
        return kept, dropped
