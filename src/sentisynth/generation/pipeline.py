"""`stage=generate`: seed -> guidance -> generator -> batched sampling -> (filters) -> synthetic.jsonl.

Raw batches go to a resumable store keyed by everything that changes them (generator and backend,
guidance strategy and content, sampling, seed, seed data) but not by the budget, filters, batch size,
workers, paths or logging, so a larger budget, other filters or another batch size reuse what was
generated: every request has its own seed (see `sentisynth.generation.shards`). The finished dataset is
cached under a key that adds budget and filters, and copied into the run directory.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig
from tqdm.auto import tqdm

from sentisynth.cache import is_sound, publish, read_entry_json, write_entry
from sentisynth.cli import build, tracked_job
from sentisynth.data import LowResourceData, largest_remainder, read_json_input, water_fill
from sentisynth.errors import DataError
from sentisynth.generation.attributes import AttributeSpace, attribute_config, build_space
from sentisynth.generation.base import GenContext, Generator, Request, posts_per_request
from sentisynth.generation.prompts import GuidanceStrategy
from sentisynth.generation.shards import (
    Chunk,
    chunk_requests,
    chunk_runner,
    done_requests,
    load_shards,
    missing_chunks,
    parse_chunk,
)
from sentisynth.tracking import Tracker
from sentisynth.utils import (
    content_key,
    file_lock,
    read_json,
    read_jsonl,
    seed_everything,
    to_json,
    to_plain,
    write_json,
    write_jsonl,
)

log = logging.getLogger(__name__)

# Bump when a code change alters generated samples, so caches made by older code are not reused.
STORE_VERSION = 4  # 3: one seed per request (prompt and sampling noise), request-indexed store;
# 4: top-k sampling draws from the k best logits (RowSeededTopKSampler): same distribution, new streams


def plan_budget(budget: dict, seed_counts: np.ndarray) -> list[int]:
    """Samples per class: `per_class` (a list, e.g. the real arm's counts), `n_per_class`, or `total` split
    `uniform`, `balance` (fill the smallest classes first so seed + synthetic is as balanced as possible) or
    `seed` (proportional to the seed)."""
    n = len(seed_counts)
    if budget.get("per_class") is not None:
        per_class = [int(k) for k in budget["per_class"]]
        if len(per_class) != n or min(per_class) < 0:
            raise ValueError(f"generator.budget.per_class needs {n} counts >= 0, got {per_class}")
        return per_class
    total = budget.get("total")
    if total is None:
        return [int(budget.get("n_per_class", 250))] * n
    total, mode = int(total), budget.get("distribution", "uniform")
    if mode == "uniform":
        return [total // n + (1 if c < total % n else 0) for c in range(n)]
    if mode == "seed":
        return largest_remainder(seed_counts / seed_counts.sum() * total, total).tolist()
    if mode == "balance":  # fill the smallest classes first
        return water_fill(total, seed_counts).tolist()
    raise ValueError(f"generator.budget.distribution must be uniform, balance or seed, got {mode!r}")


def norm_key(text: str) -> str:
    return " ".join(text.lower().split())


def accepted(
    batches: dict[str, list[dict]], n_classes: int, limits: Sequence[int] | None = None
) -> list[list[dict]]:
    """Distinct samples per class in request order, from requests below `limits[c]` (all when None); a
    text seen under two labels is dropped from both."""
    by_class: list[list[dict]] = [[] for _ in range(n_classes)]
    for bid in sorted(batches, key=parse_chunk):
        c, k0, _ = parse_chunk(bid)
        if limits is None or k0 < limits[c]:
            by_class[c].extend(
                r for r in batches[bid] if limits is None or r["provenance"]["request"] < limits[c]
            )
    owners: dict[str, set[int]] = {}
    for c, rows in enumerate(by_class):
        for r in rows:
            owners.setdefault(norm_key(r["text"]), set()).add(c)
    out: list[list[dict]] = []
    for rows in by_class:
        seen: set[str] = set()
        keep = []
        for r in rows:
            k = norm_key(r["text"])
            if k in seen or len(owners[k]) > 1:
                continue
            seen.add(k)
            keep.append(r)
        out.append(keep)
    return out


def load_guidance_dict(
    cfg: DictConfig, data: LowResourceData, strategy: GuidanceStrategy, cache_dir: Path
) -> dict | None:
    """The guidance dict (keywords + exemplars) when the strategy uses it: from `guidance.path`, the cache,
    or built now with `sentisynth.guidance.build_guidance` on a classifier fitted to the seed."""
    if not strategy.needs_guidance:
        return None
    path = cfg.guidance.get("path")
    if path:
        return read_json_input(path, "guidance.path")
    keyword_cfg = to_plain(cfg.get("keywords")) or {}
    key = content_key(
        {
            "classifier": to_plain(cfg.classifier),
            "keywords": keyword_cfg,
            "seed": data.seed.fingerprint(),
            "labels": data.label_names,
        }
    )
    cached = cache_dir / "guidance" / key
    hit = read_entry_json(cached, "guidance.json", "guidance")
    if hit is not None:
        return hit
    try:
        from sentisynth.guidance import build_guidance
    except ImportError as e:
        raise RuntimeError(
            f"guidance={strategy.name} needs sentisynth.guidance.build_guidance ({e}); "
            "or pass guidance.path=<guidance.json>"
        ) from e
    clf = build(cfg.classifier, n_classes=data.n_classes)
    clf.fit(data.seed.texts, data.seed.labels)
    guidance = build_guidance(clf, data.seed, list(data.label_names), **keyword_cfg).to_dict()
    write_entry(cached, {"guidance.json": to_json(guidance)})
    return guidance


def generate_until(
    gen: Any,
    ctx: GenContext,
    batches: dict[str, list[dict]],
    targets: list[int],
    run: Callable[[list[Chunk]], Iterable[tuple[str, list[dict], int, float]]],
    max_requests: int,
    stalled: set[int] | None = None,
) -> tuple[list[list[dict]], dict[str, float]]:
    """Grow each class's request prefix until it holds `targets[c]` distinct samples (or `max_requests`).

    Each wave asks for what is still missing; `run` generates the wave's missing chunks (in this process
    or on workers) and `batches` collects them. The prefixes depend only on what earlier requests
    produced, never on chunking, workers or interruptions, so the result is the same whatever they are.
    A class whose wave adds no new distinct sample (greedy decoding, top_p=0, a collapsed model) stops
    there and joins `stalled` (issue 26: never loop without progress).
    """
    n, ppr = len(targets), posts_per_request(gen)
    stalled = set() if stalled is None else stalled
    limits, dry = [0] * n, [0] * n
    stats = {"tokens": 0, "samples": 0, "seconds": 0.0, "batches": 0, "wall": 0.0}
    t_wall = time.perf_counter()
    acc = accepted(batches, n, limits)
    bar = progress_bar(acc, targets)
    n_requests = 0
    while True:
        grown = grow_limits(limits, acc, targets, max_requests, ppr, stalled)
        if grown == limits:
            break
        before = [len(a) for a in acc]
        chunks = missing_chunks(done_requests(batches, n), limits, grown, gen.batch_size)
        for bid, rows, n_tokens, dt in run(chunks):
            batches[bid] = rows
            _, k0, k1 = parse_chunk(bid)
            n_requests += k1 - k0
            bar.update(min(len(rows), bar.total - bar.n))  # corrected to the distinct count after the wave
            for key, v in (("tokens", n_tokens), ("samples", len(rows)), ("seconds", dt), ("batches", 1)):
                stats[key] += v
            bar.set_postfix(
                requests=n_requests, samples_s=f"{stats['samples'] / max(stats['seconds'], 1e-9):.1f}"
            )
        acc = accepted(batches, n, grown)
        bar.n = distinct_done(acc, targets)
        bar.refresh()
        stalled |= no_progress(limits, grown, before, acc, dry, targets, ctx.label_names)
        limits = grown
    bar.close()
    stats["wall"] = time.perf_counter() - t_wall
    for c, (a, t) in enumerate(zip(acc, targets)):
        if len(a) < t and c not in stalled:
            log.warning(
                "class %s: stopped after %d requests with %d/%d distinct samples",
                ctx.label_names[c],
                limits[c],
                len(a),
                t,
            )
    return acc, stats


def progress_bar(acc: list[list[dict]], targets: list[int]) -> Any:
    """The generation bar counts distinct posts towards this call's targets (a true total, known now);
    requests go in its postfix (how many a class needs is only known as its waves come back)."""
    bar = tqdm(total=sum(targets), desc="generating", unit="post", dynamic_ncols=True)
    bar.update(distinct_done(acc, targets))
    return bar


def distinct_done(acc: list[list[dict]], targets: list[int]) -> int:
    """Distinct posts so far towards the targets (the generation bar's position)."""
    return sum(min(len(a), t) for a, t in zip(acc, targets))


def grow_limits(
    limits: list[int],
    acc: list[list[dict]],
    targets: list[int],
    max_requests: int,
    ppr: int,
    stalled: set[int],
) -> list[int]:
    """Each class's next request prefix: enough requests for its missing distinct samples (capped)."""
    return [
        min(max_requests, k + -(-(t - len(a)) // ppr)) if len(a) < t and c not in stalled else k
        for c, (k, a, t) in enumerate(zip(limits, acc, targets))
    ]


def no_progress(
    limits: list[int],
    grown: list[int],
    before: list[int],
    acc: list[list[dict]],
    dry: list[int],
    targets: list[int],
    names: Sequence[str],
) -> set[int]:
    """Classes whose requests since their last new distinct sample (`dry`, updated here) reached
    max(32, target): a last small wave that happens to repeat a post is not a stall; greedy decoding is."""
    out = set()
    for c in range(len(limits)):
        dry[c] = 0 if len(acc[c]) > before[c] else dry[c] + grown[c] - limits[c]
        if grown[c] > limits[c] and dry[c] >= max(32, targets[c]):
            log.warning(
                "class %s: %d requests in a row added no new distinct sample (%d so far); stopping this class "
                "(greedy decoding, top_p=0 or a collapsed generator cannot give new samples; sample with "
                "do_sample=true, top_p>0, temperature>0)",
                names[c],
                dry[c],
                len(acc[c]),
            )
            print(
                f"warning: class {names[c]}: generation stopped adding new distinct samples "
                f"({len(acc[c])} after {grown[c]} requests); check generator.sampling",
                flush=True,
            )
            out.add(c)
    return out


def memo_filter_context(
    data: LowResourceData,
    gen: Generator,
    filters_cfg: dict,
    cache_dir: Path,
    seed: int,
    budget: dict[str, int],
) -> Any:
    """The filters' context for every top-up round, with the teacher and the generator's perplexity
    scorer memoised per text: a round re-filters all candidates so far, but scores only the new ones."""
    from sentisynth.filters import FilterContext, MemoScorer, teacher_for

    ctx = FilterContext(
        data=data, cache_dir=cache_dir, seed=seed, budget_per_class=budget, label_names=list(data.label_names)
    )
    # generators without a local LM (the API generator) have no scorer: the perplexity filter then needs its own
    ctx.lm_scorer = MemoScorer(lambda: gen.lm_scorer, method=None) if gen.lm_scorer is not None else None
    teacher_model = (filters_cfg.get("teacher") or {}).get("model")
    if teacher_model is not None:
        loader = FilterContext(data=data, cache_dir=cache_dir, seed=seed)
        ctx.teacher = MemoScorer(lambda: teacher_for(loader, teacher_model))
    return ctx


@dataclass
class Plan:
    """What one generate run asks for and where its results live (raw store, finished-set cache)."""

    need: list[int]
    raw_key: str
    final_key: str
    filters_cfg: dict
    max_rounds: int
    max_requests: int
    max_multiple: float  # top-up rounds ask for at most this many times a class's budget
    min_kept_share: float  # a class keeping less than this share of its budget fails the run
    provenance: dict
    strategy: dict
    raw_dir: Path
    final_path: Path


def plan_generation(cfg: DictConfig, data: LowResourceData, gen: Generator, ctx: GenContext) -> Plan:
    """Per-class counts and the cache keys: raw batches by everything that changes them, the finished set
    by that plus the budget and filters."""
    names, identity = list(data.label_names), gen.identity()
    strategy = dataclasses.asdict(ctx.strategy)
    if not gen.reads_instruction:  # label LMs never see the instruction text
        strategy.pop("instruction")
    raw_key = content_key(
        {
            "version": STORE_VERSION,
            "generator": identity,
            "guidance": strategy,
            "guidance_content": ctx.guidance_fingerprint,
            "sampling": gen.sampling.to_dict(),
            "seed": int(cfg.seed),
            "seed_data": ctx.seed_fingerprint,
            "labels": names,
            **({"attributes": ctx.attributes.to_dict()} if ctx.attributes else {}),  # off: the key as before
        }
    )
    need = plan_budget(gen.budget, data.seed.class_counts(len(names)))
    # null entries are placeholders (`judge: null`): not in the cache key, so adding one changes nothing
    filters_cfg = {k: v for k, v in (to_plain(cfg.get("filters")) or {}).items() if v is not None}
    max_rounds = int(gen.budget.get("max_rounds", 4))
    max_requests, max_multiple = request_caps(gen, to_plain(cfg.generator.get("limits")), len(names))
    final_key = content_key(
        {
            "raw": raw_key,
            "need": need,
            "filters": filters_cfg,
            "max_rounds": max_rounds,
            "max_requests": max_requests,
            "max_multiple": max_multiple,
        }
    )
    cache_dir = Path(cfg.paths.cache_dir)
    return Plan(
        need,
        raw_key,
        final_key,
        filters_cfg,
        max_rounds,
        max_requests,
        max_multiple,
        float(gen.budget.get("min_kept_share", 0.5)),
        {"generator": identity, "guidance": ctx.strategy.name, "sampling": gen.sampling.to_dict()},
        strategy,
        cache_dir / "generation" / "raw" / raw_key,
        cache_dir / "generation" / "final" / final_key / "synthetic.jsonl",
    )


def request_caps(gen: Generator, limits: dict | None, n_classes: int) -> tuple[int, float]:
    """(requests per class, target multiple): `budget.max_requests_per_class`, lowered so that the raw posts
    of all classes stay within `limits.max_generated` (split evenly); `budget.max_target_multiple`."""
    max_requests = int(gen.budget.get("max_requests_per_class", 100_000))
    max_generated = (limits or {}).get("max_generated")
    if max_generated is not None:
        max_requests = min(max_requests, max(1, int(max_generated) // (n_classes * posts_per_request(gen))))
    return max_requests, float(gen.budget.get("max_target_multiple", 20))


def next_targets(
    targets: list[int], need: list[int], n_kept: np.ndarray, max_multiple: float = 20
) -> list[int]:
    """Raise the targets of classes short after filtering by the shortfall over the observed acceptance,
    never above `max_multiple` times a class's budget (a 0% acceptance would otherwise grow 25 to 3,025)."""
    out = list(targets)
    for c in range(len(need)):
        if n_kept[c] < need[c]:
            rate = max(n_kept[c] / max(targets[c], 1), 0.02)  # at most 50x the shortfall per round
            grown = out[c] + int(np.ceil((need[c] - n_kept[c]) / rate * 1.2))
            out[c] = max(out[c], min(grown, int(np.ceil(need[c] * max_multiple))))
    return out


def generate_filter_rounds(
    gen: Generator,
    ctx: GenContext,
    batches: dict[str, list[dict]],
    run: Callable,
    plan: Plan,
    data: LowResourceData,
    filter_cache: Path,
) -> tuple[list[dict], Any, dict[str, float]]:
    """Generate until every class has its targets, filter, and top short classes up, for at most
    `max_rounds` rounds. Returns (kept samples, the last filter result or None, generation stats)."""
    from sentisynth.filters import build_filter_chain

    names, need, targets = ctx.label_names, plan.need, list(plan.need)
    stats = {"tokens": 0, "samples": 0, "seconds": 0.0, "batches": 0, "wall": 0.0}
    report, filter_ctx, kept, stalled = None, None, [], set()
    for round_ in range(plan.max_rounds):
        acc, s = generate_until(gen, ctx, batches, targets, run, plan.max_requests, stalled)
        for k in stats:
            stats[k] += s[k]
        candidates = [r for c, rows in enumerate(acc) for r in rows[: targets[c]]]
        if filter_ctx is None:  # one context for all rounds: texts already scored are not scored again
            filter_ctx = memo_filter_context(
                data, gen, plan.filters_cfg, filter_cache, ctx.seed, {n: need[c] for c, n in enumerate(names)}
            )
        report = build_filter_chain(plan.filters_cfg, filter_ctx).apply(candidates)
        kept = report.kept
        n_kept = np.bincount([int(r["label"]) for r in kept], minlength=len(names))
        short = [c for c in range(len(names)) if n_kept[c] < need[c]]
        if not short:
            break
        grown = next_targets(targets, need, n_kept, plan.max_multiple)
        grown = [t if c in stalled else g for c, (t, g) in enumerate(zip(targets, grown))]
        if grown == targets:  # every short class is stalled or at its cap: another round adds nothing
            log.warning("round %d: short classes cannot grow (no progress or at the target cap)", round_)
            break
        targets = grown
        log.info(
            "round %d: classes short of budget after filtering (kept/needed): %s; new targets %s",
            round_,
            {names[c]: f"{int(n_kept[c])}/{int(need[c])}" for c in short},
            targets,
        )
    return kept, report, stats


def cache_final(
    plan: Plan, kept: list[dict], report: Any, ctx: GenContext, data: LowResourceData
) -> tuple[list[dict], bool]:
    """The first `need[c]` kept samples of each class, cached with a manifest (and the filter report).
    Cached even when short: the key holds max_rounds/max_requests, so asking for more rounds resumes from the
    raw store instead of reusing the short result."""
    by_class: list[list[dict]] = [[] for _ in plan.need]
    for r in kept:
        by_class[int(r["label"])].append(r)
    final = [
        {k: v for k, v in r.items() if k not in ("batch", "batch_n", "crc")}
        for c, rows in enumerate(by_class)
        for r in rows[: plan.need[c]]
    ]
    met = all(len(rows) >= plan.need[c] for c, rows in enumerate(by_class))
    seen = np.bincount(
        [int(r["label"]) for r in kept] + [int(r["label"]) for r in (report.rejected if report else [])],
        minlength=len(plan.need),
    )
    save_final(
        plan.final_path.parent,
        final,
        report,
        {
            "raw_key": plan.raw_key,
            "final_key": plan.final_key,
            "need": plan.need,
            "filters": plan.filters_cfg,
            "budget_met": met,
            "kept": [len(rows[: plan.need[c]]) for c, rows in enumerate(by_class)],
            "acceptance": [len(rows) / max(int(seen[c]), 1) for c, rows in enumerate(by_class)],
            "filtered": [int(k) for k in seen],
            "generator": plan.provenance["generator"],
            "guidance": plan.strategy,
            "seed": ctx.seed,
            "seed_data": ctx.seed_fingerprint,
            "data": data.summary(),
        },
    )
    return final, met


def final_set(
    gen: Generator, ctx: GenContext, plan: Plan, data: LowResourceData, cache_dir: Path, gen_cfg: dict
) -> tuple[list[dict], Any, dict[str, float], bool]:
    """The finished set: from the cache, or generated, filtered and cached now (resuming the raw store's
    shards; with `generator.workers` > 1 on worker processes started only when something is missing)."""
    stats = {"tokens": 0, "samples": 0, "seconds": 0.0, "batches": 0, "wall": 0.0}
    runner = chunk_runner(gen, ctx, gen_cfg, plan.raw_dir, plan.raw_key, plan.provenance)
    with file_lock(plan.raw_dir / ".lock"), runner as run:
        batches = load_shards(plan.raw_dir)
        if is_sound(plan.final_path.parent, "final synthetic set"):
            log.info("cache hit: %s", plan.final_path)
            met = bool(read_json(plan.final_path.parent / "manifest.json").get("budget_met", True))
            return read_jsonl(plan.final_path), None, stats, met
        kept, report, stats = generate_filter_rounds(
            gen, ctx, batches, run, plan, data, cache_dir / "filters"
        )
        final, met = cache_final(plan, kept, report, ctx, data)
        return final, report, stats, met


def check_budget(plan: Plan, final: list[dict], names: list[str], manifest: dict) -> None:
    """Fail (one `error:` line, exit 2) when a class kept less than `budget.min_kept_share` of its budget:
    an empty or near-empty set must not pass as a result. Called after the outputs are written, so the
    rejected posts and the review page can be read."""
    got = np.bincount([int(r["label"]) for r in final], minlength=len(names))
    short = [c for c in range(len(names)) if got[c] < plan.min_kept_share * plan.need[c]]
    if not short:
        return
    acc, seen = manifest.get("acceptance") or [], manifest.get("filtered") or []
    parts = [
        f"{names[c]} kept {int(got[c])}/{plan.need[c]}"
        + (f" (acceptance {acc[c]:.1%} of {seen[c]} filtered)" if c < len(acc) and c < len(seen) else "")
        for c in short
    ]
    raise DataError(
        f"synthetic set short of budget (generator.budget.min_kept_share={plan.min_kept_share:g}): "
        f"{'; '.join(parts)}; try {teacher_fix(plan.filters_cfg)}, a larger generator (generator=tiny_long) "
        f"or more rounds (generator.budget.max_rounds={2 * plan.max_rounds})"
    )


def teacher_fix(filters_cfg: dict) -> str:
    """The teacher setting to try first: tau=auto, or when it is already auto a lower target precision."""
    teacher = filters_cfg.get("teacher") or {}
    if str(teacher.get("tau")) != "auto":
        return "filters.teacher.tau=auto"
    return f"filters.teacher.target_precision={max(0.5, float(teacher.get('target_precision', 0.8)) - 0.2):g}"


def write_outputs(
    out: Path,
    final: list[dict],
    report: Any,
    plan: Plan,
    names: list[str],
    met: bool,
    extra: dict[str, float] | None = None,
) -> dict[str, float]:
    """synthetic.jsonl, the filter report (this run's, or on a cache hit the one of the run that made the
    set) and metrics.json; returns the metrics."""
    if not met:
        got = np.bincount([int(r["label"]) for r in final], minlength=len(names))
        msg = ", ".join(f"{names[c]} {int(got[c])}/{plan.need[c]}" for c in range(len(names)))
        log.warning("budget NOT met after %d rounds: %s", plan.max_rounds, msg)
        print(f"warning: budget not met after {plan.max_rounds} rounds (kept/needed): {msg}", flush=True)
    write_jsonl(out / "synthetic.jsonl", final)
    if report is not None:
        from sentisynth.filters import write_filter_report

        write_filter_report(report, out)
    else:
        for name in ("filter_report.json", "rejected.jsonl"):
            if (plan.final_path.parent / "filter_report.json").is_file() and (
                plan.final_path.parent / name
            ).is_file():
                shutil.copyfile(plan.final_path.parent / name, out / name)
    counts = np.bincount([int(r["label"]) for r in final], minlength=len(names))
    metrics: dict[str, float] = {
        "generate/n_samples": int(len(final)),
        "generate/budget_met": int(met),
        "generate/n_target": int(sum(plan.need)),
    }
    metrics.update({f"generate/n/{n}": int(counts[c]) for c, n in enumerate(names)})
    if report is not None:
        metrics["generate/n_filtered_out"] = len(report.rejected)
        from sentisynth.filters.report import step_metrics

        metrics.update(step_metrics(report.report))
    metrics.update(extra or {})
    write_json(out / "metrics.json", metrics)
    return metrics


def show_results(out: Path, final: list[dict], names: list[str], plan: Plan) -> None:
    """A few kept and rejected posts per class (with the reason) and `review.html` beside the set; then
    `check_budget` (after the outputs, so a failed run's posts can be read)."""
    from sentisynth.generation.review import sample_lines, write_review_html

    rejected = read_jsonl(out / "rejected.jsonl") if (out / "rejected.jsonl").is_file() else []
    print("a few kept and rejected posts per class:", flush=True)
    for line in sample_lines(final, rejected, names):
        print(line, flush=True)
    page = write_review_html(out, final, rejected, f"synthetic set: {out}")
    print(f"review all posts in a browser: {page}", flush=True)
    check_budget(plan, final, names, read_json(plan.final_path.parent / "manifest.json"))


def request_attributes(cfg: DictConfig, data: LowResourceData) -> AttributeSpace | None:
    """`guidance.attributes` (generation/attributes.py): the values requests draw from, or None when off."""
    acfg = attribute_config(to_plain(cfg.guidance.get("attributes")))
    return build_space(acfg, data.seed.texts, data.seed.labels.tolist()) if acfg else None


def prepare_generator(
    cfg: DictConfig, data: LowResourceData, out: Path
) -> tuple[Generator, GenContext, float]:
    """Guidance (written to the run dir when the strategy uses it), then the generator, prepared (fine-tuned);
    the seconds `prepare` took."""
    cache_dir = Path(cfg.paths.cache_dir)
    strategy = GuidanceStrategy(
        **{
            k: v
            for k, v in to_plain(cfg.guidance).items()
            if k in {f.name for f in dataclasses.fields(GuidanceStrategy)}
        }
    )
    guidance = load_guidance_dict(cfg, data, strategy, cache_dir)
    if guidance is not None:
        write_json(out / "guidance.json", guidance)
    gen: Generator = build(cfg.generator)
    ctx = GenContext(
        data.seed.texts,
        data.seed.labels,
        data.seed.index,
        list(data.label_names),
        strategy,
        guidance,
        cache_dir,
        cfg.get("trainer"),
        int(cfg.seed),
        data.seed.fingerprint(),
        content_key(guidance) if guidance else "",
        request_attributes(cfg, data),
    )
    t0 = time.perf_counter()
    gen.prepare(ctx)
    return gen, ctx, time.perf_counter() - t0


def save_final(final_dir: Path, final: list[dict], report: Any, manifest: dict) -> None:
    """The finished set, its manifest and filter report as one sealed cache entry (published by one rename)."""
    tmp = final_dir.parent / f".{final_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    write_json(tmp / "manifest.json", manifest)
    write_jsonl(tmp / "synthetic.jsonl", final)
    if report is not None:
        from sentisynth.filters import write_filter_report

        write_filter_report(report, tmp, print_table=False)
    publish(tmp, final_dir, {"samples": len(final)})


def export_run(
    cfg: DictConfig, out: Path, data: LowResourceData, final: list[dict], info: dict[str, Any]
) -> None:
    """Beside synthetic.jsonl: the HF dataset, Parquet and card; `models.json` naming the filter teacher."""
    from sentisynth.filters.teacher import saved_teacher
    from sentisynth.generation.dataset import (
        dataset_card,
        linguistic_lines,
        write_synthetic_set,
    )
    from sentisynth.provenance import source_record

    cache_dir = Path(cfg.paths.cache_dir)
    teacher = saved_teacher(cfg.get("filters"), data, cache_dir / "filters")
    write_json(out / "models.json", {"teacher": str(teacher) if teacher else None})
    write_json(out / "source_data.json", source_record(data))  # checked by augment=synthetic (provenance.py)
    report = read_json(out / "filter_report.json") if (out / "filter_report.json").is_file() else None
    names = list(data.label_names)
    card = dataset_card(
        {
            **info,
            "data": data.summary(),
            "report": report,
            "linguistic": linguistic_lines(data.seed.texts, data.seed.labels, final, names, cache_dir),
        }
    )
    write_synthetic_set(out, final, names, card)


def log_generation(tracker: Tracker, out: Path, rows: list[dict], limit: int = 10_000) -> None:
    """The filter report and the synthetic samples as tables (id, label, text, guidance, keywords, teacher
    confidence), and the set as an artifact."""
    from sentisynth.filters.report import log_filter_report

    if (out / "filter_report.json").is_file():
        log_filter_report(tracker, read_json(out / "filter_report.json"))
    columns = ["id", "label", "text", "guidance", "keywords", "teacher_confidence"]
    table = [
        [
            r.get("id"),
            r.get("label_name"),
            r.get("text"),
            (r.get("provenance") or {}).get("guidance"),
            ", ".join(map(str, (r.get("provenance") or {}).get("keywords") or [])),
            (r.get("teacher") or {}).get("confidence"),
        ]
        for r in rows[:limit]
    ]
    tracker.log_table("generate/samples", columns, table)
    tracker.log_artifact(out / "synthetic.jsonl", name="synthetic", kind="dataset")


def api_metrics(gen: Generator) -> dict[str, float]:
    """Requests, retries, tokens and cost of a generator that pays per token (`generator=api`); else none."""
    return gen.metrics() if hasattr(gen, "metrics") else {}


def first_wave(gen: Generator, ctx: GenContext, plan: Plan) -> tuple[list[Request], list[int]]:
    """The requests the first round sends: enough for each class's budget before any filtering."""
    requests: list[Request] = []
    seeds: list[int] = []
    for c, need in enumerate(plan.need):
        s, r = chunk_requests(gen, ctx, (c, 0, -(-need // posts_per_request(gen))))
        requests += r
        seeds += s
    return requests, seeds


def dry_run(gen: Generator, ctx: GenContext, plan: Plan, out: Path) -> dict[str, float]:
    """`generator.dry_run=true`: what the first round would send and cost at most, before anything is sent
    (top-up rounds for posts the filters drop come on top)."""
    est = gen.estimate(ctx, *first_wave(gen, ctx, plan))
    print(
        f"dry run: first round {est['requests']} requests ({est.get('cached', 0)} already answered in the "
        f"cache), at most {est['max_prompt_tokens']} prompt + {est['max_completion_tokens']} completion "
        f"tokens, at most ${est['max_cost_usd']:.4f}; top-up rounds for filtered posts come on top. "
        "Nothing was sent.",
        flush=True,
    )
    metrics = {f"dry_run/{k}": v for k, v in est.items() if isinstance(v, (int, float))}
    write_json(out / "metrics.json", metrics)
    return metrics


def run_generate_stage(cfg: DictConfig) -> dict[str, float]:
    """Generate the synthetic dataset of one config; returns flat metrics (also in metrics.json).
    Tracked from the start (generator and teacher curves live); nested in a train arm (`logger: null`),
    it logs into the arm's run."""
    return tracked_job(cfg, "generate", generate_job)


def run_timings(
    stats: dict[str, float], gen: Generator, plan: Plan, t_prepare: float, t_start: float
) -> dict:
    """timings.json: where the run's time went (not deterministic, so apart from metrics.json)."""
    secs = stats["seconds"]
    # generate_s: summed over chunks (per process); generate_wall_s: wall clock, worker/engine start-up included
    timings = {
        "prepare_s": t_prepare,
        "generate_s": secs,
        "generate_wall_s": stats["wall"],
        "workers": gen.workers,
        "backend": gen.backend.name,
        "total_s": time.perf_counter() - t_start,
        "new_tokens": stats["tokens"],
        "new_samples": stats["samples"],
        "batches": stats["batches"],
        "tokens_per_s": stats["tokens"] / secs if secs else None,
        "samples_per_s": stats["samples"] / secs if secs else None,
        "raw_key": plan.raw_key,
        "final_key": plan.final_key,
    }
    return timings


def generate_job(cfg: DictConfig, out: Path, tracker: Tracker) -> dict[str, float]:
    t_start = time.perf_counter()
    seed_everything(int(cfg.seed))
    data: LowResourceData = build(cfg.data)
    names = list(data.label_names)
    gen, ctx, t_prepare = prepare_generator(cfg, data, out)
    plan = plan_generation(cfg, data, gen, ctx)
    if getattr(gen, "dry_run", False):
        return dry_run(gen, ctx, plan, out)
    final, report, stats, met = final_set(
        gen, ctx, plan, data, Path(cfg.paths.cache_dir), to_plain(cfg.generator)
    )
    metrics = write_outputs(out, final, report, plan, names, met, api_metrics(gen))
    export_run(
        cfg,
        out,
        data,
        final,
        {
            "generator": plan.provenance["generator"],
            "guidance_name": ctx.strategy.name,
            "guidance": ctx.guidance,
            "filters": list(plan.filters_cfg),
            "counts": {n: metrics[f"generate/n/{n}"] for n in names},
            "budget_met": met,
            "cost": api_metrics(gen) or None,
        },
    )
    timings = run_timings(stats, gen, plan, t_prepare, t_start)
    secs = stats["seconds"]
    write_json(out / "timings.json", timings)
    log_generation(tracker, out, final)
    tracker.log_metrics(
        {**metrics, **{f"timing/{k}": v for k, v in timings.items() if isinstance(v, (int, float))}}
    )
    counts = ", ".join(f"{n} {metrics[f'generate/n/{n}']}" for n in names)
    speed = (
        f"; {timings['samples_per_s']:.1f} samples/s, {timings['tokens_per_s']:.0f} tokens/s"
        if secs
        else " (all from cache)"
    )
    print(f"{len(final)} synthetic samples ({counts}) -> {out / 'synthetic.jsonl'}{speed}", flush=True)
    show_results(out, final, names, plan)  # and fail when a class is far short of its budget
    if cfg.get("push_to_hub"):  # last: a failed upload loses nothing of the run
        from sentisynth.generation.dataset import push_synthetic

        print(f"published {push_synthetic(out, str(cfg.push_to_hub))}", flush=True)
    return metrics
