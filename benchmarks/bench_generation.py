"""Generation throughput: batched (left padding + KV cache) vs one prompt at a time, same model and
sampling settings, side by side in one run; the top-k sampler (`RowSeededTopKSampler`) vs HF's
full-vocabulary warpers + `RowSeededSampler`, in CPU seconds per new token; plus the `tiny` generator's
pretraining time and validation perplexity (from its cache metadata, pretraining it first if it is not cached).

    SENTISYNTH_DATA_DIR=../shared/data python benchmarks/bench_generation.py
    python benchmarks/bench_generation.py --model-dir .cache/tiny/<key>   # any from_pretrained causal LM
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

import sentisynth.generation.sampling as sampling
from sentisynth.generation.sampling import SamplingParams, generate_batch
from sentisynth.generation.tiny import TinyConfig, pretrain_tiny


def throughput(
    model, prompts: list[list[int]], batch_size: int, params: SamplingParams, pad: int, stop: list[int]
):
    """Samples/s and new tokens/s generating one sample per prompt in batches of `batch_size`."""
    t0 = time.perf_counter()
    n_tokens = 0
    for i in range(0, len(prompts), batch_size):
        rows = generate_batch(model, prompts[i : i + batch_size], params, seed=i, pad_id=pad, stop_ids=stop)
        n_tokens += sum(len(r) for r in rows)
    dt = time.perf_counter() - t0
    return len(prompts) / dt, n_tokens / dt, dt


def hf_warpers(params: SamplingParams, seeds: list[int], device: torch.device) -> list:
    """The sampler before RowSeededTopKSampler: HF's temperature/top-k/top-p over the whole vocabulary."""
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    return [
        TemperatureLogitsWarper(params.temperature),
        TopKLogitsWarper(params.top_k),
        TopPLogitsWarper(params.top_p),
        sampling.RowSeededSampler(seeds, device),
    ]


def sampler_cpu(model, prompts, batch_size: int, params: SamplingParams, pad: int, stop: list[int]) -> str:
    """CPU seconds per 1,000 new tokens, HF warpers vs the top-k sampler, alternated twice in one process
    (CPU time, not wall: the figure holds on a shared machine)."""
    results: dict[str, list[float]] = {"hf warpers": [], "top-k sampler": []}
    new = sampling.sampling_processors
    for name, procs in [("hf warpers", hf_warpers), ("top-k sampler", new)] * 2:
        sampling.sampling_processors = procs
        t0, n = time.process_time(), 0
        for i in range(0, len(prompts), batch_size):
            rows = generate_batch(
                model, prompts[i : i + batch_size], params, seed=i, pad_id=pad, stop_ids=stop
            )
            n += sum(len(r) for r in rows)
        results[name].append(1000 * (time.process_time() - t0) / max(n, 1))
    sampling.sampling_processors = new
    old, cur = min(results["hf warpers"]), min(results["top-k sampler"])
    return (
        f"sampler, CPU s per 1,000 new tokens (best of 2): hf warpers {old:.2f}, top-k sampler {cur:.2f}; "
        f"{old / cur:.1f}x less CPU"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--model-dir", help="a from_pretrained causal LM dir (default: the cached default tiny model)"
    )
    ap.add_argument(
        "--corpus", default=None, help="unlabelled corpus (default: $SENTISYNTH_DATA_DIR/corpus/...)"
    )
    ap.add_argument("--cache-dir", default=os.environ.get("SENTISYNTH_CACHE_DIR", ".cache"))
    ap.add_argument("--batched-samples", type=int, default=256)
    ap.add_argument("--single-samples", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from transformers import AutoModelForCausalLM, AutoTokenizer

    meta = None
    model_dir = args.model_dir
    if model_dir is None:
        corpus = (
            args.corpus
            or Path(os.environ.get("SENTISYNTH_DATA_DIR", "../shared/data"))
            / "corpus"
            / "tweets_unlabeled.txt"
        )
        model_dir = pretrain_tiny(TinyConfig(), corpus, args.cache_dir)
    if (Path(model_dir) / "meta.json").is_file():
        meta = json.loads((Path(model_dir) / "meta.json").read_text())
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    stop = sorted({tok.eos_token_id, pad})
    # varied prompt lengths (the first 1-3 words of tweets) so left padding is really exercised
    starts = ["I", "Today is", "Why does", "So happy", "Can't believe", "The game", "My mom", "Just got"]
    prompts = [
        tok(starts[i % len(starts)], add_special_tokens=False)["input_ids"]
        for i in range(args.batched_samples)
    ]
    params = SamplingParams(max_new_tokens=args.max_new_tokens)

    throughput(model, prompts[:4], 4, params, pad, stop)  # warm-up
    b_sps, b_tps, b_dt = throughput(model, prompts, args.batch_size, params, pad, stop)
    s_sps, s_tps, s_dt = throughput(model, prompts[: args.single_samples], 1, params, pad, stop)
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"model: {model_dir} ({n_params / 1e6:.2f}M params), torch threads {torch.get_num_threads()}, "
        f"sampling {params.to_dict()}"
    )
    print(f"{'mode':<22}{'samples':>8}{'seconds':>9}{'samples/s':>11}{'tokens/s':>10}")
    print(
        f"{'batched (bs=' + str(args.batch_size) + ')':<22}{len(prompts):>8}{b_dt:>9.1f}{b_sps:>11.2f}{b_tps:>10.0f}"
    )
    print(f"{'one at a time':<22}{args.single_samples:>8}{s_dt:>9.1f}{s_sps:>11.2f}{s_tps:>10.0f}")
    print(f"batched / one-at-a-time samples/s ratio: {b_sps / s_sps:.1f}x")
    print(sampler_cpu(model, prompts, args.batch_size, params, pad, stop))
    if meta:
        print(
            f"tiny pretraining: {meta['train_s'] / 60:.1f} min training ({meta['total_s'] / 60:.1f} min with tokenizer), "
            f"{meta['tokens_seen'] / 1e6:.2f}M tokens at {meta['tokens_per_s']:.0f} tokens/s, "
            f"{meta['torch_threads']} torch thread(s); validation perplexity {meta['val_ppl']:.1f}"
        )


if __name__ == "__main__":
    main()
