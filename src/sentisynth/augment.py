"""Augmentation arms: what gets added to the seed before the downstream classifier trains.

Each arm is a small callable `(data) -> Augmentation`; `train.py` concatenates the seed with it.
Real and synthetic expansion draw the same count and class distribution so they compare fairly.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sentisynth.data import DataError, LowResourceData, Split, read_corpus

log = logging.getLogger(__name__)


@dataclass
class Augmentation:
    """Extra labelled rows, where they came from, and optional per-row weights/soft labels."""

    split: Split
    source: str  # "none" | "real" | "synthetic" | "pseudo"
    sample_weight: np.ndarray | None = None
    soft_labels: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)


def resolve_count(n: int | float, n_seed: int) -> int:
    """`n` is a count, or a float below 10 read as a ratio of the seed size (0.5 -> half the seed)."""
    if isinstance(n, float) and n < 10:
        return int(round(n * n_seed))
    if int(n) < 0:
        raise DataError(f"augment.n must be >= 0, got {n}")
    return int(n)


def target_class_counts(
    n: int, reference_counts: np.ndarray, available: np.ndarray, balance: bool
) -> np.ndarray:
    """How many extra rows per class.

    Stratified: proportional to `reference_counts` (largest remainder). Balanced: top up the
    smallest classes first (water filling over reference + extra). Never more than `available`.
    """
    k = len(reference_counts)
    n = int(min(n, available.sum()))
    extra = np.zeros(k, dtype=int)
    if n == 0:
        return extra
    if balance:
        totals = reference_counts.astype(float).copy()
        for _ in range(n):
            open_ = np.flatnonzero(extra < available)
            c = open_[np.argmin(totals[open_])]
            extra[c] += 1
            totals[c] += 1
        return extra
    share = reference_counts / max(reference_counts.sum(), 1) * n
    extra = np.minimum(np.floor(share).astype(int), available)
    while extra.sum() < n:
        room = extra < available
        remainder = np.where(room, share - extra, -np.inf)
        extra[int(np.argmax(remainder))] += 1
    return extra


def rows_per_class(labels: np.ndarray, per_class: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sorted row positions: `per_class[c]` rows of class c, drawn without replacement."""
    picks = [rng.choice(np.flatnonzero(labels == c), size=int(k), replace=False) for c, k in enumerate(per_class) if k]
    return np.sort(np.concatenate(picks)) if picks else np.array([], dtype=int)


def sample_per_class(split: Split, per_class: np.ndarray, rng: np.random.Generator) -> Split:
    return split.subset(rows_per_class(split.labels, per_class, rng))


class NoAugment:
    """Seed only. `n` is accepted and ignored so one sweep can set `augment.n` across all arms."""

    name = "none"

    def __init__(self, n: int | float = 0, **_: Any) -> None:
        self.n = n

    def __call__(self, data: LowResourceData, **_: Any) -> Augmentation:
        return Augmentation(Split([], np.array([], dtype=int), np.array([], dtype=int)), "none")


class RealAugment:
    """`n` more real labelled posts from the pool: stratified like the seed, or balancing classes."""

    name = "real"

    def __init__(self, n: int | float = 1000, balance: bool = False, seed: int = 0) -> None:
        self.n, self.balance, self.seed = n, balance, seed

    def class_counts(self, data: LowResourceData) -> np.ndarray:
        n = resolve_count(self.n, len(data.seed))
        available = data.pool.class_counts(data.n_classes)
        if n > available.sum():
            log.warning("augment.n=%d but the real pool holds only %d posts: using all of them", n, available.sum())
        reference = data.seed.class_counts(data.n_classes)
        return target_class_counts(n, reference, available, self.balance)

    def __call__(self, data: LowResourceData, **_: Any) -> Augmentation:
        per_class = self.class_counts(data)
        rng = np.random.default_rng(self.seed + 7919)
        split = sample_per_class(data.pool, per_class, rng)
        return Augmentation(split, "real", info={"per_class": per_class.tolist(), "balance": self.balance})




def write_set_comparison(data: LowResourceData, synthetic: Split, out_dir: Path, cache_dir: str | None = None) -> None:
    """Linguistic comparison (sentisynth.analysis) of seed, real pool and the synthetic rows a run trains on."""
    from sentisynth.analysis import compare_sets, write_analysis

    sets = {"seed": (data.seed.texts, data.seed.labels), "real_pool": (data.pool.texts, data.pool.labels),
            "synthetic": (synthetic.texts, synthetic.labels)}
    frame = compare_sets({k: v for k, v in sets.items() if len(v[0])}, data.label_names, cache_dir=cache_dir)
    write_analysis(frame, out_dir)


def read_labelled_jsonl(path: str | Path, label_names: list[str]) -> list[dict[str, Any]]:
    """Synthetic (or pseudo-labelled) samples: one JSON object per line with `text` and `label` or `label_name`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"missing file: {path}")
    rows = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}: line {i}: not valid JSON ({e.msg})") from None
            if "text" not in row:
                raise DataError(f"{path}: line {i}: missing field 'text'")
            if "label_name" in row and row["label_name"] not in label_names:
                raise DataError(f"{path}: line {i}: unknown label {row['label_name']!r} (known: {', '.join(label_names)})")
            label = label_names.index(row["label_name"]) if "label_name" in row else row.get("label")
            if not isinstance(label, int) or not 0 <= label < len(label_names):
                raise DataError(f"{path}: line {i}: label {label!r} is outside the label mapping (0..{len(label_names) - 1})")
            row["label"] = label
            row["_line"] = i
            rows.append(row)
    return rows


class SyntheticAugment:
    """`n` synthetic posts from a `synthetic.jsonl`, drawn with the same per-class counts as `RealAugment`.

    `match_real=True` caps each class at what the real pool could also supply, so the real and the
    synthetic arm always train on the same number of extra rows per class. `weight` (beta) down-weights
    synthetic rows; `distill=True` passes the teacher's probabilities (`teacher.probs` of each sample)
    as soft labels, which only the transformer classifier uses.
    """

    name = "synthetic"

    def __init__(
        self,
        path: str | None = None,
        n: int | float = 1000,
        balance: bool = False,
        match_real: bool = True,
        weight: float = 1.0,
        distill: bool = False,
        seed: int = 0,
        guidance: str | None = None,
        generate: Any = None,
        analysis: bool = False,
    ) -> None:
        self.path, self.n, self.balance, self.match_real = path, n, balance, match_real
        self.weight, self.distill, self.seed, self.guidance = weight, distill, seed, guidance
        self.generate, self.analysis = generate, analysis

    def class_counts(self, data: LowResourceData) -> np.ndarray:
        """The real arm's per-class counts for this `n` (what on-the-fly generation is asked for)."""
        return RealAugment(self.n, self.balance, self.seed).class_counts(data)

    def source_path(self, data: LowResourceData, cfg: Any = None, run_dir: Path | None = None, **_: Any) -> Path:
        """`path` when given; else generate (or fetch from the cache) exactly the real arm's per-class counts."""
        if self.path:
            return Path(self.path)
        if not self.generate:
            raise DataError("augment=synthetic needs augment.path=<synthetic.jsonl> (from generate.py) "
                            "or an augment.generate block")
        from omegaconf import OmegaConf

        from sentisynth.generation.pipeline import run_generate_stage
        from sentisynth.utils import to_plain

        per_class = self.class_counts(data)
        block = to_plain(self.generate)
        block["generator"].setdefault("budget", {})
        block["generator"]["budget"].update({"per_class": per_class.tolist(), "total": None})
        out = Path(run_dir or ".") / "generation"
        paths = to_plain(cfg.paths) if cfg is not None else {}
        gen_cfg = OmegaConf.create({
            **block, "data": to_plain(cfg.data) if cfg is not None else {}, "seed": int(self.seed),
            "trainer": to_plain(cfg.get("trainer")) if cfg is not None else None, "logger": None,
            "paths": {"cache_dir": paths.get("cache_dir", ".cache"), "output_dir": str(out)}})
        log.info("augment=synthetic: generating %s (per class) with guidance=%s", per_class.tolist(),
                 block["guidance"]["name"])
        run_generate_stage(gen_cfg)
        return out / "synthetic.jsonl"

    def __call__(self, data: LowResourceData, run_dir: Path | None = None, **context: Any) -> Augmentation:
        path = self.source_path(data, run_dir=run_dir, **context)
        rows = read_labelled_jsonl(path, data.label_names)
        labels = np.array([r["label"] for r in rows], dtype=int)
        available = np.bincount(labels, minlength=data.n_classes)
        cap = np.minimum(available, data.pool.class_counts(data.n_classes)) if self.match_real else available
        n = resolve_count(self.n, len(data.seed))
        per_class = target_class_counts(n, data.seed.class_counts(data.n_classes), cap, self.balance)
        short = n - int(per_class.sum())
        if short > 0:
            log.warning("augment.n=%d but only %d synthetic samples could be matched per class (file %s)",
                        n, per_class.sum(), path)
        rng = np.random.default_rng(self.seed + 104729)
        chosen = rows_per_class(labels, per_class, rng)
        picked = [rows[i] for i in chosen]
        split = Split([r["text"] for r in picked], labels[chosen], np.array([r["_line"] for r in picked], dtype=int))
        soft = None
        if self.distill:
            missing = [r["_line"] for r in picked if not (r.get("teacher") or {}).get("probs")]
            if missing:
                raise DataError(f"{path}: line {missing[0]}: augment.distill needs the teacher's probabilities "
                                "('teacher.probs'): generate with the teacher filter")
            soft = np.array([r["teacher"]["probs"] for r in picked], dtype=float)
        weights = np.full(len(split), float(self.weight)) if self.weight != 1.0 else None
        info = {"per_class": per_class.tolist(), "path": str(path), "strategy": self.guidance or "synthetic",
                "shortfall": short}
        if self.analysis and run_dir is not None:
            cfg = context.get("cfg")
            cache_dir = cfg.get("paths", {}).get("cache_dir") if cfg is not None else None
            write_set_comparison(data, split, Path(run_dir), cache_dir=cache_dir)
        return Augmentation(split, "synthetic", sample_weight=weights, soft_labels=soft, info=info)


class PseudoAugment:
    """Self-training baseline: real but unlabelled posts, labelled by the teacher, through the same filters.

    `candidates` posts are drawn (seeded) from the corpus, labelled with the teacher's prediction, passed
    through the filter chain (heuristics, dedup against seed/pool/val/test, teacher confidence >= tau),
    then `n` are drawn with the real arm's per-class counts. Synthetic generation has to beat this to be
    worth its cost.
    """

    name = "pseudo"

    def __init__(
        self,
        corpus: str,
        filters: Any,
        n: int | float = 1000,
        candidates: int = 5000,
        balance: bool = False,
        match_real: bool = True,
        cache_dir: str | None = None,
        seed: int = 0,
        teacher: Any = None,
    ) -> None:
        self.corpus, self.filters, self.n, self.candidates = corpus, filters, n, candidates
        self.teacher = teacher  # a ready teacher (has `score(texts)`); else trained on the seed and cached
        self.balance, self.match_real, self.cache_dir, self.seed = balance, match_real, cache_dir, seed

    def filtered(self, data: LowResourceData, rows: np.ndarray, candidates: list[str], run_dir: Path | None) -> Any:
        """Teacher-label the candidates and run the filter chain; cached on disk (keyed by the filters, the
        candidates and every real split), so a sweep over classifiers scores the corpus once."""
        from sentisynth.filters import FilterContext, build_filter_chain, write_filter_report
        from sentisynth.filters.base import FilterResult
        from sentisynth.generation.store import content_key
        from sentisynth.utils import atomic_write_text, read_json, to_plain, write_json

        filters = to_plain(self.filters) or {}
        key = content_key({"filters": filters, "corpus": str(self.corpus), "rows": rows.tolist(),
                           "splits": [s.fingerprint() for s in (data.seed, data.pool, data.val, data.test)],
                           "labels": list(data.label_names)})
        cached = Path(self.cache_dir) / "pseudo" / key if self.cache_dir and self.teacher is None else None
        if cached is not None and (cached / "kept.jsonl").is_file():
            log.info("augment=pseudo: cache hit %s", cached)
            kept = [json.loads(x) for x in (cached / "kept.jsonl").read_text(encoding="utf-8").splitlines()]
            result = FilterResult(kept, [], read_json(cached / "filter_report.json"))
            if run_dir is not None:
                write_json(Path(run_dir) / "filter_report.json", result.report)
            return result
        # the same teacher cache as generate.py (<cache_dir>/filters/teachers/<key>): one teacher per seed set
        filter_cache = str(Path(self.cache_dir) / "filters") if self.cache_dir else None
        context = FilterContext(data=data, cache_dir=filter_cache, seed=self.seed, teacher=self.teacher)
        teacher_cfg = filters.get("teacher", {}).get("model") if filters else None
        if teacher_cfg is None and self.teacher is None:
            raise DataError("augment=pseudo needs augment.filters.teacher.model (the teacher that labels the corpus)")
        scored = context.get_teacher(teacher_cfg).score(candidates)
        samples = [
            {"id": f"corpus-{int(r)}", "text": t, "label": int(y), "label_name": data.label_names[int(y)],
             "provenance": {"source": "pseudo", "corpus": str(self.corpus), "line": int(r) + 1}}
            for r, t, y in zip(rows, candidates, scored["label"])
        ]
        result = build_filter_chain(self.filters, context).apply(samples)
        if run_dir is not None:
            write_filter_report(result, run_dir)
        if cached is not None:
            write_json(cached / "filter_report.json", result.report)
            atomic_write_text(cached / "kept.jsonl", "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n"
                                                             for r in result.kept))
        return result

    def __call__(self, data: LowResourceData, run_dir: Path | None = None, **_: Any) -> Augmentation:
        texts = read_corpus(self.corpus)
        rng = np.random.default_rng(self.seed + 15485863)
        rows = np.sort(rng.choice(len(texts), size=min(self.candidates, len(texts)), replace=False))
        candidates = [texts[i] for i in rows]
        n = resolve_count(self.n, len(data.seed))
        result = self.filtered(data, rows, candidates, run_dir)
        labels = np.array([s["label"] for s in result.kept], dtype=int)
        available = np.bincount(labels, minlength=data.n_classes)
        cap = np.minimum(available, data.pool.class_counts(data.n_classes)) if self.match_real else available
        per_class = target_class_counts(n, data.seed.class_counts(data.n_classes), cap, self.balance)
        if per_class.sum() < n:
            log.warning("augment=pseudo: only %d of %d posts passed the filters per class quota (%s)",
                        per_class.sum(), n, dict(zip(data.label_names, available.tolist())))
        pick = rows_per_class(labels, per_class, rng)
        kept = [result.kept[i] for i in pick]
        split = Split([s["text"] for s in kept], labels[pick], np.array([s["provenance"]["line"] for s in kept]))
        soft = np.array([s["teacher"]["probs"] for s in kept], dtype=float) if kept and "teacher" in kept[0] else None
        info = {"per_class": per_class.tolist(), "strategy": "pseudo", "candidates": len(candidates),
                "passed_filters": len(result.kept), "shortfall": int(n - per_class.sum())}
        return Augmentation(split, "pseudo", soft_labels=None, info={**info, "has_teacher_probs": soft is not None})
