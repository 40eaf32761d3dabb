"""One experiment arm: load data, augment the seed, fit the downstream classifier, evaluate, record.

Everything a run produces lands in its Hydra run directory: `metrics.json` (flat `/` keys, the same
for the same config and seed), `predictions.csv`, `confusion_test.png`, `timings.json`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from sentisynth.augment import Augmentation
from sentisynth.cli import build, tracked_job
from sentisynth.data import LowResourceData, Split
from sentisynth.evaluation import classification_metrics, confusion, plot_confusion
from sentisynth.tracking import Tracker
from sentisynth.utils import is_rank_zero, seed_everything, to_plain, write_json

log = logging.getLogger(__name__)


def evaluate(
    classifier: Any, split: Split, label_names: list[str], prefix: str
) -> tuple[dict[str, float], np.ndarray]:
    proba = classifier.predict_proba(split.texts)
    pred = proba.argmax(axis=1)
    return classification_metrics(split.labels, pred, label_names, prefix), proba


def predictions_frame(split: Split, proba: np.ndarray, label_names: list[str], name: str) -> pd.DataFrame:
    pred = proba.argmax(axis=1)
    frame = pd.DataFrame(
        {
            "split": name,
            "index": split.index,
            "text": split.texts,
            "gold": [label_names[i] for i in split.labels],
            "predicted": [label_names[i] for i in pred],
        }
    )
    probs = pd.DataFrame(np.round(proba, 6), columns=[f"prob/{n}" for n in label_names])
    return pd.concat([frame, probs], axis=1)  # one concat: 200 column inserts warned 200 times (fragmented)


def print_summary(metrics: dict[str, float], label_names: list[str], header: str) -> None:
    width = max(12, *(len(n) for n in label_names))
    lines = [header, f"{'':{width}}  {'val':>7}  {'test':>7}"]
    for key in ("macro_f1", "accuracy"):
        lines.append(f"{key:{width}}  {metrics[f'val/{key}']:7.4f}  {metrics[f'test/{key}']:7.4f}")
    for n in label_names:
        lines.append(f"{'F1 ' + n:{width}}  {metrics[f'val/f1/{n}']:7.4f}  {metrics[f'test/f1/{n}']:7.4f}")
    print("\n".join(lines), flush=True)


def save_models(cfg: DictConfig, out: Path, classifier: Any, names: list[str], teacher: str | None) -> None:
    """The fitted classifier in `<run>/model/` (`save_model=false` skips it) and `models.json` naming it and
    the filter teacher (saved in the cache), for `python -m sentisynth.predict <run dir> texts.txt`."""
    saved = None
    if cfg.get("save_model", True):
        from sentisynth.classifiers.io import save_classifier

        saved = save_classifier(classifier, out / "model", names).name
    write_json(out / "models.json", {"classifier": saved, "teacher": teacher})


def training_set(
    data: LowResourceData, aug: Augmentation, guard: Any
) -> tuple[Split, int, int, Any, dict, dict]:
    """Seed + augmentation after the leak guard (`sentisynth.filters.leak`), which no config can skip:
    (train, n_seed, n_extra, sample weights, extra fit kwargs, leak counts)."""
    from sentisynth.filters.leak import guard_training_set

    guard = to_plain(guard) or {}
    train = Split.concat(data.seed, aug.split)
    sources = ["seed"] * len(data.seed) + [aug.source] * len(aug.split)
    keep, leak = guard_training_set(
        train, sources, data, str(guard.get("on_overlap", "drop")), float(guard.get("threshold", 0.7))
    )
    n_seed = int((keep < len(data.seed)).sum())
    extra = keep[keep >= len(data.seed)] - len(data.seed)
    weights = None
    if aug.sample_weight is not None:
        weights = np.concatenate([np.ones(n_seed), np.asarray(aug.sample_weight)[extra]])
    fit_kwargs: dict[str, Any] = {}
    if aug.soft_labels is not None:
        fit_kwargs["soft_labels"] = np.asarray(aug.soft_labels)[extra]
        fit_kwargs["n_seed"] = n_seed
    leak["leak/dropped_from_file"] = int(aug.info.get("leak_dropped_from_file", 0))
    return train.subset(keep), n_seed, len(extra), weights, fit_kwargs, leak


def fit(
    classifier: Any, data: LowResourceData, aug: Augmentation, guard: Any = None
) -> tuple[Split, dict[str, float]]:
    """Fit on the guarded seed + augmentation (with its weights and soft labels, if any); returns the
    training split and its counts (`train/*`, `leak/*` metrics)."""
    train, n_seed, n_extra, weights, fit_kwargs, leak = training_set(data, aug, guard)
    classifier.fit(
        train.texts,
        train.labels,
        sample_weight=weights,
        val_texts=data.val.texts,
        val_labels=data.val.labels,
        **fit_kwargs,
    )
    return train, {**count_metrics(data, aug, train, n_seed, n_extra), **leak}


def count_metrics(
    data: LowResourceData, aug: Augmentation, train: Split, n_seed: int, n_extra: int
) -> dict[str, float]:
    """How many rows of each kind (and class) the classifier trained on (after the leak guard)."""
    metrics: dict[str, float] = {
        "train/n_seed": n_seed,
        **{
            f"train/n_{kind}": n_extra if aug.source == kind else 0
            for kind in ("real", "synthetic", "pseudo")
        },
        "train/n_total": len(train),
        "train/n_pool": len(data.pool),
    }
    for c, n in enumerate(data.label_names):
        metrics[f"train/n/{n}"] = int((train.labels == c).sum())
    return metrics


def write_predictions(
    out: Path, data: LowResourceData, val_proba: np.ndarray, test_proba: np.ndarray
) -> None:
    names = data.label_names
    frame = pd.concat(
        [
            predictions_frame(data.val, val_proba, names, "val"),
            predictions_frame(data.test, test_proba, names, "test"),
        ]
    )
    tmp = out / ".predictions.csv.tmp"
    frame.to_csv(tmp, index=False)
    tmp.replace(out / "predictions.csv")


def log_run(
    tracker: Tracker, metrics: dict[str, float], names: list[str], cm: np.ndarray, cm_path: Path
) -> None:
    """Metrics, the per-class table and the confusion matrix to the run's logger."""
    tracker.log_metrics(metrics)
    tracker.log_table(
        "test/per_class",
        ["class", "precision", "recall", "f1", "support"],
        [
            [
                n,
                metrics[f"test/precision/{n}"],
                metrics[f"test/recall/{n}"],
                metrics[f"test/f1/{n}"],
                metrics[f"test/support/{n}"],
            ]
            for n in names
        ],
    )
    tracker.log_table(
        "test/confusion_matrix", ["gold"] + names, [[names[i]] + cm[i].tolist() for i in range(len(names))]
    )
    tracker.log_image("test/confusion_matrix_plot", cm_path)


def augmented_data(cfg: DictConfig, out: Path) -> tuple[LowResourceData, Augmentation]:
    """Load the data and build the arm's extra training rows (what a study prepares once per seed set)."""
    seed_everything(int(cfg.seed))
    data: LowResourceData = build(cfg.data)
    return data, build(cfg.augment)(data, run_dir=out)


def run(cfg: DictConfig) -> dict[str, float]:
    """Run one arm and return its metrics (also written to `metrics.json`). The tracker starts first, so
    the curves of every Trainer in the arm (teacher, generator, classifier) reach it while they train."""
    return tracked_job(cfg, "train", run_arm)


def run_arm(cfg: DictConfig, out: Path, tracker: Tracker) -> dict[str, float]:
    """Data -> augmentation -> fit -> evaluate -> run files and tracker."""
    t0 = time.perf_counter()
    data, aug = augmented_data(cfg, out)
    classifier = build(cfg.classifier, n_classes=data.n_classes)
    t_data = time.perf_counter()
    train, counts = fit(classifier, data, aug, cfg.get("leak_guard"))
    t_fit = time.perf_counter()
    if (
        not is_rank_zero()
    ):  # DDP: every rank holds the same restored best weights; rank 0 evaluates and writes
        return {}

    names = data.label_names
    val_metrics, val_proba = evaluate(classifier, data.val, names, "val")
    test_metrics, test_proba = evaluate(classifier, data.test, names, "test")
    metrics: dict[str, float] = {**test_metrics, **val_metrics, **counts}
    t_eval = time.perf_counter()

    write_json(out / "metrics.json", metrics)
    write_json(
        out / "timings.json",
        {
            "time/data_s": t_data - t0,
            "time/fit_s": t_fit - t_data,
            "time/eval_s": t_eval - t_fit,
            "time/total_s": t_eval - t0,
        },
    )
    write_json(
        out / "data_summary.json",
        {**data.summary(), "augmentation": aug.source, **aug.info, "notes": list(data.dataset.notes)},
    )
    if cfg.get("save_predictions", True):
        write_predictions(out, data, val_proba, test_proba)
    save_models(cfg, out, classifier, names, aug.info.get("teacher"))
    cm = confusion(data.test.labels, test_proba.argmax(axis=1), data.n_classes)
    cm_path = plot_confusion(cm, names, out / "confusion_test.png", title=f"test, {aug.source} augmentation")
    log_run(tracker, metrics, names, cm, cm_path)

    n_extra = int(metrics.get(f"train/n_{aug.source}", 0))
    print_summary(
        metrics,
        names,
        f"{data.dataset.name} | seed {int(metrics['train/n_seed'])} + {aug.source} {n_extra} | {out}",
    )
    log.info("run finished in %.1fs (fit %.1fs)", t_eval - t0, t_fit - t_data)
    return metrics
