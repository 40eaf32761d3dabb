"""MiniLM sentence embeddings (offline model by default): the diversity filter's MMR vectors, the embedding
near-duplicate filter and the embedding-spread measure of `sentisynth.analysis` share one loader."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np


@functools.lru_cache(maxsize=2)
def _encoder(model_path: str | None) -> tuple[Any, Any]:
    """Tokenizer and model, loaded once per process (a study cell embeds several sets)."""
    from transformers import AutoModel, AutoTokenizer

    from sentisynth.classifiers.transformer import resolve_model_path

    path = resolve_model_path(model_path)
    return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()


def embed_texts(texts: Sequence[str], model_path: str | None = None, batch_size: int = 128) -> np.ndarray:
    """Mean-pooled, L2-normalised sentence embeddings (offline MiniLM by default), in the order of `texts`;
    batches are cut from the texts sorted by length, so short tweets are not padded to the longest."""
    import torch

    tok, model = _encoder(model_path)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths batched: little padding
    ordered = [texts[i] for i in order]
    out = []
    with torch.inference_mode():
        for s in range(0, len(ordered), batch_size):
            enc = tok(
                ordered[s : s + batch_size],
                padding=True,
                truncation=True,
                max_length=128,
                return_tensors="pt",
            )
            h = model(**enc).last_hidden_state
            m = enc["attention_mask"].unsqueeze(-1).float()
            e = (h * m).sum(1) / m.sum(1).clamp_min(1)
            out.append(torch.nn.functional.normalize(e, dim=-1).numpy())
    if not out:
        return np.zeros((0, 1), dtype=np.float32)
    vecs = np.concatenate(out)
    back = np.empty_like(vecs)
    back[order] = vecs
    return back
