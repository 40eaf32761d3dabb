"""Benchmark the SHAP guidance step against the model-agnostic route, in one run.

    SENTISYNTH_DATA_DIR=../shared/data python benchmarks/bench_guidance.py [--models lr,xgb] [--posts-per-class 1]

On the full TweetEval emotion train set: times the guidance step (classifier fit + attributions +
ranking + exemplars, the conf/classifier and conf/shap/default.yaml settings) for tfidf_lr and
tfidf_xgb. Then, for the fitted tfidf_lr model, times the model-agnostic route: shap's permutation
algorithm on `predict_proba` over the TF-IDF features, `max_evals = 2 * n_features + 1` (one
permutation), 100 background rows, on a few posts (at least one per class), and extrapolates the
mean per-post time to the 800 posts (200 per class) that route needs. Prints both times and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf
from threadpoolctl import threadpool_limits

from sentisynth.cli import build
from sentisynth.data import load_data
from sentisynth.guidance.permutation import permutation_shap
from sentisynth.guidance.stage import fit_and_build, summary_lines

ROOT = Path(__file__).resolve().parents[1]


def load_cfg(group: str, name: str, seed: int = 0) -> dict:
    cfg = OmegaConf.merge({"seed": seed}, {"node": OmegaConf.load(ROOT / "conf" / group / f"{name}.yaml")})
    return OmegaConf.to_container(cfg, resolve=True)["node"]


def check_against_shap(seed: int = 0) -> float:
    """Our batched permutation route vs shap.explainers.Permutation, same seed, on a small problem."""
    import scipy.sparse as sp
    import shap

    B = sp.random(20, 40, density=0.2, random_state=seed, format="csr")
    x = sp.random(1, 40, density=0.3, random_state=seed + 1, format="csr")
    w = np.random.default_rng(seed).normal(size=(40, 4))

    def f(Z):
        z = np.asarray(Z @ w)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    np.random.seed(seed)
    ours = permutation_shap(f, x, B, batch_rows=16).values
    explainer = shap.explainers.Permutation(f, shap.maskers.Independent(B.toarray()), seed=seed)
    theirs = explainer(x.toarray(), max_evals=2 * 40 + 1, silent=True).values[0]
    return float(np.abs(ours - theirs).max())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--models", default="lr,xgb", help="comma-separated: lr, svm, xgb (tfidf_<model> configs)"
    )
    ap.add_argument(
        "--posts-per-class", type=int, default=1, help="posts timed on the permutation route per class"
    )
    ap.add_argument(
        "--route-posts", type=int, default=800, help="posts the model-agnostic route needs (200/class)"
    )
    ap.add_argument("--background", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()

    diff = check_against_shap(args.seed)
    print(f"batched permutation route vs shap.explainers.Permutation (same seed): max |diff| = {diff:.2e}")
    if diff > 1e-9:
        sys.exit("error: the batched permutation route does not reproduce shap's values")

    data_dir = os.environ.get("SENTISYNTH_DATA_DIR")
    if not data_dir or not (Path(data_dir) / "tweeteval" / "emotion").is_dir():
        sys.exit("error: set SENTISYNTH_DATA_DIR to a directory with tweeteval/emotion (e.g. ../shared/data)")
    data = load_data("tweet_eval", seed_size="full", seed=args.seed, task="emotion", data_dir=data_dir)
    seed, names = data.seed, data.label_names
    keyword_cfg = load_cfg("keywords", "default", args.seed)
    print(
        f"TweetEval emotion train: {len(seed)} posts, classes {dict(zip(names, seed.class_counts(4).tolist()))}"
    )

    figures: dict[str, float] = {}
    fitted = {}
    for model in args.models.split(","):
        clf = build(
            OmegaConf.create(load_cfg("classifier", f"tfidf_{model}", args.seed)), n_classes=data.n_classes
        )
        guidance, t = fit_and_build(clf, seed, names, keyword_cfg)
        fitted[model] = clf
        figures.update({f"guidance_{model}_{k}": v for k, v in t.items()})
        print(
            f"\nguidance step tfidf_{model}: {t['time_s']:.2f}s wall, {t['cpu_s']:.2f}s CPU (fit {t['fit_s']:.2f}s, "
            f"explain+rank+exemplars {t['time_s'] - t['fit_s']:.2f}s); load average {os.getloadavg()[0]:.1f}"
        )
        print("\n".join(summary_lines(guidance, 8)))
        print(acceptance(guidance))

    if "lr" not in fitted:
        print("\n(permutation route skipped: it is timed on tfidf_lr; add lr to --models)")
        return
    clf = fitted["lr"]
    X = clf.transform(seed.texts)
    rng = np.random.default_rng(args.seed)
    background = X[np.sort(rng.choice(X.shape[0], args.background, replace=False))]
    posts = np.concatenate(
        [
            rng.choice(np.flatnonzero(seed.labels == c), args.posts_per_class, replace=False)
            for c in range(data.n_classes)
        ]
    )
    print(
        f"\nmodel-agnostic route (permutation, max_evals = 2 * n_features + 1, {args.background} background "
        f"rows, {X.shape[1]} features) on {len(posts)} posts:"
    )
    times: list[float] = []
    cpu: list[float] = []
    np.random.seed(args.seed)  # shap's permutation explainer draws its permutation from np.random
    with threadpool_limits(keyword_cfg.get("blas_threads") or None, user_api="blas"):
        for r in posts:
            t, c = time.perf_counter(), time.process_time()
            res = permutation_shap(clf.predict_proba_features, X[r], background)
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
            print(
                f"  post {seed.index[r]} ({names[seed.labels[r]]}): {times[-1]:.2f}s wall, {cpu[-1]:.2f}s CPU, "
                f"{res.n_model_rows} model rows, top word: {_top_word(clf, res.values, seed.labels[r])}"
            )
    per_post = float(np.mean(times))
    route = per_post * args.route_posts
    route_cpu = float(np.mean(cpu)) * args.route_posts
    figures.update(
        {
            "permutation_per_post_s": per_post,
            "permutation_route_s": route,
            "permutation_route_cpu_s": route_cpu,
            "speed_ratio_lr": route / figures["guidance_lr_time_s"],
            "speed_ratio_lr_cpu": route_cpu / figures["guidance_lr_cpu_s"],
        }
    )
    print(f"\nguidance step (tfidf_lr, incl. fit):       {figures['guidance_lr_time_s']:10.2f} s")
    if "xgb" in fitted:
        print(f"guidance step (tfidf_xgb, incl. fit):      {figures['guidance_xgb_time_s']:10.2f} s")
    print(
        f"model-agnostic route, {args.route_posts} posts (extrapolated): {route:10.1f} s "
        f"({per_post:.2f} s/post x {args.route_posts})"
    )
    print(
        f"speed ratio (route / tfidf_lr guidance):   {figures['speed_ratio_lr']:10.1f}x wall, "
        f"{figures['speed_ratio_lr_cpu']:.1f}x CPU time"
    )
    if "xgb" in fitted:
        figures["speed_ratio_xgb"] = route / figures["guidance_xgb_time_s"]
        print(f"speed ratio (route / tfidf_xgb guidance):  {figures['speed_ratio_xgb']:10.1f}x")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


ANGER = {
    "angry",
    "#angry",
    "anger",
    "#anger",
    "fuming",
    "#fuming",
    "rage",
    "#rage",
    "raging",
    "furious",
    "outrage",
    "#outrage",
    "irritate",
    "hate",
}
SADNESS = {
    "sad",
    "#sad",
    "sadness",
    "#sadness",
    "depression",
    "#depression",
    "depressing",
    "sadly",
    "mourn",
    "unhappy",
}


def acceptance(guidance) -> str:
    """The issue's keyword criteria on the top-20 lists."""
    anger, sadness, joy = (set(guidance.keywords(n, 20)) for n in ("anger", "sadness", "joy"))
    ok = (
        len(anger & ANGER) >= 4
        and len(sadness & SADNESS) >= 4
        and not anger & {"sad", "#sad"}
        and "anger" not in joy
    )
    return (
        f"criteria: top-20 anger words from the issue's list {len(anger & ANGER)} (need >= 4), sadness "
        f"{len(sadness & SADNESS)} (need >= 4), sad/#sad among anger: {sorted(anger & {'sad', '#sad'}) or 'no'}, "
        f"anger among joy: {'yes' if 'anger' in joy else 'no'} -> {'PASS' if ok else 'FAIL'}"
    )


def _top_word(clf, values: np.ndarray, label: int) -> str:
    words = clf.word_slice
    j = int(np.argmax(values[words, label]))
    return str(clf.feature_names[words][j]).removeprefix("word__")


if __name__ == "__main__":
    main()
