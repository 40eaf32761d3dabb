"""Benchmark: what the diversity tools see on real posts (docs/diversity.md), without a generator.

    OMP_NUM_THREADS=1 SENTISYNTH_DATA_DIR=../shared/data python benchmarks/bench_diversity.py

TweetEval emotion, seed size 500 (data seed 0). Sets of 500 posts: the seed; 500 real pool posts; `near_copies`,
a collapsed generator's output simulated from 100 seed posts with 5 light rewrites each (two words swapped, a
word dropped, a filler or "!!" added: what the n-gram dedup lets through when the rewrite breaks the bigrams);
then `near_copies` after the embedding filter and after the n-gram dedup filter (within the set). For each:
MTLD, self-BLEU (100 posts), embedding spread and nearest-neighbour distance (200 posts). Then how many posts the embedding filter drops
at several thresholds: rewrites against the seed, and real posts (seed within itself, pool against the seed:
every drop there is a false positive). Last, the attribute space mined from the seed and one prompt.
"""

from __future__ import annotations

import argparse
import os
import random
import time

import numpy as np

from sentisynth.analysis import embedding_measures, text_measures
from sentisynth.data import load_data
from sentisynth.filters import DedupFilter, EmbedDedupFilter, FilterContext
from sentisynth.generation.attributes import AttributeConfig, attributes_line, build_space, draw_attributes
from sentisynth.generation.prompts import DEFAULT_INSTRUCTION, render_instruction

FILLERS = ["lol", "honestly", "!!", "tbh", "omg", "again", "today"]


def rewrite(text: str, rng: random.Random) -> str:
    """A light rewrite: swap two neighbouring words, drop one, add a filler (a paraphrase-like near copy)."""
    words = text.split()
    if len(words) > 3:
        i = rng.randrange(len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
        del words[rng.randrange(len(words))]
    words.insert(rng.randrange(len(words) + 1), rng.choice(FILLERS))
    return " ".join(words)


def near_copies(seed: list[str], n_src: int = 100, k: int = 5) -> list[str]:
    rng = random.Random(0)
    return [rewrite(t, rng) for t in rng.sample(seed, n_src) for _ in range(k)]


def samples(texts: list[str]) -> list[dict]:
    return [{"id": f"s{i}", "text": t, "label": 0, "label_name": "x"} for i, t in enumerate(texts)]


def measures(name: str, texts: list[str]) -> None:
    m = text_measures(texts)
    e = embedding_measures(texts, 200, 0)
    print(
        f"| {name} | {len(texts)} | {m['mtld']:.1f} | {m['self_bleu']:.3f} | {e['embed_spread']:.3f} "
        f"| {e['embed_nn']:.3f} |",
        flush=True,
    )


def filter_counts(data, seed: list[str], copies: list[str], pool: list[str]) -> None:
    print(
        "\n| threshold | rewrites dropped vs seed | seed posts dropped within seed | pool posts dropped vs seed |"
    )
    print("|---|---|---|---|")
    ctx = FilterContext(data=data, label_names=["x"], progress=False)  # one context: each text embedded once
    for th in (0.85, 0.9, 0.92, 0.95):
        f_seed = EmbedDedupFilter(threshold=th, against=["seed"], within=False)
        f_within = EmbedDedupFilter(threshold=th, against=[], within=True)
        d1 = len(f_seed.apply(samples(copies), ctx)[1])
        d2 = len(f_within.apply(samples(seed), ctx)[1])
        d3 = len(f_seed.apply(samples(pool), ctx)[1])
        print(f"| {th} | {d1}/{len(copies)} | {d2}/{len(seed)} | {d3}/{len(pool)} |", flush=True)
    f = EmbedDedupFilter(threshold=0.92, against=["seed"], within=False)
    by_index = dict(zip(data.seed.index.tolist(), data.seed.texts))
    print("\nreal pool posts the filter drops at 0.92 (false positives), with their seed post:")
    for s in f.apply(samples(pool), ctx)[1][:4]:
        print(f"- {s['text']!r}\n  {s['reject_detail']}: {by_index[s['duplicate_of']['index']]!r}")


def attribute_demo(seed: list[str], labels: list[int]) -> None:
    space = build_space(AttributeConfig(enabled=True), seed, labels)
    print(f"\nmined topics ({len(space.values['topic'])}): {', '.join(space.values['topic'][:15])} ...")
    print(f"length buckets (median words): {space.length_words}, edges {space.length_edges}")
    attrs = draw_attributes(np.random.default_rng(0), space)
    print("a prompt (guidance=naive, attributes on):\n" + render_instruction(
        DEFAULT_INSTRUCTION, "joy", 3, attributes=attributes_line(attrs, space)))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("SENTISYNTH_DATA_DIR", "../shared/data"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    data = load_data("tweet_eval", seed_size=500, seed=0, task="emotion", data_dir=args.data_dir)
    seed = list(data.seed.texts)
    pool = random.Random(1).sample(list(data.pool.texts), 500)
    copies = near_copies(seed)
    within = FilterContext(label_names=["x"], progress=False)
    embed_kept = {
        th: [s["text"] for s in EmbedDedupFilter(threshold=th, against=[]).apply(samples(copies), within)[0]]
        for th in (0.92, 0.85)
    }
    ngram_kept = [s["text"] for s in DedupFilter().apply(samples(copies), within)[0]]
    print("| set | posts | MTLD | self-BLEU | embed_spread | embed_nn |\n|---|---|---|---|---|---|")
    sets = [
        ("seed", seed),
        ("real pool (500)", pool),
        ("near_copies", copies),
        ("near_copies + embed_dedup 0.92", embed_kept[0.92]),
        ("near_copies + embed_dedup 0.85", embed_kept[0.85]),
        ("near_copies + n-gram dedup 0.7", ngram_kept),
    ]
    for name, texts in sets:
        measures(name, texts)
    filter_counts(data, seed, copies, pool)
    attribute_demo(seed, data.seed.labels.tolist())
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
