"""Benchmark: the per-set costs that the offline study paid again and again, old way against new, side by side.

    SENTISYNTH_DATA_DIR=../shared/data python benchmarks/bench_filter_rounds.py

1. Self-BLEU of 100 posts (every synthetic cell's linguistic report computes it per class: 5 groups per set):
   sacrebleu.sentence_bleu once per hypothesis against the 99 others (the old code), and
   `sentisynth.analysis.self_bleu` (each post tokenised and counted once). Same number, asserted.
2. Dedup over the 4 generate -> filter rounds of one generated set (candidates grow each round, and each round
   re-filters all of them): a fresh FilterContext per round (the old cost: reference LSH and every MinHash
   rebuilt each round) against one context for all rounds (what `generation.pipeline` does). Same decisions,
   asserted.
Posts are real unlabelled tweets (`corpus/tweets_unlabeled.txt`); the real splits are TweetEval emotion's.
"""

from __future__ import annotations

import argparse
import os
import random
import time

import numpy as np

from sentisynth.analysis import self_bleu
from sentisynth.data import load_data
from sentisynth.filters import DedupFilter, FilterContext


def old_self_bleu(texts: list[str], sample: int = 100, seed: int = 0) -> float:
    import sacrebleu

    picked = random.Random(seed).sample(texts, min(sample, len(texts)))
    scores = [
        sacrebleu.sentence_bleu(h, picked[:i] + picked[i + 1 :], tokenize="13a").score
        for i, h in enumerate(picked)
    ]
    return float(np.mean(scores)) / 100.0


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def bench_self_bleu(corpus: list[str], groups: int) -> None:
    rng = random.Random(0)
    sets = [rng.sample(corpus, 1000) for _ in range(groups)]
    old = new = 0.0
    for texts in sets:
        a, t_old = timed(old_self_bleu, texts)
        b, t_new = timed(self_bleu, texts)
        assert abs(a - b) < 1e-12, (a, b)
        old, new = old + t_old, new + t_new
    print(
        f"self-BLEU, {groups} groups of 100 posts: sacrebleu per hypothesis {old:.2f} s, "
        f"once per post {new:.3f} s -> {old / new:.0f}x"
    )


def bench_dedup_rounds(corpus: list[str], data, rounds: list[int]) -> None:
    samples = [{"id": f"s{i}", "text": t, "label": i % 4} for i, t in enumerate(corpus[: max(rounds)])]
    f = DedupFilter()
    fresh = shared = 0.0
    ctx = FilterContext(data=data, progress=False)
    for n in rounds:
        (k1, d1), t1 = timed(
            f.apply, [dict(s) for s in samples[:n]], FilterContext(data=data, progress=False)
        )
        (k2, d2), t2 = timed(f.apply, [dict(s) for s in samples[:n]], ctx)
        assert [s["id"] for s in k1] == [s["id"] for s in k2]
        fresh, shared = fresh + t1, shared + t2
    n_real = sum(len(getattr(data, s)) for s in ("seed", "pool", "val", "test"))
    print(
        f"dedup over {len(rounds)} rounds of {rounds} candidates against {n_real} real posts: "
        f"a fresh context per round {fresh:.2f} s, one context {shared:.2f} s -> {fresh / shared:.1f}x"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("SENTISYNTH_DATA_DIR", "../shared/data"))
    ap.add_argument("--groups", type=int, default=10, help="self-BLEU groups (a set's report has 5 per set)")
    args = ap.parse_args()
    with open(os.path.join(args.data_dir, "corpus", "tweets_unlabeled.txt"), encoding="utf-8") as fh:
        corpus = [line.strip() for line in fh if line.strip()][:20_000]
    bench_self_bleu(corpus, args.groups)
    data = load_data("tweet_eval", seed_size=1000, seed=0, task="emotion", data_dir=args.data_dir)
    # the rounds of a generated set in offline_tweeteval: about 1,800, 2,700, 3,300, 3,600 candidates
    bench_dedup_rounds(corpus, data, [1800, 2700, 3300, 3600])


if __name__ == "__main__":
    main()
