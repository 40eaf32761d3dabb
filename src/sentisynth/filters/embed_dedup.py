"""Embedding near-duplicates: a post whose MiniLM cosine similarity to a real post (the seed by default) or to
an earlier kept post of the run reaches `threshold` is dropped, naming the near post.

The n-gram dedup filter catches copies that share word pairs; this one catches paraphrases and template
posts that differ in every bigram but say the same thing ("so happy today!!" / "today I'm so happy"). Off by
default (`filters.embed_dedup: null`); on with `filters=default_embed` (docs/diversity.md). Embeddings are
memoised per text in the filter context, so top-up rounds that re-filter every candidate embed each once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from sentisynth.filters.base import FilterContext, Sample, reject
from sentisynth.filters.dedup import SPLITS, reference_texts

Embedder = Callable[[Sequence[str]], np.ndarray]


class EmbedDedupFilter:
    """Drop posts within cosine `threshold` of a real post (`against`) or of an earlier kept post (`within`)."""

    name = "embed_dedup"

    def __init__(
        self,
        threshold: float = 0.92,
        against: Sequence[str] = ("seed",),
        within: bool = True,
        model_path: str | None = None,
        batch_size: int = 128,
        embedder: Embedder | None = None,
    ) -> None:
        if not 0 < threshold <= 1:
            raise ValueError(f"embed_dedup.threshold must be in (0, 1], got {threshold}")
        unknown = set(against) - set(SPLITS)
        if unknown:
            raise ValueError(
                f"embed_dedup.against: unknown split(s) {sorted(unknown)} (known: {', '.join(SPLITS)})"
            )
        self.threshold, self.against, self.within = float(threshold), tuple(against), bool(within)
        self.model_path, self.batch_size = model_path, int(batch_size)
        self.embedder = embedder  # tests inject one; None: MiniLM (classifiers.embeddings)

    def embed(self, texts: Sequence[str], ctx: FilterContext) -> np.ndarray:
        """Unit rows for `texts`, each distinct text embedded once per context."""
        memo = ctx._memo.setdefault(("embed_dedup", self.model_path, id(self.embedder)), {})
        new = [t for t in dict.fromkeys(texts) if t not in memo]
        if new:
            if self.embedder is not None:
                vecs = np.asarray(self.embedder(new), dtype=np.float32)
            else:
                from sentisynth.classifiers.embeddings import embed_texts

                vecs = embed_texts(new, self.model_path, self.batch_size)
            vecs = vecs / np.clip(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12, None)
            memo.update(zip(new, vecs))
        return np.stack([memo[t] for t in texts]) if texts else np.zeros((0, 1), dtype=np.float32)

    def apply(self, samples: list[Sample], ctx: FilterContext) -> tuple[list[Sample], list[Sample]]:
        refs = reference_texts(ctx, self.against)
        vecs = self.embed([str(s["text"]) for s in samples], ctx)
        near: list[tuple[str, object, float] | None] = [None] * len(samples)
        if refs and len(samples):
            sims = vecs @ self.embed([t for _, _, t in refs], ctx).T
            best = sims.argmax(axis=1)
            for i, j in enumerate(best.tolist()):
                if sims[i, j] >= self.threshold:
                    near[i] = (refs[j][0], refs[j][1], float(sims[i, j]))
        keep = self._greedy_within(vecs, near, samples) if self.within else [n is None for n in near]
        kept, dropped = [], []
        for s, ok, hit in zip(samples, keep, near):
            if ok:
                kept.append(s)
                continue
            where, ident, sim = hit  # type: ignore[misc]
            detail = f"sample {ident}" if where == "synthetic" else f"{where} post #{ident}"
            dropped.append(
                reject(
                    s,
                    f"embedding_near_duplicate:{where}",
                    f"cosine {sim:.3f} with {detail}",
                    duplicate_of={
                        "split": where,
                        ("id" if where == "synthetic" else "index"): ident,
                        "cosine": round(sim, 4),
                    },
                )
            )
        return kept, dropped

    def _greedy_within(
        self, vecs: np.ndarray, near: list[tuple[str, object, float] | None], samples: list[Sample]
    ) -> list[bool]:
        """In order, keep a post unless it is near a real post or a post kept before it (fills `near`).
        Blocks of 512: one matrix product against everything kept before the block, then the block itself."""
        keep = [False] * len(samples)
        kept_idx: list[int] = []
        for b0 in range(0, len(samples), 512):
            block = list(range(b0, min(b0 + 512, len(samples))))
            prev = vecs[kept_idx] @ vecs[block].T if kept_idx else None
            inner = vecs[block] @ vecs[block].T
            mask = np.zeros(len(block), dtype=bool)  # kept so far within the block
            for r, i in enumerate(block):
                if near[i] is not None:
                    continue
                cands = []
                if prev is not None:
                    q = int(prev[:, r].argmax())
                    cands.append((float(prev[q, r]), kept_idx[q]))
                if mask[:r].any():
                    col = np.where(mask[:r], inner[:r, r], -np.inf)
                    q = int(col.argmax())
                    cands.append((float(col[q]), block[q]))
                sim, j = max(cands, default=(-1.0, -1))
                if sim >= self.threshold:
                    near[i] = ("synthetic", str(samples[j]["id"]), sim)
                else:
                    keep[i] = mask[r] = True
            kept_idx += [i for i in block if keep[i]]
        return keep
