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
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from sentisynth.augment import Augmentation
from sentisynth.data import DataError, LowResourceData, Split
from sentisynth.evaluation import classification_metrics, confusion, plot_confusion
from sentisynth.tracking import NullTracker, Tracker
from sentisynth.utils import seed_everything, write_json

log = logging.getLogger(__name__)


def build(node: DictConfig | None, **kwargs: Any) -> Any:
    """`hydra.utils.instantiate`, but our own input errors surface as themselves, not wrapped."""
    if node is None:
        return None
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as e:
        cause = e.__cause__
        while cause is not None and not isinstance(cause, (DataError, FileNotFoundError)):
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        raise


def run_dir_of(cfg: DictConfig) -> Path:
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out


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
    for j, n in enumerate(label_names):
        frame[f"prob/{n}"] = np.round(proba[:, j], 6)
    return frame


def print_summary(metrics: dict[str, float], label_names: list[str], header: str) -> None:
    width = max(12, *(len(n) for n in label_names))
    lines = [header, f"{'':{width}}  {'val':>7}  {'test':>7}"]
    for key in ("macro_f1", "accuracy"):
        lines.append(f"{key:{width}}  {metrics[f'val/{key}']:7.4f}  {metrics[f'test/{key}']:7.4f}")
    for n in label_names:
        lines.append(f"{'F1 ' + n:{width}}  {metrics[f'val/f1/{n}']:7.4f}  {metrics[f'test/f1/{n}']:7.4f}")
    print("\n".join(lines), flush=True)


def run(cfg: DictConfig) -> dict[str, float]:
    """Run one arm and return its metrics (also written to `metrics.json`)."""
    t0 = time.perf_counter()
    seed_everything(int(cfg.seed))
    out = run_dir_of(cfg)

    data: LowResourceData = build(cfg.data)
    classifier = build(cfg.classifier, n_classes=data.n_classes)
    augmenter = build(cfg.augment)
    aug: Augmentation = augmenter(data, cfg=cfg, run_dir=out, classifier_cfg=cfg.classifier)
    t_data = time.perf_counter()

    train = Split.concat(data.seed, aug.split)
    weights = None
    if aug.sample_weight is not None:
        weights = np.concatenate([np.ones(len(data.seed)), aug.sample_weight])
    fit_kwargs: dict[str, Any] = {}
    if aug.soft_labels is not None:
        fit_kwargs["soft_labels"] = aug.soft_labels
        fit_kwargs["n_seed"] = len(data.seed)
    classifier.fit(train.texts, train.labels, sample_weight=weights, val_texts=data.val.texts,
                   val_labels=data.val.labels, **fit_kwargs)
    t_fit = time.perf_counter()

    names = data.label_names
    val_metrics, val_proba = evaluate(classifier, data.val, names, "val")
    test_metrics, test_proba = evaluate(classifier, data.test, names, "test")
    metrics: dict[str, float] = {
        **test_metrics,
        **val_metrics,
        "train/n_seed": len(data.seed),
        "train/n_real": len(aug.split) if aug.source == "real" else 0,
        "train/n_synthetic": len(aug.split) if aug.source == "synthetic" else 0,
        "train/n_pseudo": len(aug.split) if aug.source == "pseudo" else 0,
        "train/n_total": len(train),
        "train/n_pool": len(data.pool),
    }
    for c, n in enumerate(names):
        metrics[f"train/n/{n}"] = int((train.labels == c).sum())
    t_eval = time.perf_counter()

    write_json(out / "metrics.json", metrics)
    write_json(out / "timings.json", {"time/data_s": t_data - t0, "time/fit_s": t_fit - t_data,
                                      "time/eval_s": t_eval - t_fit, "time/total_s": t_eval - t0})
    write_json(out / "data_summary.json", {**data.summary(), "augmentation": aug.source, **aug.info,
                                           "notes": list(data.dataset.notes)})
    if cfg.get("save_predictions", True):
        frame = pd.concat([predictions_frame(data.val, val_proba, names, "val"),
                           predictions_frame(data.test, test_proba, names, "test")])
        tmp = out / ".predictions.csv.tmp"
        frame.to_csv(tmp, index=False)
        tmp.replace(out / "predictions.csv")
    cm = confusion(data.test.labels, test_proba.argmax(axis=1), data.n_classes)
    cm_path = plot_confusion(cm, names, out / "confusion_test.png", title=f"test, {aug.source} augmentation")

    tracker: Tracker = build(cfg.get("logger")) or NullTracker()
    tracker.start(OmegaConf.to_container(cfg, resolve=True), name=out.name)
    try:
        tracker.log_metrics(metrics)
        tracker.log_table("test/per_class", ["class", "precision", "recall", "f1", "support"],
                          [[n, metrics[f"test/precision/{n}"], metrics[f"test/recall/{n}"],
                            metrics[f"test/f1/{n}"], metrics[f"test/support/{n}"]] for n in names])
        tracker.log_table("test/confusion_matrix", ["gold"] + names,
                          [[names[i]] + cm[i].tolist() for i in range(len(names))])
        tracker.log_image("test/confusion_matrix_plot", cm_path)
    finally:
        tracker.finish()

    print_summary(metrics, names, f"{data.dataset.name} | seed {len(data.seed)} + {aug.source} "
                                  f"{len(aug.split)} | {out}")
    log.info("run finished in %.1fs (fit %.1fs)", t_eval - t0, t_fit - t_data)
    return metrics
