"""`generate.py ... preview=N`: N posts per class with their guidance and filter verdicts, from the models
already cached, in seconds; a one-line error naming the command that caches them when they are not.

The preview's requests are the first N of the real run's (same seeds, same raw store), so the full run
reuses them."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from sentisynth.cache import cached_only
from sentisynth.cli import build, task_overrides, tracked_job
from sentisynth.data import LowResourceData
from sentisynth.generation.pipeline import (
    generate_until,
    memo_filter_context,
    plan_generation,
    prepare_generator,
)
from sentisynth.generation.review import review_row, short
from sentisynth.generation.shards import chunk_runner, load_shards
from sentisynth.tracking import Tracker
from sentisynth.utils import file_lock, seed_everything, to_plain


def run_preview_stage(cfg: DictConfig) -> dict[str, float]:
    """`generate.py ... preview=N`, as a tracked job of its own (the run directory holds guidance.json)."""
    return tracked_job(cfg, "generate", preview_job)


def preview_job(cfg: DictConfig, out: Path, tracker: Tracker) -> dict[str, float]:
    seed_everything(int(cfg.seed))
    return run_preview(cfg, build(cfg.data), out, int(cfg.preview))


def caching_command() -> str:
    """The run that builds the cached models: this command line without `preview`."""
    rest = [o for o in task_overrides() if not o.split("=", 1)[0].lstrip("+~").startswith("preview")]
    return " ".join(["python generate.py", *rest])


def run_preview(cfg: DictConfig, data: LowResourceData, out: Path, n: int) -> dict[str, float]:
    """Generate and filter `n` posts per class with the cached generator and teacher; print them."""
    from sentisynth.filters import build_filter_chain

    names = list(data.label_names)
    cached_only(caching_command())
    try:
        gen, ctx, _ = prepare_generator(cfg, data, out)
        plan = plan_generation(cfg, data, gen, ctx)
        runner = chunk_runner(gen, ctx, to_plain(cfg.generator), plan.raw_dir, plan.raw_key, plan.provenance)
        with file_lock(plan.raw_dir / ".lock"), runner as run:
            batches = load_shards(plan.raw_dir)
            acc, _ = generate_until(gen, ctx, batches, [n] * len(names), run, plan.max_requests)
        candidates = [r for rows in acc for r in rows[:n]]
        fctx = memo_filter_context(
            data,
            gen,
            plan.filters_cfg,
            Path(cfg.paths.cache_dir) / "filters",
            ctx.seed,
            dict.fromkeys(names, n),
        )
        result = build_filter_chain(plan.filters_cfg, fctx).apply(candidates)
    finally:
        cached_only(None)
    kept_ids = {r["id"] for r in result.kept}
    verdict = {r["id"]: review_row(r, "rejected")["reason"] for r in result.rejected}
    for line in preview_lines(candidates, kept_ids, verdict, names):
        print(line, flush=True)
    return {"preview/n": len(candidates), "preview/kept": len(kept_ids)}


def preview_lines(rows: list[dict], kept_ids: set, verdict: dict[str, str], names: list[str]) -> list[str]:
    """Per class: each post with its keywords (the guidance) and its verdict (kept, or the filter's reason)."""
    lines = []
    for c, name in enumerate(names):
        mine = [r for r in rows if int(r["label"]) == c]
        n_ok = sum(r["id"] in kept_ids for r in mine)
        lines.append(f"{name} ({n_ok}/{len(mine)} kept):")
        for r in mine:
            kw = ", ".join(map(str, (r.get("provenance") or {}).get("keywords") or [])) or "-"
            v = "kept" if r["id"] in kept_ids else f"rejected: {verdict.get(r['id'], '?')}"
            lines.append(f"  [{v}] {short(r['text'], 100)}")
            lines.append(f"      guidance: {kw}")
    return lines
