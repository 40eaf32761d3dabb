"""Filter chain: context, the filter interface, and the bookkeeping that makes the report add up.

A sample is a dict with at least `id`, `text`, `label` (int), `label_name` and `provenance`.
Each filter returns (kept, rejected); kept samples may gain scores (`teacher`, `perplexity`),
rejected ones carry `reject_reason` (a short category) and optionally `reject_detail`. The chain
stamps `rejected_by` and counts, per filter and class, in = kept + dropped.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from sentisynth.data import LowResourceData

log = logging.getLogger(__name__)

Sample = dict[str, Any]


@dataclass
class FilterContext:
    """What filters need besides the samples: real data (dedup, teacher), scorers, caches, budgets."""

    data: LowResourceData | None = None
    lm_scorer: Callable[[list[str]], np.ndarray] | None = None
    cache_dir: str | Path | None = None
    seed: int = 0
    budget_per_class: int | Mapping[Any, int] | None = None
    teacher: Any = None  # a ready teacher (anything with `score(texts)`); else trained lazily, cached
    label_names: list[str] | None = None
    progress: bool = True
    _teachers: dict[str, Any] = field(default_factory=dict, repr=False)  # by cache key: see filters.teacher
    # per-context memo of work that depends only on the real data or on one text (dedup's reference LSH and
    # MinHashes): generation's top-up rounds re-filter every candidate so far with the same context
    _memo: dict[Any, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.label_names is None and self.data is not None:
            self.label_names = list(self.data.label_names)

    def budget_for(self, label: int, label_name: str | None = None) -> int | None:
        """Per-class budget: one int for all classes, or a mapping by class name or id."""
        b = self.budget_per_class
        if b is None or isinstance(b, (int, np.integer)):
            return None if b is None else int(b)
        for key in (label_name, label, str(label)):
            if key is not None and key in b:
                return int(b[key])
        return None


class Filter(Protocol):
    name: str

    def apply(self, samples: list[Sample], ctx: FilterContext) -> tuple[list[Sample], list[Sample]]: ...


def reject(sample: Sample, reason: str, detail: str | None = None, **extra: Any) -> Sample:
    """Mark a sample as rejected (the chain adds `rejected_by`)."""
    sample["reject_reason"] = reason
    if detail:
        sample["reject_detail"] = detail
    sample.update(extra)
    return sample


@dataclass
class FilterResult:
    kept: list[Sample]
    rejected: list[Sample]
    report: dict[str, Any]


def class_key(sample: Sample, label_names: Sequence[str] | None) -> str:
    if sample.get("label_name") is not None:
        return str(sample["label_name"])
    label = int(sample["label"])
    return label_names[label] if label_names and 0 <= label < len(label_names) else str(label)


def _rate(kept: int, n: int) -> float:
    return round(kept / n, 4) if n else 0.0


class FilterChain:
    """Filters applied in order; each sees only what the previous ones kept."""

    def __init__(self, filters: Sequence[Filter], context: FilterContext) -> None:
        self.filters = list(filters)
        self.context = context
        names = [f.name for f in self.filters]
        if len(set(names)) != len(names):
            raise ValueError(f"filter names must be unique, got {names}")

    def apply(self, samples: list[Sample]) -> FilterResult:
        names = self.context.label_names
        current = [dict(s) for s in samples]
        for s in current:
            for k in ("id", "text", "label"):
                if k not in s:
                    raise ValueError(f"sample {s.get('id', '?')!r} lacks required key {k!r}")
            s.setdefault("label_name", class_key(s, names))
            s.setdefault("provenance", {})
        intended = {s["id"]: class_key(s, names) for s in current}
        if len(intended) != len(current):
            raise ValueError("sample ids must be unique")
        rejected: list[Sample] = []
        steps = []
        for f in self.filters:
            before = Counter(class_key(s, names) for s in current)
            labels_before = {s["id"]: s["label"] for s in current}
            t0 = time.perf_counter()
            kept, dropped = f.apply(current, self.context)
            elapsed = time.perf_counter() - t0
            if len(kept) + len(dropped) != len(current):
                raise RuntimeError(
                    f"filter {f.name!r} returned {len(kept)} kept + {len(dropped)} dropped "
                    f"for {len(current)} samples"
                )
            for s in dropped:
                s["rejected_by"] = f.name
                s.setdefault("reject_reason", "unspecified")
            steps.append(self._step_report(f.name, current, before, labels_before, kept, dropped, elapsed))
            steps[-1].update(getattr(f, "step_info", None) or {})  # a filter's own figures (judge: kappa)
            rejected.extend(dropped)
            current = kept
        report = self._summary(samples, intended, current, rejected, steps)
        return FilterResult(current, rejected, report)

    def _step_report(
        self,
        name: str,
        inputs: list[Sample],
        before: Counter,
        labels_before: dict,
        kept: list[Sample],
        dropped: list[Sample],
        elapsed: float,
    ) -> dict[str, Any]:
        names = self.context.label_names
        # per class by the class a sample had when it entered this filter, so in = kept + dropped
        entered = {s["id"]: class_key(s, names) for s in inputs}
        kept_c = Counter(entered[s["id"]] for s in kept)
        drop_c = Counter(entered[s["id"]] for s in dropped)
        reasons: dict[str, Counter] = {}
        for s in dropped:
            reasons.setdefault(entered[s["id"]], Counter())[s["reject_reason"]] += 1
        relabelled = sum(1 for s in kept if s["label"] != labels_before[s["id"]])
        classes = sorted(set(before) | set(kept_c) | set(drop_c), key=self._class_order)
        return {
            "name": name,
            "in": len(inputs),
            "kept": len(kept),
            "dropped": len(dropped),
            "acceptance_rate": _rate(len(kept), len(inputs)),
            "relabelled": relabelled,
            "reasons": dict(Counter(s["reject_reason"] for s in dropped).most_common()),
            "time_s": round(elapsed, 3),
            "per_class": {
                c: {
                    "in": before.get(c, 0),
                    "kept": kept_c.get(c, 0),
                    "dropped": drop_c.get(c, 0),
                    "acceptance_rate": _rate(kept_c.get(c, 0), before.get(c, 0)),
                    "reasons": dict(reasons.get(c, Counter()).most_common()),
                }
                for c in classes
            },
        }

    def _class_order(self, c: str) -> tuple[int, str]:
        names = self.context.label_names or []
        return (names.index(c) if c in names else len(names), c)

    def _summary(
        self,
        samples: list[Sample],
        intended: dict[str, str],
        kept: list[Sample],
        rejected: list[Sample],
        steps: list[dict],
    ) -> dict[str, Any]:
        names = self.context.label_names
        n_in = Counter(intended.values())
        n_kept = Counter(intended[s["id"]] for s in kept)
        n_drop = Counter(intended[s["id"]] for s in rejected)
        final = Counter(class_key(s, names) for s in kept)
        classes = sorted(set(n_in) | set(final), key=self._class_order)
        per_class = {}
        for c in classes:
            row = {
                "in": n_in.get(c, 0),
                "kept": n_kept.get(c, 0),
                "dropped": n_drop.get(c, 0),
                "acceptance_rate": _rate(n_kept.get(c, 0), n_in.get(c, 0)),
                "kept_final_label": final.get(c, 0),
            }
            budget = self.context.budget_for(names.index(c) if names and c in names else -1, c)
            if budget is not None:
                row["budget"] = budget
                row["short_of_budget"] = max(0, budget - final.get(c, 0))
            per_class[c] = row
        return {
            "n_in": len(samples),
            "n_kept": len(kept),
            "n_dropped": len(rejected),
            "acceptance_rate": _rate(len(kept), len(samples)),
            "filters_applied": [s["name"] for s in steps],
            "per_class": per_class,
            "filters": steps,
        }


class MemoScorer:
    """Scores each distinct text once. Generation's top-up rounds re-filter every candidate so far; with
    this the teacher and the perplexity model only see the new ones. `score(texts)` returns the teacher's
    dict of arrays; calling it (`memo(texts)`) returns an array, for `lm_scorer`."""

    def __init__(self, load: Callable[[], Any], method: str | None = "score") -> None:
        self._load, self._method, self._scorer = load, method, None
        self._rows: dict[str, Any] = {}

    def _ensure(self, texts: list[str]) -> None:
        new = [t for t in dict.fromkeys(texts) if t not in self._rows]
        if not new:
            return
        if self._scorer is None:
            loaded = self._load()
            self._scorer = getattr(loaded, self._method) if self._method else loaded
        out = self._scorer(new)
        if isinstance(out, dict):
            for i, t in enumerate(new):
                self._rows[t] = {k: v[i] for k, v in out.items()}
        else:
            for t, v in zip(new, np.asarray(out)):
                self._rows[t] = v

    def score(self, texts: list[str]) -> dict[str, np.ndarray]:
        texts = [str(t) for t in texts]
        self._ensure(texts)
        keys = ("probs", "label", "confidence")
        return {k: np.array([self._rows[t][k] for t in texts]) for k in keys}

    def __call__(self, texts: list[str]) -> np.ndarray:
        texts = [str(t) for t in texts]
        self._ensure(texts)
        return np.array([self._rows[t] for t in texts], dtype=float)
