"""Exact and near-duplicate removal, within the synthetic set and against every real split.

Texts are normalised (the `text.skeleton`: NFKC, invisible characters removed, look-alike letters folded;
then lowercase, mentions/URLs to placeholders, punctuation dropped) before comparison, so a test post with
zero-width characters, fullwidth letters or Cyrillic look-alikes is still a copy. Near-duplicates: word n-gram Jaccard, found with MinHash LSH (datasketch) and then
verified exactly on the shingle sets, so LSH false positives never drop a sample. A synthetic
copy of a test (or val) post is leakage: the test split is always checked, whatever `against` says.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence

from datasketch import MinHash, MinHashLSH

from sentisynth.filters.base import FilterContext, Sample, reject
from sentisynth.text import normalize_tweet, skeleton

log = logging.getLogger(__name__)

SPLITS = ("test", "val", "seed", "pool")  # priority: a text in several splits is reported as the first
_PUNCT = re.compile(r"[^\w@<> ]+", re.UNICODE)


def normalize(text: str) -> str:
    """Comparison key: the skeleton (disguises undone), placeholders for mentions/URLs, no punctuation."""
    return " ".join(_PUNCT.sub(" ", normalize_tweet(skeleton(text))).split())


def shingles(norm: str, n: int) -> set[str]:
    words = norm.split()
    if len(words) < n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def _minhashes(sets: Sequence[set[str]], num_perm: int) -> list[MinHash]:
    return MinHash.bulk([[s.encode() for s in sh] for sh in sets], num_perm=num_perm, seed=1)


def reference_texts(ctx: FilterContext, against: Iterable[str]) -> list[tuple[str, int, str]]:
    """(split, source index, text) for the real splits to check, in priority order."""
    if ctx.data is None:
        return []
    wanted = set(against)
    out = []
    for name in SPLITS:
        if name in wanted:
            split = getattr(ctx.data, name)
            out.extend((name, int(i), t) for i, t in zip(split.index, split.texts))
    return out


class DedupFilter:
    """Drop exact and near-duplicates of real posts and of earlier synthetic samples."""

    name = "dedup"

    def __init__(
        self,
        against: Sequence[str] = SPLITS,
        threshold: float = 0.7,
        ngram: int = 2,
        num_perm: int = 64,
        within: bool = True,
    ) -> None:
        unknown = set(against) - set(SPLITS)
        if unknown:
            raise ValueError(
                f"dedup.against: unknown split(s) {sorted(unknown)} (known: {', '.join(SPLITS)})"
            )
        if "test" not in against:
            log.warning("dedup.against has no 'test': checking test anyway (a copied test post is leakage)")
        self.against = tuple(dict.fromkeys([*against, "test"]))
        if not 0 < threshold <= 1:
            raise ValueError(f"{self.name}.threshold must be in (0, 1], got {threshold}")
        self.threshold, self.ngram, self.num_perm, self.within = threshold, ngram, num_perm, within

    def _references(self, ctx: FilterContext) -> tuple[list, dict[str, int], list[set[str]], MinHashLSH]:
        """The real splits' texts, exact keys, shingles and LSH index; built once per context (each top-up
        round re-filters with the same context: 5,000 reference MinHashes and inserts were 3 s a round)."""
        key = ("dedup_refs", self.against, self.ngram, self.num_perm, self.threshold)
        if key not in ctx._memo:
            refs = reference_texts(ctx, self.against)
            ref_norm = [normalize(t) for _, _, t in refs]
            exact: dict[str, int] = {}
            for j, k in enumerate(ref_norm):
                exact.setdefault(k, j)
            ref_sh = [shingles(k, self.ngram) for k in ref_norm]
            # LSH at a lower threshold than the verified one: fewer missed pairs, candidates checked exactly
            lsh = MinHashLSH(threshold=self._lsh_threshold, num_perm=self.num_perm)
            for j, m in enumerate(_minhashes(ref_sh, self.num_perm)):
                if ref_sh[j]:
                    lsh.insert(f"r{j}", m, check_duplication=False)
            ctx._memo[key] = (refs, exact, ref_sh, lsh)
        return ctx._memo[key]

    @property
    def _lsh_threshold(self) -> float:
        return max(0.3, self.threshold - 0.2)

    def _syn_minhashes(self, norms: list[str], sh: list[set[str]], ctx: FilterContext) -> list[MinHash]:
        """MinHashes of the samples, each distinct normalised text hashed once per context."""
        memo = ctx._memo.setdefault(("dedup_minhash", self.ngram, self.num_perm), {})
        new = {k: s for k, s in zip(norms, sh) if k not in memo}
        memo.update(zip(new, _minhashes(list(new.values()), self.num_perm)))
        return [memo[k] for k in norms]

    def apply(self, samples: list[Sample], ctx: FilterContext) -> tuple[list[Sample], list[Sample]]:
        refs, exact, ref_sh, ref_lsh = self._references(ctx)
        syn_norm = [normalize(str(s["text"])) for s in samples]
        syn_sh = [shingles(k, self.ngram) for k in syn_norm]
        syn_mh = self._syn_minhashes(syn_norm, syn_sh, ctx)
        lsh = MinHashLSH(threshold=self._lsh_threshold, num_perm=self.num_perm)  # this call's samples only

        kept, dropped = [], []
        seen: dict[str, str] = {}  # normalised text -> id of the first synthetic sample with it
        for i, s in enumerate(samples):
            key = syn_norm[i]
            if key in exact:
                split, idx, _ = refs[exact[key]]
                dropped.append(
                    reject(
                        s,
                        f"exact_duplicate:{split}",
                        f"same text as {split} post #{idx}",
                        duplicate_of={"split": split, "index": idx, "jaccard": 1.0},
                    )
                )
                continue
            if self.within and key in seen:
                dropped.append(
                    reject(
                        s,
                        "exact_duplicate:synthetic",
                        f"same text as sample {seen[key]}",
                        duplicate_of={"split": "synthetic", "id": seen[key], "jaccard": 1.0},
                    )
                )
                continue
            match = self._near((ref_lsh, lsh), syn_mh[i], syn_sh[i], refs, ref_sh, syn_sh, samples)
            if match is not None:
                where, ident, jac = match
                detail = f"Jaccard {jac:.2f} with {where} " + (
                    f"post #{ident}" if where != "synthetic" else f"sample {ident}"
                )
                dup = {
                    "split": where,
                    ("id" if where == "synthetic" else "index"): ident,
                    "jaccard": round(jac, 4),
                }
                dropped.append(reject(s, f"near_duplicate:{where}", detail, duplicate_of=dup))
                continue
            seen[key] = str(s["id"])
            if self.within and syn_sh[i]:
                lsh.insert(f"s{i}", syn_mh[i], check_duplication=False)
            kept.append(s)
        return kept, dropped

    def _near(
        self,
        lshs: tuple[MinHashLSH, MinHashLSH],
        m: MinHash,
        sh: set[str],
        refs: list[tuple[str, int, str]],
        ref_sh: list[set[str]],
        syn_sh: list[set[str]],
        samples: list[Sample],
    ) -> tuple[str, object, float] | None:
        """Best verified candidate (highest priority split, then highest Jaccard), or None."""
        if not sh:
            return None
        best: tuple[int, float, str, object] | None = None
        candidates = sorted(
            c for lsh in lshs for c in lsh.query(m)
        )  # sorted: ties resolve the same every run
        for cand in candidates:
            j = int(cand[1:])
            if cand[0] == "r":
                jac, where, ident = jaccard(sh, ref_sh[j]), refs[j][0], refs[j][1]
            else:
                jac, where, ident = jaccard(sh, syn_sh[j]), "synthetic", str(samples[j]["id"])
            if jac < self.threshold:
                continue
            rank = SPLITS.index(where) if where in SPLITS else len(SPLITS)
            if best is None or (rank, -jac) < (best[0], -best[1]):
                best = (rank, jac, where, ident)
        return None if best is None else (best[2], best[3], best[1])
