"""Benchmark: where `experiment=offline_tweeteval`'s time goes, per stage, and the full study's estimate.

    SENTISYNTH_DATA_DIR=../shared/data python benchmarks/bench_study.py --stages lr xgb      # minutes
    SENTISYNTH_DATA_DIR=../shared/data python benchmarks/bench_study.py --stages lr xgb shap minilm

Each stage runs one real cell of the study (seed 0, seed size 500) through `train.py experiment=
offline_tweeteval` with a one-cell plan, into a scratch study directory, and reads the cell's own timings:
`lr`, `xgb` (seed only), `minilm` (the transformer cell), `shap` (the SHAP arm at +200 from a +1000
generated set: guidance, teacher fine-tuning, generation and filtering from an empty generation cache; copy
a pretrained tiny model into --cache-dir first, or pretraining is timed too). The estimate multiplies each
kind's time by the number of such cells and generated sets in the study's plan; a stage not run is "not
measured" and the estimate says which parts it lacks. Wall time on shared cores: compare CPU time too.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = {
    "lr": ("none", "augment=none", "tfidf_lr"),
    "xgb": ("none", "augment=none", "tfidf_xgb"),
    "minilm": ("none", "augment=none", "transformer"),
    "shap": ("shap", "augment=synthetic_shap", "tfidf_lr"),
}


def run_stage(stage: str, study_dir: Path, cache_dir: Path, data_dir: str) -> dict:
    """One cell through the study entry point; returns its wall/CPU seconds and the cell's own timings."""
    arm, augment, clf = STAGES[stage]
    clf_spec = {
        "transformer": "{seeds:all,overrides:['classifier.epochs=2','classifier.min_steps=60',"
        "'classifier.max_length=64']}"
    }.get(clf, "{seeds:all}")
    arm_spec = "['augment=synthetic_shap','guidance.bias=2.0']" if arm == "shap" else f"['{augment}']"
    seeds = (
        "[0,1]" if stage in ("lr", "xgb") else "[0]"
    )  # a second cheap cell: its time is free of one-off imports
    args = [
        "experiment=offline_tweeteval",
        f"study.seeds={seeds}",
        "study.seed_sizes=[500]",
        "study.augment_n=[200]",
        "~study.arms",
        f"+study.arms={{{arm}:{arm_spec}}}",
        "~study.classifiers",
        f"+study.classifiers={{{clf}:{clf_spec}}}",
        f"study.dir={study_dir / stage}",
        f"paths.data_dir={data_dir}",
        f"paths.cache_dir={cache_dir}",
        f"hydra.run.dir={study_dir / 'run'}",
        "logger=none",
    ]
    t0, c0 = time.perf_counter(), os.times()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"},
    )
    wall, c1 = time.perf_counter() - t0, os.times()
    if proc.returncode:
        raise SystemExit(f"error: stage {stage} failed:\n{proc.stderr[-2000:]}")
    cells = json.loads((study_dir / stage / "study_status.json").read_text())["cells"]
    last = sorted(cells)[-1]  # seed 1 when there are two
    cell = study_dir / stage / last
    out = {
        "cell_s": cells[last]["seconds"],
        "cells_s": {k: v["seconds"] for k, v in cells.items()},
        "process_wall_s": round(wall, 1),
        "process_cpu_s": round(
            c1.children_user + c1.children_system - c0.children_user - c0.children_system, 1
        ),
        **json.loads((cell / "timings.json").read_text()),
    }
    gen = cell / "generation"
    if (gen / "timings.json").is_file():
        out["generation"] = {
            k: v for k, v in json.loads((gen / "timings.json").read_text()).items() if not k.endswith("_key")
        }
        report = json.loads((gen / "filter_report.json").read_text())
        out["filters"] = {f["name"]: f.get("time_s") for f in report["filters"]}
        out["posts_generated"], out["posts_kept"] = report["n_in"], report["n_kept"]
    return out


def estimate(measured: dict, n_seeds: int = 3, sizes: int = 2, ns: int = 2) -> dict:
    """Full-study minutes from per-cell figures: classical cells of every arm/n/seed, MiniLM on one seed, one
    generated set per generating arm and seed set (the +200 cells draw from it)."""
    arms_with_n = 4  # real, pseudo, naive, shap at each augment.n; none once
    classical = n_seeds * sizes * (1 + arms_with_n * ns)
    parts = {
        "lr cells": ("lr", classical),
        "xgb cells": ("xgb", classical),
        "minilm cells": ("minilm", sizes * (1 + arms_with_n * ns)),
        "generating seed sets (x2 arms)": ("shap", 2 * n_seeds * sizes),
    }  # the first cell of a set makes it
    out, missing = {}, []
    for name, (stage, count) in parts.items():
        if stage in measured:
            out[name] = {
                "count": count,
                "s_each": measured[stage]["cell_s"],
                "minutes": round(count * measured[stage]["cell_s"] / 60, 1),
            }
        else:
            missing.append(name)
    out["total_minutes_measured_parts"] = round(sum(v["minutes"] for v in out.values()), 1)
    # not timed here: the pseudo arm's corpus scoring (once per seed set, shared teacher), the naive arm's sets
    # (timed as the SHAP arm's), pretraining the tiny model from an empty cache (about 10 min; docs/benchmarks.md)
    out["not_measured"] = [*missing, "pseudo scoring per seed set", "tiny pretraining (empty cache)"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stages", nargs="+", choices=list(STAGES), default=["lr", "xgb"])
    ap.add_argument("--data-dir", default=os.environ.get("SENTISYNTH_DATA_DIR", "../shared/data"))
    ap.add_argument("--cache-dir", default=os.environ.get("SENTISYNTH_CACHE_DIR", ".cache"))
    ap.add_argument("--work-dir", default="outputs/bench_study")
    ap.add_argument("--out", default="outputs/bench_study.json")
    args = ap.parse_args()
    work = Path(args.work_dir) / time.strftime("%Y%m%d-%H%M%S")
    measured = {s: run_stage(s, work, Path(args.cache_dir), args.data_dir) for s in args.stages}
    result = {"stages": measured, "estimate": estimate(measured)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    for stage, m in measured.items():
        print(
            f"{stage:7s} cell {m['cell_s']:7.1f} s  fit {m.get('time/fit_s', 0):6.1f} s  (process: wall "
            f"{m['process_wall_s']:.1f} s, cpu {m['process_cpu_s']:.1f} s)"
            + (
                f"  generate {m['generation']['generate_s']:.0f} s, {m['generation'].get('samples_per_s') or 0:.1f} "
                f"samples/s, {m['posts_generated']} generated / {m['posts_kept']} kept, filters {m['filters']}"
                if "generation" in m
                else ""
            )
        )
    print(json.dumps(result["estimate"], indent=2))


if __name__ == "__main__":
    main()
