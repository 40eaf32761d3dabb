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

from sentisynth.cache import is_sound, write_entry
from sentisynth.data import (
    DataError,
    LowResourceData,
    Split,
    parse_count,
    read_corpus,
    require_file,
    target_class_counts,
)
from sentisynth.provenance import compare_origin
from sentisynth.utils import content_key, jsonl_text, read_json, read_jsonl, to_json, to_plain, write_json

log = logging.getLogger(__name__)


@dataclass
class Augmentation:
    """Extra labelled rows, where they came from, and optional per-row weights/soft labels."""

    split: Split
    source: str  # "none" | "real" | "synthetic" | "pseudo"
    sample_weight: np.ndarray | None = None
    soft_labels: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)


def resolve_count(n: int | str, n_seed: int, available: int, seed_ratio: float | None = None) -> int:
    """Extra posts to add: `seed_ratio` x the seed size when it is set, else `n`: a count, or `full` (all
    `available`). A count never means a share: `augment.n=0.5` is an error, `augment.seed_ratio=0.5` half the seed."""
    if seed_ratio is not None:
        if isinstance(seed_ratio, bool) or not isinstance(seed_ratio, (int, float)) or seed_ratio < 0:
            raise DataError(
                f"augment.seed_ratio must be a number >= 0 (extra posts per seed post), got {seed_ratio!r}"
            )
        return int(round(seed_ratio * n_seed))
    count = parse_count(n, "augment.n")
    return int(available) if count == "full" else int(count)


def rows_per_class(labels: np.ndarray, per_class: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sorted row positions: `per_class[c]` rows of class c, drawn without replacement."""
    picks = [
        rng.choice(np.flatnonzero(labels == c), size=int(k), replace=False)
        for c, k in enumerate(per_class)
        if k
    ]
    return np.sort(np.concatenate(picks)) if picks else np.array([], dtype=int)


def sample_per_class(split: Split, per_class: np.ndarray, rng: np.random.Generator) -> Split:
    return split.subset(rows_per_class(split.labels, per_class, rng))


class NoAugment:
    """Seed only. `n` is accepted and ignored so one sweep can set `augment.n` across all arms."""

    name = "none"

    def __init__(self, n: int | str = 0, **_: Any) -> None:
        self.n = n

    def __call__(self, data: LowResourceData, run_dir: Path | None = None) -> Augmentation:
        return Augmentation(Split([], np.array([], dtype=int), np.array([], dtype=int)), "none")


class RealAugment:
    """`n` more real labelled posts from the pool: stratified like the seed, or balancing classes."""

    name = "real"

    def __init__(
        self, n: int | str = 1000, balance: bool = False, seed: int = 0, seed_ratio: float | None = None
    ) -> None:
        self.n, self.balance, self.seed, self.seed_ratio = n, balance, seed, seed_ratio

    def class_counts(self, data: LowResourceData) -> np.ndarray:
        available = data.pool.class_counts(data.n_classes)
        n = resolve_count(self.n, len(data.seed), available.sum(), self.seed_ratio)
        if n > available.sum():
            log.warning(
                "augment.n=%d but the real pool holds only %d posts: using all of them", n, available.sum()
            )
        reference = data.seed.class_counts(data.n_classes)
        return target_class_counts(n, reference, available, self.balance)

    def __call__(self, data: LowResourceData, run_dir: Path | None = None) -> Augmentation:
        per_class = self.class_counts(data)
        rng = np.random.default_rng(self.seed + 7919)
        split = sample_per_class(data.pool, per_class, rng)
        return Augmentation(split, "real", info={"per_class": per_class.tolist(), "balance": self.balance})


def write_set_comparison(
    data: LowResourceData,
    synthetic: Split,
    out_dir: Path,
    cache_dir: str | None = None,
    embed_sample: int = 100,
) -> None:
    """Linguistic comparison (sentisynth.analysis) of seed, real pool and the synthetic rows a run trains on;
    `embed_sample` posts per set are embedded (MiniLM) for `embed_spread` / `embed_nn` (0: none)."""
    from sentisynth.analysis import compare_sets, write_analysis

    sets = {
        "seed": (data.seed.texts, data.seed.labels),
        "real_pool": (data.pool.texts, data.pool.labels),
        "synthetic": (synthetic.texts, synthetic.labels),
    }
    frame = compare_sets(
        {k: v for k, v in sets.items() if len(v[0])},
        data.label_names,
        cache_dir=cache_dir,
        embed_sample=embed_sample,
    )
    write_analysis(frame, out_dir)


def labelled_row(row: Any, i: int, path: Path, label_names: list[str]) -> dict[str, Any] | None:
    """Check one sample (`text` and `label` or `label_name`); `label` becomes the id, `_line` the row number.
    None for a null or empty text (dropped and counted by the caller, like empty texts in data files)."""
    if not isinstance(row, dict) or "text" not in row:
        raise DataError(f"{path}: line {i}: missing field 'text'")
    if row["text"] is None or row["text"] != row["text"] or not str(row["text"]).strip():
        return None
    if row.get("label_name") is not None and row["label_name"] not in label_names:
        raise DataError(
            f"{path}: line {i}: unknown label {row['label_name']!r} (known: {', '.join(label_names)})"
        )
    label = label_names.index(row["label_name"]) if row.get("label_name") is not None else row.get("label")
    if isinstance(label, (bool, np.bool_)):
        raise DataError(
            f"{path}: line {i}: label {label} is a boolean, not a class id (0..{len(label_names) - 1})"
        )
    if isinstance(label, np.integer):
        label = int(label)
    if not isinstance(label, int) or not 0 <= label < len(label_names):
        raise DataError(
            f"{path}: line {i}: label {label!r} is outside the label mapping (0..{len(label_names) - 1})"
        )
    return {**row, "text": " ".join(str(row["text"]).split()), "label": label, "_line": i}


def kept_rows(rows: list[dict[str, Any] | None], path: Path) -> list[dict[str, Any]]:
    """The checked rows without the null/empty texts, whose count is logged."""
    n_empty = sum(r is None for r in rows)
    if n_empty:
        log.warning("%s: dropped %d empty or null text(s)", path, n_empty)
    return [r for r in rows if r is not None]


def read_labelled_jsonl(path: str | Path, label_names: list[str]) -> list[dict[str, Any]]:
    """Synthetic (or pseudo-labelled) samples: one JSON object per line with `text` and `label` or `label_name`."""
    path = require_file(path, "JSON Lines file")
    rows = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}: line {i}: not valid JSON ({e.msg}); truncated?") from None
            rows.append(labelled_row(row, i, path, label_names))
    return kept_rows(rows, path)


def read_labelled(path: str | Path, label_names: list[str]) -> tuple[list[dict[str, Any]], Path]:
    """A synthetic set as `synthetic.jsonl`, `synthetic.parquet`, a saved HF dataset or a generation run dir."""
    from sentisynth.generation.dataset import read_synthetic

    rows, source = read_synthetic(path)
    if source.is_dir() or source.suffix.lower() in (".parquet", ".pq"):
        return kept_rows(
            [labelled_row(r, i, source, label_names) for i, r in enumerate(rows, 1)], source
        ), source
    return read_labelled_jsonl(source, label_names), source


def draw_matched(
    labels: np.ndarray,
    data: LowResourceData,
    n: int | str,
    seed_ratio: float | None,
    balance: bool,
    match_real: bool,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Rows of a candidate set drawn with the real arm's per-class counts: (row positions, per class, n asked).

    `match_real` caps each class at what the real pool could also supply, so the real arm and this one train
    on the same number of extra rows per class."""
    available = np.bincount(labels, minlength=data.n_classes)
    cap = np.minimum(available, data.pool.class_counts(data.n_classes)) if match_real else available
    count = resolve_count(n, len(data.seed), cap.sum(), seed_ratio)
    per_class = target_class_counts(count, data.seed.class_counts(data.n_classes), cap, balance)
    return rows_per_class(labels, per_class, rng), per_class, count


def drop_leaks(
    rows: list[dict[str, Any]], data: LowResourceData, guard: Any = None
) -> tuple[list[dict[str, Any]], int]:
    """The file's rows minus copies of val/test posts, before any are drawn (so `n` clean rows can be), and how
    many were dropped. `train.run` guards the final training set again; this only makes the draw exact.
    `guard`: the run's `leak_guard` settings (on_overlap, threshold)."""
    from sentisynth.filters.leak import guard_training_set

    guard = to_plain(guard) or {}
    split = Split(
        [r["text"] for r in rows],
        np.array([r["label"] for r in rows], dtype=int),
        np.array([r["_line"] for r in rows], dtype=int),
    )
    keep, counts = guard_training_set(
        split,
        ["augment.path"] * len(rows),
        data,
        str(guard.get("on_overlap", "drop")),
        float(guard.get("threshold", 0.7)),
    )
    return [rows[i] for i in keep], counts["leak/dropped"]


class SyntheticAugment:
    """`n` synthetic posts from a `synthetic.jsonl`, drawn with the same per-class counts as `RealAugment`.

    Without a `path`, the `generate` block (generator, guidance, filters, keywords, classifier configs) runs
    the generation pipeline on `data_cfg` for exactly the real arm's per-class counts, cached under `cache_dir`.
    `weight` (beta) down-weights synthetic rows; `distill=True` passes the teacher's probabilities
    (`teacher.probs` of each sample) as soft labels, which only the transformer classifier uses.
    """

    name = "synthetic"

    def __init__(
        self,
        path: str | None = None,
        n: int | str = 1000,
        balance: bool = False,
        match_real: bool = True,
        weight: float = 1.0,
        distill: bool = False,
        seed: int = 0,
        guidance: str | None = None,
        generate: Any = None,
        analysis: bool = False,
        seed_ratio: float | None = None,
        data_cfg: Any = None,
        trainer_cfg: Any = None,
        cache_dir: str | None = None,
        generate_n: int | None = None,
        leak_guard: Any = None,
        analysis_embed: int = 100,
    ) -> None:
        self.path, self.n, self.balance, self.match_real = path, n, balance, match_real
        self.analysis_embed = int(analysis_embed)  # posts embedded for embed_spread / embed_nn (0: none)
        self.generate_n = (
            generate_n  # generate for this count and draw n from it: a +200 arm reuses the +1000 set
        )
        self.weight, self.distill, self.seed, self.guidance = weight, distill, seed, guidance
        self.generate, self.analysis, self.seed_ratio = generate, analysis, seed_ratio
        self.data_cfg, self.trainer_cfg, self.cache_dir = data_cfg, trainer_cfg, cache_dir
        self.leak_guard = (
            leak_guard  # the run's leak_guard settings: augment.path rows are guarded before the draw
        )

    def class_counts(self, data: LowResourceData) -> np.ndarray:
        """The real arm's per-class counts for `generate_n` (default: for `n`): what on-the-fly generation is asked
        for. Generated sets are cached by these counts, so arms with different `n` and the same `generate_n` share
        one generated set and differ only in how many posts they draw from it."""
        counts = RealAugment(self.n, self.balance, self.seed, self.seed_ratio).class_counts(data)
        if self.generate_n is None:
            return counts
        larger = RealAugment(self.generate_n, self.balance, self.seed).class_counts(data)
        if larger.sum() < counts.sum():
            raise DataError(f"augment.generate_n={self.generate_n} is smaller than augment.n={self.n}")
        return larger

    def generate_config(self, per_class: np.ndarray, out: Path) -> Any:
        """The `generate.py` config of this arm: the generate block, asking for exactly `per_class`."""
        from omegaconf import OmegaConf

        block = to_plain(self.generate)
        block["generator"].setdefault("budget", {})
        block["generator"]["budget"].update({"per_class": per_class.tolist(), "total": None})
        return OmegaConf.create(
            {
                **block,
                "data": to_plain(self.data_cfg) or {},
                "seed": int(self.seed),
                "trainer": to_plain(self.trainer_cfg),
                "logger": None,
                "paths": {"cache_dir": str(self.cache_dir or ".cache"), "output_dir": str(out)},
            }
        )

    def source_path(self, data: LowResourceData, run_dir: Path | None = None) -> Path:
        """`path` when given; else generate (or fetch from the cache) exactly the real arm's per-class counts."""
        if self.path:
            return Path(self.path)
        if not self.generate:
            raise DataError(
                "augment=synthetic needs augment.path=<a generate.py run dir, its synthetic.jsonl, "
                "synthetic.parquet or dataset/> "
                "or an augment.generate block"
            )
        from sentisynth.generation.stage import run_generate_stage

        per_class = self.class_counts(data)
        out = Path(run_dir or ".") / "generation"
        log.info(
            "augment=synthetic: generating %s (per class) with guidance=%s",
            per_class.tolist(),
            to_plain(self.generate)["guidance"]["name"],
        )
        run_generate_stage(self.generate_config(per_class, out))
        return out / "synthetic.jsonl"

    def soft_labels(self, path: Path, picked: list[dict], n_classes: int) -> np.ndarray | None:
        if not self.distill:
            return None
        from sentisynth.distill import soft_labels_from_samples

        missing = [r["_line"] for r in picked if not (r.get("teacher") or {}).get("probs")]
        if missing:
            raise DataError(
                f"{path}: line {missing[0]}: augment.distill needs the teacher's probabilities "
                "('teacher.probs'): generate with the teacher filter"
            )
        return soft_labels_from_samples(picked, n_classes)

    def __call__(self, data: LowResourceData, run_dir: Path | None = None) -> Augmentation:
        rows, path = read_labelled(self.source_path(data, run_dir), data.label_names)
        origin = compare_origin(path, rows, data)  # another seed size, data seed, dataset: one warning
        rows, leaked = drop_leaks(rows, data, self.leak_guard)
        labels = np.array([r["label"] for r in rows], dtype=int)
        rng = np.random.default_rng(self.seed + 104729)
        chosen, per_class, n = draw_matched(
            labels, data, self.n, self.seed_ratio, self.balance, self.match_real, rng
        )
        short = n - int(per_class.sum())
        if short > 0:
            log.warning(
                "augment.n=%d but only %d synthetic samples in total could be matched to the real arm's "
                "per-class counts (per class: %s; file %s)",
                n,
                per_class.sum(),
                dict(zip(data.label_names, per_class.tolist())),
                path,
            )
        picked = [rows[i] for i in chosen]
        split = Split(
            [r["text"] for r in picked], labels[chosen], np.array([r["_line"] for r in picked], dtype=int)
        )
        weights = np.full(len(split), float(self.weight)) if self.weight != 1.0 else None
        info = {
            "per_class": per_class.tolist(),
            "path": str(path),
            "strategy": self.guidance or "synthetic",
            "shortfall": short,
            "teacher": recorded_teacher(path),
            "leak_dropped_from_file": leaked,
            "set_origin": origin,
        }
        if self.analysis and run_dir is not None:
            write_set_comparison(data, split, Path(run_dir), self.cache_dir, self.analysis_embed)
        return Augmentation(
            split,
            "synthetic",
            sample_weight=weights,
            soft_labels=self.soft_labels(path, picked, data.n_classes),
            info=info,
        )


def recorded_teacher(synthetic_path: Path) -> str | None:
    """The teacher a generation run recorded in `models.json` beside the set (jsonl, parquet or dataset/)."""
    index = synthetic_path.parent / "models.json"
    entry = read_json(index) if index.is_file() else None
    return entry.get("teacher") if isinstance(entry, dict) else None


def teacher_location(filters: Any, data: LowResourceData, cache_dir: str | None) -> str | None:
    from sentisynth.filters.teacher import saved_teacher

    path = saved_teacher(filters, data, Path(cache_dir) / "filters" if cache_dir else None)
    return str(path) if path else None


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
        n: int | str = 1000,
        candidates: int = 5000,
        balance: bool = False,
        match_real: bool = True,
        cache_dir: str | None = None,
        seed: int = 0,
        teacher: Any = None,
        seed_ratio: float | None = None,
    ) -> None:
        self.corpus, self.filters, self.n, self.candidates = corpus, filters, n, candidates
        self.teacher = teacher  # a ready teacher (has `score(texts)`); else trained on the seed and cached
        self.balance, self.match_real, self.cache_dir, self.seed = balance, match_real, cache_dir, seed
        self.seed_ratio = seed_ratio

    def cache_path(self, data: LowResourceData, rows: np.ndarray) -> Path | None:
        """Keyed by the filters, the candidates and every real split; none with a ready (test) teacher."""
        if not self.cache_dir or self.teacher is not None:
            return None
        key = content_key(
            {
                "filters": {k: v for k, v in (to_plain(self.filters) or {}).items() if v is not None},
                "corpus": str(self.corpus),
                "rows": rows.tolist(),
                "splits": [s.fingerprint() for s in (data.seed, data.pool, data.val, data.test)],
                "labels": list(data.label_names),
            }
        )
        return Path(self.cache_dir) / "pseudo" / key

    def label_and_filter(self, data: LowResourceData, rows: np.ndarray, candidates: list[str]) -> Any:
        """Teacher-label the candidates and run the filter chain (the teacher is cached like generate.py's:
        `<cache_dir>/filters/teachers/<key>`, one per seed set)."""
        from sentisynth.filters import FilterContext, build_filter_chain, teacher_for

        filters = to_plain(self.filters) or {}
        filter_cache = str(Path(self.cache_dir) / "filters") if self.cache_dir else None
        context = FilterContext(data=data, cache_dir=filter_cache, seed=self.seed, teacher=self.teacher)
        teacher_cfg = filters.get("teacher", {}).get("model") if filters else None
        if teacher_cfg is None and self.teacher is None:
            raise DataError(
                "augment=pseudo needs augment.filters.teacher.model (the teacher that labels the corpus)"
            )
        scored = teacher_for(context, teacher_cfg).score(candidates)
        samples = [
            {
                "id": f"corpus-{int(r)}",
                "text": t,
                "label": int(y),
                "label_name": data.label_names[int(y)],
                "provenance": {"source": "pseudo", "corpus": str(self.corpus), "line": int(r) + 1},
            }
            for r, t, y in zip(rows, candidates, scored["label"])
        ]
        return build_filter_chain(self.filters, context).apply(samples)

    def filtered(
        self, data: LowResourceData, rows: np.ndarray, candidates: list[str], run_dir: Path | None
    ) -> Any:
        """The filter result for these candidates, from the disk cache when it holds it, so a sweep over
        classifiers scores the corpus once; the report also goes to `run_dir`."""
        from sentisynth.filters import FilterResult, write_filter_report

        cached = self.cache_path(data, rows)
        if cached is not None and is_sound(cached, "pseudo-labelled corpus"):
            log.info("augment=pseudo: cache hit %s", cached)
            result = FilterResult(
                read_jsonl(cached / "kept.jsonl"), [], read_json(cached / "filter_report.json")
            )
            if run_dir is not None:
                write_json(Path(run_dir) / "filter_report.json", result.report)
            return result
        result = self.label_and_filter(data, rows, candidates)
        if run_dir is not None:
            write_filter_report(result, run_dir)
        if cached is not None:
            write_entry(
                cached,
                {"filter_report.json": to_json(result.report), "kept.jsonl": jsonl_text(result.kept)},
                {"kept": len(result.kept)},
            )
        return result

    def __call__(self, data: LowResourceData, run_dir: Path | None = None) -> Augmentation:
        texts = read_corpus(self.corpus)
        rng = np.random.default_rng(self.seed + 15485863)
        rows = np.sort(rng.choice(len(texts), size=min(self.candidates, len(texts)), replace=False))
        candidates = [texts[i] for i in rows]
        result = self.filtered(data, rows, candidates, run_dir)
        labels = np.array([s["label"] for s in result.kept], dtype=int)
        pick, per_class, n = draw_matched(
            labels, data, self.n, self.seed_ratio, self.balance, self.match_real, rng
        )
        if per_class.sum() < n:
            log.warning(
                "augment=pseudo: only %d of %d posts in total could be drawn with the per-class quota "
                "(passed the filters, per class: %s)",
                per_class.sum(),
                n,
                dict(zip(data.label_names, np.bincount(labels, minlength=data.n_classes).tolist())),
            )
        kept = [result.kept[i] for i in pick]
        split = Split(
            [s["text"] for s in kept], labels[pick], np.array([s["provenance"]["line"] for s in kept])
        )
        info = {
            "per_class": per_class.tolist(),
            "strategy": "pseudo",
            "candidates": len(candidates),
            "passed_filters": len(result.kept),
            "shortfall": int(n - per_class.sum()),
            "has_teacher_probs": bool(kept) and "teacher" in kept[0],
            "teacher": teacher_location(self.filters, data, self.cache_dir),
        }
        return Augmentation(split, "pseudo", info=info)
