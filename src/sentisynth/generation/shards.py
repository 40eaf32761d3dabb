"""Requests, chunks and data-parallel workers: the unit of generation is one request of one class.

Request `k` of class `c` has its own seed (`request_seed`), which fixes both its prompt (sampled
keywords/exemplars) and its sampling noise, so its sample does not depend on the batch it runs in,
on `generator.batch_size`, or on which worker runs it. A class's requests are generated as a prefix
`0..K_c-1`; `K_c` grows by what is still missing after de-duplication, a deterministic function of
what the prefix produced. Missing requests are cut into contiguous chunks (`<c>-<k0>-<k1>`, at most
`batch_size` requests, one backend call and one store batch each); with `generator.workers=N` the
chunks of each wave are dealt round-robin to N processes that each append to their own shard of the
store (`batches.jsonl`, `batches.w1.jsonl`, ...), so every shard resumes on its own.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from sentisynth.generation.base import GenContext
from sentisynth.generation.prompts import class_keywords
from sentisynth.generation.store import BatchStore

log = logging.getLogger(__name__)

Chunk = tuple[int, int, int]  # class, first request, end (exclusive)


def request_seed(seed: int, label: int, k: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(label), int(k)]).generate_state(1)[0])


def chunk_id(chunk: Chunk) -> str:
    return "-".join(str(x) for x in chunk)


def parse_chunk(batch_id: str) -> Chunk:
    c, k0, k1 = (int(x) for x in batch_id.split("-"))
    return c, k0, k1


def shard_path(raw_dir: Path, worker: int) -> Path:
    return raw_dir / ("batches.jsonl" if worker == 0 else f"batches.w{worker}.jsonl")


def load_shards(raw_dir: Path) -> dict[str, list[dict]]:
    """Every complete batch of every shard (torn tails of killed writers are dropped)."""
    batches: dict[str, list[dict]] = {}
    for path in sorted(raw_dir.glob("batches*.jsonl")):
        store = BatchStore(path)
        if store.n_recovered:
            log.info(
                "resuming: %d samples from %d batches already in %s",
                store.n_recovered,
                len(store.batches),
                path,
            )
        batches.update(store.batches)
    return batches


def done_requests(batches: dict[str, list[dict]], n_classes: int) -> list[set[int]]:
    done: list[set[int]] = [set() for _ in range(n_classes)]
    for bid in batches:
        c, k0, k1 = parse_chunk(bid)
        done[c].update(range(k0, k1))
    return done


def missing_chunks(done: list[set[int]], start: list[int], end: list[int], size: int) -> list[Chunk]:
    """Requests in [start_c, end_c) not generated yet, as contiguous chunks of at most `size`."""
    out: list[Chunk] = []
    for c, (a, b) in enumerate(zip(start, end)):
        k = a
        while k < b:
            if k in done[c]:
                k += 1
                continue
            k1 = k
            while k1 < b and k1 not in done[c] and k1 - k < size:
                k1 += 1
            out.append((c, k, k1))
            k = k1
    return out


def chunk_requests(gen: Any, ctx: GenContext, chunk: Chunk) -> tuple[list[int], list[Any]]:
    """The seeds and requests of a chunk: request `k` of class `c` is the same in any chunk or process."""
    c, k0, k1 = chunk
    seeds = [request_seed(ctx.seed, c, k) for k in range(k0, k1)]
    return seeds, [gen.make_requests(ctx, c, 1, np.random.default_rng(s))[0] for s in seeds]


def run_chunk(
    gen: Any, ctx: GenContext, chunk: Chunk, raw_key: str, provenance: dict
) -> tuple[list[dict], int, float]:
    """Generate one chunk; returns its rows (with provenance), new tokens and seconds."""
    c, k0, k1 = chunk
    seeds, requests = chunk_requests(gen, ctx, chunk)
    t0 = time.perf_counter()
    posts, n_tokens = gen.run_batch(ctx, requests, seeds)
    dt = time.perf_counter() - t0
    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    extra = {}
    if ctx.strategy.bias:  # shap_bias: which keywords were pushed, and by how much
        extra = {
            "bias": ctx.strategy.bias,
            "bias_keywords": class_keywords(ctx.guidance, ctx.label_names[c], ctx.strategy.bias_keywords)[0],
        }
    rows = []
    for k, seed, req, texts in zip(range(k0, k1), seeds, requests, posts):
        for j, text in enumerate(texts):
            rows.append(
                {
                    "id": f"{raw_key}-{c}-{k}-{j}",
                    "text": text,
                    "label": c,
                    "label_name": req.label_name,
                    "provenance": {
                        **provenance,
                        "prompt": req.prompt,
                        "keywords": req.keywords,
                        "exemplar_indices": req.exemplar_indices,
                        **({"anchor_index": req.anchor_index} if req.n_anchor else {}),
                        **({"attributes": req.attributes} if req.attributes else {}),
                        "seed": seed,
                        "request": k,
                        "batch": chunk_id(chunk),
                        "time": now,
                        **extra,
                        **getattr(texts, "meta", {}),  # the answer's own record (API generators)
                    },
                }
            )
    return rows, n_tokens, dt


def run_local(
    gen: Any, ctx: GenContext, store: BatchStore, chunks: Iterable[Chunk], raw_key: str, provenance: dict
) -> Iterable[tuple[str, list[dict], int, float]]:
    """Chunks in this process, each appended to `store` as soon as it is done. A generator with `prefetch`
    (the API generator) first gets the whole wave, so its requests go out concurrently across chunks."""
    chunks, t_wave = list(chunks), 0.0
    if hasattr(gen, "prefetch") and chunks:
        t0 = time.perf_counter()
        pairs = [chunk_requests(gen, ctx, chunk) for chunk in chunks]
        gen.prefetch(ctx, [r for _, rs in pairs for r in rs], [s for ss, _ in pairs for s in ss])
        t_wave = time.perf_counter() - t0  # the wave's requests: counted with its first chunk
    for chunk in chunks:
        rows, n_tokens, dt = run_chunk(gen, ctx, chunk, raw_key, provenance)
        dt, t_wave = dt + t_wave, 0.0
        store.append(chunk_id(chunk), rows)
        yield chunk_id(chunk), rows, n_tokens, dt


def _visible_devices(worker: int, per_worker: int) -> str | None:
    """This worker's slice of the GPUs (one per worker, or `tensor_parallel_size` each); None on CPU."""
    import torch

    if not torch.cuda.is_available():
        return None
    ids = os.environ.get("CUDA_VISIBLE_DEVICES")
    devices = ids.split(",") if ids else [str(i) for i in range(torch.cuda.device_count())]
    mine = devices[worker * per_worker : (worker + 1) * per_worker]
    if len(mine) < per_worker:
        raise RuntimeError(
            f"generator.workers: worker {worker} needs {per_worker} GPU(s), only {len(devices)} visible"
        )
    return ",".join(mine)


def _worker_main(
    worker: int,
    n_workers: int,
    gen_cfg: dict,
    ctx: GenContext,
    raw_dir: str,
    raw_key: str,
    provenance: dict,
    tasks: Any,
    results: Any,
    gpus: str | None,
) -> None:
    """A worker process: load the (already prepared, cached) generator once, then run chunk lists."""
    try:
        if gpus is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = gpus
        import torch
        from hydra.utils import instantiate

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // n_workers))
        gen = instantiate({**gen_cfg, "workers": 1})
        gen.prepare(ctx)
        store = BatchStore(shard_path(Path(raw_dir), worker))
        results.put(("ready", worker, None))
        while (chunks := tasks.get()) is not None:
            for bid, rows, n_tokens, dt in run_local(gen, ctx, store, chunks, raw_key, provenance):
                results.put(("chunk", worker, (bid, rows, n_tokens, dt)))
    except BaseException:  # noqa: BLE001 - the parent re-raises it with the worker's traceback
        results.put(("error", worker, traceback.format_exc()))


class WorkerPool:
    """N spawned generator processes, each with its own task queue and store shard."""

    def __init__(
        self,
        n: int,
        gen_cfg: dict,
        ctx: GenContext,
        raw_dir: Path,
        raw_key: str,
        provenance: dict,
        gpus_per_worker: int = 1,
    ) -> None:
        spawn = mp.get_context("spawn")
        self.results = spawn.Queue()
        self.tasks = [spawn.Queue() for _ in range(n)]
        self.procs = [
            spawn.Process(
                target=_worker_main,
                daemon=False,
                args=(
                    i,
                    n,
                    gen_cfg,
                    ctx,
                    str(raw_dir),
                    raw_key,
                    provenance,
                    self.tasks[i],
                    self.results,
                    _visible_devices(i, gpus_per_worker),
                ),
            )
            for i in range(n)
        ]
        for p in self.procs:
            p.start()
        for _ in range(n):
            self._next("ready")
        log.info("generation: %d worker processes ready", n)

    def _next(self, kind: str) -> Any:
        while True:
            try:
                got, worker, payload = self.results.get(timeout=5)
            except queue.Empty:
                dead = [i for i, p in enumerate(self.procs) if not p.is_alive()]
                if dead:
                    raise RuntimeError(
                        f"generation worker(s) {dead} died (exit codes "
                        f"{[self.procs[i].exitcode for i in dead]})"
                    ) from None
                continue
            if got == "error":
                raise RuntimeError(f"generation worker {worker} failed:\n{payload}")
            if got == kind:
                return payload

    def run(self, chunks: list[Chunk]) -> Iterable[tuple[str, list[dict], int, float]]:
        n = len(self.procs)
        for i, q in enumerate(self.tasks):
            q.put(chunks[i::n])
        for _ in chunks:
            yield self._next("chunk")

    def close(self) -> None:
        for q in self.tasks:
            q.put(None)
        for p in self.procs:
            p.join(timeout=60)
            if p.is_alive():
                p.terminate()
                p.join()


@contextmanager
def chunk_runner(
    gen: Any, ctx: GenContext, gen_cfg: dict, raw_dir: Path, raw_key: str, provenance: dict
) -> Iterator[Callable[[list[Chunk]], Iterable[tuple[str, list[dict], int, float]]]]:
    """What runs a wave's chunks: this process (`workers=1`) or a pool of `generator.workers` processes,
    started on the first wave (a cache hit starts none) and stopped on exit."""
    if int(getattr(gen, "workers", 1)) <= 1:
        store: list[BatchStore] = []

        def local(chunks: list[Chunk]) -> Iterable[tuple[str, list[dict], int, float]]:
            if not store:
                store.append(BatchStore(shard_path(raw_dir, 0)))
            return run_local(gen, ctx, store[0], chunks, raw_key, provenance)

        yield local
        return
    pool: list[WorkerPool] = []
    per_worker = (
        int((getattr(gen.backend, "vllm_opts", {}) or {}).get("tensor_parallel_size", 1) or 1)
        if gen.backend.name == "vllm"
        else 1
    )

    def parallel(chunks: list[Chunk]) -> Iterable[tuple[str, list[dict], int, float]]:
        if not pool:
            pool.append(WorkerPool(gen.workers, gen_cfg, ctx, raw_dir, raw_key, provenance, per_worker))
        return pool[0].run(chunks)

    try:
        yield parallel
    finally:
        if pool:
            pool[0].close()
