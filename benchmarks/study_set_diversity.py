"""Measurement: how varied each generated set of a study is, per arm and seed size (docs/benchmarks.md).

    python benchmarks/study_set_diversity.py outputs/studies/offline_tweeteval

Reads every set the study's launcher generated (`<study>/.prepare/<seed size>_<arm>..._seed<s>/generation/
synthetic.jsonl`) and prints one markdown row per seed size and arm, the mean over its seed sets of: posts,
MTLD and self-BLEU (every post), distinct-2, and the MiniLM embedding spread and nearest-neighbour distance
(a seeded sample of `--embed-sample` posts).
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from sentisynth.analysis import embedding_measures, text_measures

JOB = re.compile(r"(\d+)_(.+)_seed(\d+)$")


def set_rows(study: Path, embed_sample: int) -> dict[tuple[int, str], list[tuple[float, ...]]]:
    """(seed size, arm) -> one tuple of measures per generated set."""
    acc: dict[tuple[int, str], list[tuple[float, ...]]] = defaultdict(list)
    for path in sorted((study / ".prepare").glob("*/generation/synthetic.jsonl")):
        m = JOB.match(path.parent.parent.name)
        if not m:
            continue
        texts = [json.loads(line)["text"] for line in path.open(encoding="utf-8")]
        t = text_measures(texts)
        e = embedding_measures(texts, sample=embed_sample, seed=0)
        acc[(int(m.group(1)), m.group(2))].append(
            (len(texts), t["mtld"], t["self_bleu"], t["distinct_2"], e["embed_spread"], e["embed_nn"])
        )
    return acc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path, help="a study directory (with its .prepare/ jobs)")
    parser.add_argument("--embed-sample", type=int, default=200)
    args = parser.parse_args()
    acc = set_rows(args.study, args.embed_sample)
    if not acc:
        raise SystemExit(f"error: no generated sets under {args.study / '.prepare'}")
    print(
        "| seed size | arm | sets | posts (mean) | MTLD | self-BLEU | distinct-2 | embed_spread | embed_nn |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for (size, arm), rows in sorted(acc.items()):
        a = np.array(rows)
        print(
            f"| {size} | {arm} | {len(rows)} | {a[:, 0].mean():.0f} | {a[:, 1].mean():.0f} | {a[:, 2].mean():.3f} "
            f"| {a[:, 3].mean():.3f} | {a[:, 4].mean():.3f} | {a[:, 5].mean():.3f} |"
        )


if __name__ == "__main__":
    main()
