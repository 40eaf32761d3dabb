"""`generate.py stage=guidance`: fit the guidance classifier on the seed, write guidance.json + a keyword plot."""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from threadpoolctl import threadpool_limits

from sentisynth.cli import build, open_tracker, run_dir_of
from sentisynth.data import Split
from sentisynth.guidance.core import Guidance, build_guidance
from sentisynth.tracking import Tracker
from sentisynth.utils import pyplot, save_figure, seed_everything, to_plain, write_json

log = logging.getLogger(__name__)


def plot_keywords(guidance: Guidance, path: str | Path, top: int = 15) -> Path:
    """One PNG: a horizontal bar chart of the top keywords (combined score) per class, one panel each."""
    plt = pyplot()

    names = list(guidance.classes)
    cols = min(4, len(names))
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 0.28 * top * rows + 1.2), squeeze=False)
    for ax, name in zip(axes.ravel(), names):
        kws = guidance.classes[name].keywords[:top][::-1]
        ax.barh([k.term for k in kws], [k.score for k in kws], color="tab:blue")
        ax.set_title(name)
        ax.set_xlabel("combined score")
        ax.tick_params(axis="y", labelsize=8)
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    fig.suptitle(f"top keywords per class ({guidance.classifier}, {guidance.n_seed} seed posts)")
    return save_figure(fig, path)


def summary_lines(guidance: Guidance, k: int = 10) -> list[str]:
    width = max(len(n) for n in guidance.classes)
    return [f"{n:{width}}  {', '.join(guidance.keywords(n, k))}" for n in guidance.classes]


def fit_and_build(
    classifier: Any, seed: Split, label_names: list[str], keyword_cfg: dict[str, Any]
) -> tuple[Guidance, dict[str, float]]:
    """The timed guidance step: fit on the seed, explain, rank, pick exemplars.

    Returns the guidance and `{"fit_s", "time_s", "cpu_s"}`: wall seconds for the fit and the whole
    step, and the process CPU seconds of the step summed over threads (for the single-threaded lr/svm
    route on a shared, busy machine, this is close to the wall time an idle machine would give).
    """
    t0, c0 = time.perf_counter(), time.process_time()
    threads = keyword_cfg.get("blas_threads", 1)
    with threadpool_limits(threads, user_api="blas") if threads else nullcontext():
        classifier.fit(seed.texts, seed.labels)
    t_fit = time.perf_counter()
    guidance = build_guidance(classifier, seed, label_names, **keyword_cfg)
    return guidance, {
        "fit_s": t_fit - t0,
        "time_s": time.perf_counter() - t0,
        "cpu_s": time.process_time() - c0,
    }


def run_guidance_stage(cfg: DictConfig) -> dict[str, float]:
    """Load data, fit `cfg.classifier` on the seed, build guidance; write guidance.json, keywords.png, metrics."""
    out = run_dir_of(cfg)
    with open_tracker(cfg, out.name, job_type="guidance") as tracker:
        return guidance_job(cfg, out, tracker)


def guidance_job(cfg: DictConfig, out: Path, tracker: Tracker) -> dict[str, float]:
    seed_everything(int(cfg.seed))
    data = build(cfg.data)
    keyword_cfg: dict[str, Any] = to_plain(cfg.get("keywords")) or {}
    classifier = build(cfg.classifier, n_classes=data.n_classes)
    guidance, t = fit_and_build(classifier, data.seed, data.label_names, keyword_cfg)

    guidance.save(out / "guidance.json")
    plot = plot_keywords(guidance, out / "keywords.png")
    metrics: dict[str, float] = {"guidance/n_seed": len(data.seed)}
    for name, g in guidance.classes.items():
        metrics[f"guidance/n_keywords/{name}"] = len(g.keywords)
        metrics[f"guidance/n_fallback_keywords/{name}"] = sum(k.source != "shap" for k in g.keywords)
        metrics[f"guidance/n_exemplars/{name}"] = len(g.exemplars)
    timings = {
        "guidance/time_s": t["time_s"],
        "guidance/fit_s": t["fit_s"],
        "guidance/explain_s": t["time_s"] - t["fit_s"],
        "guidance/cpu_s": t["cpu_s"],
    }
    write_json(out / "metrics.json", metrics)  # deterministic; times go apart, to timings.json
    write_json(out / "timings.json", timings)
    metrics.update(timings)

    tracker.log_metrics(metrics)
    tracker.log_table(
        "guidance/keywords",
        ["class", "rank", "term", "shap", "tfidf_diff", "score"],
        [
            [n, i + 1, k.term, k.shap, k.tfidf_diff, k.score]
            for n, g in guidance.classes.items()
            for i, k in enumerate(g.keywords)
        ],
    )
    tracker.log_image("guidance/keywords_plot", plot)
    tracker.log_artifact(out / "guidance.json", name="guidance", kind="guidance")

    print(
        f"guidance: {guidance.classifier} on {len(data.seed)} seed posts, {t['time_s']:.1f}s "
        f"(fit {t['fit_s']:.1f}s, CPU {t['cpu_s']:.1f}s) -> {out / 'guidance.json'}",
        flush=True,
    )
    print("\n".join(summary_lines(guidance)), flush=True)
    return metrics
