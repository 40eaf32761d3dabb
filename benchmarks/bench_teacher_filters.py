"""Benchmark: MiniLM teacher fine-tuning (time, test macro-F1), scoring throughput, each filter on 10k samples.

    SENTISYNTH_DATA_DIR=../shared/data python benchmarks/bench_teacher_filters.py
    python benchmarks/bench_teacher_filters.py --skip-teacher --n-samples 10000   # filters only

Samples for the filter timings are real unlabelled tweets (`corpus/tweets_unlabeled.txt`) with random
intended labels, plus injected copies of test posts (which must all be dropped). The perplexity
filter is timed with a unigram scorer fitted on the corpus: the generator's own LM is what a real run
uses, and its cost belongs to the generator. CPU time is printed next to wall time because other
jobs may share the cores.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import f1_score

from sentisynth.data import load_data
from sentisynth.filters import (
    DedupFilter,
    DiversityFilter,
    FilterChain,
    FilterContext,
    HeuristicFilter,
    PerplexityFilter,
    TeacherFilter,
)
from sentisynth.utils import write_json


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def unigram_scorer(corpus: list[str]):
    counts = Counter(w for t in corpus for w in t.lower().split())
    total, vocab = sum(counts.values()), len(counts) + 1

    def score(texts: list[str]) -> np.ndarray:
        out = []
        for t in texts:
            ws = t.lower().split() or [""]
            out.append(float(np.exp(-np.mean([np.log((counts[w] + 1) / (total + vocab)) for w in ws]))))
        return np.array(out)

    return score


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("SENTISYNTH_DATA_DIR", "../shared/data"))
    ap.add_argument("--seed-size", default="1000")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--n-samples", type=int, default=10_000)
    ap.add_argument("--skip-teacher", action="store_true", help="time the filters without the teacher")
    ap.add_argument("--skip-filters", action="store_true", help="only the teacher: fine-tuning and scoring")
    ap.add_argument("--out", default="outputs/bench_teacher_filters.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    from sentisynth.classifiers.transformer import TransformerClassifier

    seed_size = args.seed_size if args.seed_size == "full" else int(args.seed_size)
    data = load_data("tweet_eval", seed_size=seed_size, seed=0, task="emotion", data_dir=args.data_dir)
    results: dict[str, float] = {"torch_threads": torch.get_num_threads(), "n_seed": len(data.seed)}
    teacher = None
    if not args.skip_teacher:
        t0, c0 = time.perf_counter(), cpu_s()
        teacher = TransformerClassifier(
            "minilm",
            n_classes=data.n_classes,
            lr=args.lr,
            epochs=args.epochs,
            trainer={"accelerator": "cpu", "enable_progress_bar": False},
            seed=0,
        )
        teacher.fit(data.seed.texts, data.seed.labels, val_texts=data.val.texts, val_labels=data.val.labels)
        results["teacher/fit_wall_s"] = time.perf_counter() - t0
        results["teacher/fit_cpu_s"] = cpu_s() - c0
        results["teacher/epochs_run"] = teacher.fit_info.get("epochs_run", -1)
        results["teacher/best_val_macro_f1"] = teacher.fit_info.get("best_val_macro_f1", float("nan"))
        t0 = time.perf_counter()
        pred = teacher.predict(data.test.texts)
        dt = time.perf_counter() - t0
        results["teacher/test_macro_f1"] = float(f1_score(data.test.labels, pred, average="macro"))
        results["teacher/score_samples_per_s"] = len(data.test) / dt

    if args.skip_filters:
        for k, v in results.items():
            print(f"{k}  {v:.4f}" if isinstance(v, float) else f"{k}  {v}")
        write_json(args.out, results)
        return
    corpus_path = Path(args.data_dir) / "corpus" / "tweets_unlabeled.txt"
    corpus = corpus_path.read_text(encoding="utf-8").splitlines()
    rng = np.random.default_rng(0)
    rows = rng.choice(len(corpus), size=args.n_samples, replace=False)
    texts = [corpus[i] for i in rows]
    n_leak = min(50, len(data.test))
    texts[:n_leak] = data.test.texts[:n_leak]  # injected leaks
    labels = rng.integers(0, data.n_classes, size=len(texts))
    samples = [
        {"id": f"b{i}", "text": t, "label": int(y), "label_name": data.label_names[y], "provenance": {}}
        for i, (t, y) in enumerate(zip(texts, labels))
    ]
    ctx = FilterContext(
        data=data,
        lm_scorer=unigram_scorer(corpus[:20000]),
        teacher=teacher,
        budget_per_class=args.n_samples // (2 * data.n_classes),
        progress=False,
    )
    filters = [HeuristicFilter(), DedupFilter(), PerplexityFilter(percentile=95)]
    if teacher is not None:
        filters.append(TeacherFilter(tau=0.8))
    filters.append(DiversityFilter())
    for f in filters:  # each on the full sample set, so timings compare
        t0 = time.perf_counter()
        kept, _ = f.apply([dict(s) for s in samples], ctx)
        results[f"filter/{f.name}/s_per_10k"] = (time.perf_counter() - t0) * 10_000 / len(samples)
        results[f"filter/{f.name}/kept"] = len(kept)
    chain = FilterChain(filters, ctx).apply(samples)
    leaked = sum(1 for s in chain.kept if s["id"] in {f"b{i}" for i in range(n_leak)})
    results["chain/n_in"], results["chain/n_kept"] = len(samples), len(chain.kept)
    results["chain/injected_test_copies_surviving"] = leaked

    width = max(len(k) for k in results)
    for k, v in results.items():
        print(f"{k:{width}}  {v:.4f}" if isinstance(v, float) else f"{k:{width}}  {v}")
    write_json(args.out, results)
    print(f"wrote {args.out}")
    print(json.dumps(chain.report["per_class"]))


if __name__ == "__main__":
    main()
