"""Label-consistency filter: a teacher fine-tuned on the seed checks each sample's intended label.

The teacher is trained once per (model config, seed data, val data) and cached on disk under
`<cache_dir>/teachers/<key>/`, so repeated generation runs reuse it.
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from sentisynth.cache import is_sound, one_time_cost
from sentisynth.data import LowResourceData
from sentisynth.filters.base import FilterContext, Sample, reject
from sentisynth.utils import barrier, content_key, entry_lock, is_rank_zero, to_plain

log = logging.getLogger(__name__)


# Settings that change speed or display but not the fitted weights: not part of the cache key.
_NON_MODEL_KEYS = {"trainer", "progress", "eval_batch_size", "num_threads", "local_files_only"}


def teacher_cache_key(model_cfg: Any, data: LowResourceData | None) -> str:
    """Hash of (model config, seed and val fingerprints): same inputs reuse the same teacher."""
    if data is None:
        raise ValueError("training a teacher needs FilterContext.data (the seed and val splits)")
    cfg = {k: v for k, v in dict(to_plain(model_cfg) or {}).items() if k not in _NON_MODEL_KEYS}
    return content_key(
        {
            "model": cfg,
            "seed": data.seed.fingerprint(),
            "val": data.val.fingerprint(),
            "n_classes": data.n_classes,
        }
    )


def teacher_for(ctx: FilterContext, model_cfg: Any) -> Any:
    """The teacher for `model_cfg`: the context's own, cached in memory, cached on disk, or trained now."""
    if ctx.teacher is not None:
        return ctx.teacher
    key = teacher_cache_key(model_cfg, ctx.data)
    if key not in ctx._teachers:
        ctx._teachers[key] = load_or_train_teacher(model_cfg, ctx.data, ctx.cache_dir, key, ctx.progress)
    return ctx._teachers[key]


def load_or_train_teacher(
    model_cfg: Any,
    data: LowResourceData | None,
    cache_dir: str | Path | None,
    key: str,
    progress: bool = True,
) -> Any:
    """Load the cached teacher for `key`, or fine-tune one on the seed (val for early stopping) and save it."""
    from hydra.utils import instantiate

    from sentisynth.classifiers.transformer import TransformerClassifier

    if data is None:
        raise ValueError("the teacher filter needs FilterContext.data (seed and val) to train its teacher")
    cfg = dict(to_plain(model_cfg) or {})
    cfg.setdefault("_target_", "sentisynth.classifiers.transformer.TransformerClassifier")
    path = Path(cache_dir) / "teachers" / key if cache_dir else None
    # parallel study jobs that need the same teacher: the first trains it, the others wait and load it
    with entry_lock(path) if path is not None else nullcontext():
        if path is not None and is_sound(path, "teacher"):
            log.info("teacher: loading cached %s", path)
            runtime = {k: cfg[k] for k in ("trainer", "eval_batch_size", "progress") if k in cfg}
            return TransformerClassifier.load(path, **runtime)
        log.info("teacher: fine-tuning on %d seed rows (val %d) -> %s", len(data.seed), len(data.val), path)
        one_time_cost("fitting the filter teacher", teacher_estimate(cfg, len(data.seed)), path or "memory")
        t0 = time.perf_counter()
        teacher = instantiate(cfg, n_classes=data.n_classes, _convert_="all")
        teacher.log_as = "teacher"
        if path is not None and hasattr(
            teacher, "resume_dir"
        ):  # an interrupted fit resumes at its last epoch
            teacher.resume_dir = path.parent / f".{path.name}.work"
        teacher.fit(data.seed.texts, data.seed.labels, val_texts=data.val.texts, val_labels=data.val.labels)
        teacher.fit_info["fit_time_s"] = round(time.perf_counter() - t0, 1)
        if path is not None:
            from sentisynth.classifiers.io import save_classifier

            if is_rank_zero():  # DDP: rank 0 writes; the other ranks wait until the teacher is on disk
                save_classifier(
                    teacher, path, list(data.label_names)
                )  # save_pretrained + label names, for predict
            barrier()
        else:
            log.warning("teacher: no cache_dir, the fine-tuned teacher is not saved")
        return teacher


# Seconds per optimizer step of the MiniLM-L6 teacher (batch 32, 128 tokens, its validation pass included) on
# 2 CPU cores shared with other jobs: 5.6 s at 128 tokens (45 s per 8-step epoch) and 7 s at 64 tokens under
# a heavier load, measured for docs/quickstart_generation.md; scaled by batch size and length.
TEACHER_STEP_S = 6.0


def teacher_estimate(cfg: dict, n_seed: int) -> str:
    """'about N min here (S steps)' from the epochs / min_steps rule of the transformer classifier."""
    batch = int(cfg.get("batch_size", 32))
    per_epoch = max(1, -(-n_seed // batch))
    epochs = max(int(cfg.get("epochs", 4)), -(-int(cfg.get("min_steps", 0) or 0) // per_epoch))
    steps = epochs * per_epoch
    secs = steps * TEACHER_STEP_S * batch / 32 * int(cfg.get("max_length", 128)) / 128
    return f"at most {steps} steps, about {secs / 60:.1f} min on 2 CPU cores (less with early stopping)"


def saved_teacher(
    filters_cfg: Any, data: LowResourceData | None, cache_dir: str | Path | None
) -> Path | None:
    """Where the filter chain's teacher is saved (`<cache_dir>/teachers/<key>`), if it is on disk."""
    model = ((to_plain(filters_cfg) or {}).get("teacher") or {}).get("model")
    if model is None or cache_dir is None or data is None:
        return None
    from sentisynth.classifiers.transformer import META_FILE

    path = Path(cache_dir) / "teachers" / teacher_cache_key(model, data)
    return path if (path / META_FILE).is_file() else None


def precision_threshold(
    confidence: np.ndarray, correct: np.ndarray, target: float, min_support: int = 20
) -> float:
    """The lowest confidence t at which the teacher's predictions with confidence >= t are right at least
    `target` of the time (over >= `min_support` posts): the largest such high-confidence slice. When no
    slice reaches the target, the confidence of the `min_support`-th most confident post."""
    confidence, correct = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=bool)
    if len(confidence) == 0:
        raise ValueError("tau=auto needs validation posts to calibrate on")
    order = np.argsort(-confidence, kind="stable")
    precision = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    k = min(max(int(min_support), 1), len(order))
    ranked = confidence[order]
    block_end = np.append(
        ranked[1:] < ranked[:-1], True
    )  # cut only between different confidences (ties go together)
    ok = np.flatnonzero((precision >= target) & (np.arange(1, len(order) + 1) >= k) & block_end)
    return float(confidence[order[ok[-1] if len(ok) else k - 1]])


class TeacherFilter:
    """Keep when teacher label == intended label with confidence >= tau; or relabel confident samples.

    `tau="auto"` calibrates the threshold on the validation split: the lowest confidence at which the
    teacher is right `target_precision` of the time. A teacher fine-tuned on 250 posts is rarely 80%
    sure of anything, while one trained on 2,000 is often 95% sure; one fixed tau suits neither.
    """

    name = "teacher"

    def __init__(
        self,
        tau: float | str = 0.8,
        mode: str = "keep",
        model: Any = None,
        target_precision: float = 0.8,
        min_support: int = 20,
    ) -> None:
        if mode not in ("keep", "relabel"):
            raise ValueError(f"teacher.mode must be keep or relabel, got {mode!r}")
        if tau != "auto" and not (isinstance(tau, (int, float)) and 0 <= tau <= 1):
            raise ValueError(f"teacher.tau must be in [0, 1] or 'auto', got {tau!r}")
        self.tau, self.mode, self.model_cfg = tau, mode, model
        self.target_precision, self.min_support = float(target_precision), int(min_support)

    def threshold(self, teacher: Any, ctx: FilterContext) -> float:
        if self.tau != "auto":
            return float(self.tau)
        if ctx.data is None:
            raise ValueError("teacher.tau=auto needs the validation split (FilterContext.data)")
        val = ctx.data.val
        scores = teacher.score(list(val.texts))
        tau = precision_threshold(
            scores["confidence"],
            np.asarray(scores["label"]) == val.labels,
            self.target_precision,
            self.min_support,
        )
        log.info(
            "teacher: tau=auto -> %.3f (precision >= %.2f on %d val posts)",
            tau,
            self.target_precision,
            len(val),
        )
        return tau

    def apply(self, samples: list[Sample], ctx: FilterContext) -> tuple[list[Sample], list[Sample]]:
        if not samples:
            return [], []
        teacher = teacher_for(ctx, self.model_cfg)
        tau = self.threshold(teacher, ctx)
        scores = teacher.score([str(s["text"]) for s in samples])
        names = ctx.label_names
        kept, dropped = [], []
        for i, s in enumerate(samples):
            label, conf = int(scores["label"][i]), float(scores["confidence"][i])
            s["teacher"] = {
                "probs": [round(float(p), 6) for p in scores["probs"][i]],
                "label": label,
                "label_name": names[label] if names else str(label),
                "confidence": round(conf, 6),
                "tau": round(tau, 6),
            }
            intended = int(s["label"])
            if conf < tau:
                dropped.append(reject(s, "teacher_low_confidence", f"confidence {conf:.2f} < tau {tau:.2f}"))
            elif label == intended:
                kept.append(s)
            elif self.mode == "relabel":
                s["original_label"], s["original_label_name"] = intended, s.get("label_name")
                s["label"], s["label_name"] = label, s["teacher"]["label_name"]
                s["relabelled"] = True
                kept.append(s)
            else:
                dropped.append(
                    reject(
                        s,
                        "teacher_disagrees",
                        f"teacher says {s['teacher']['label_name']} ({conf:.2f}), intended "
                        f"{s.get('label_name', intended)}",
                    )
                )
        return kept, dropped
