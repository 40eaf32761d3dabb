"""Chaos harness: SIGKILLs at random times and damaged cache files, then count what was lost or duplicated.

    python benchmarks/chaos.py                     # 20 kills, kills in a study cell and in tiny pretraining,
                                                   # a torn line and a flipped byte in each kind of cache file
    python benchmarks/chaos.py --kills 3 --quick   # the short version CI runs (tests/test_chaos.py)

Public tools only (subprocess, signal, the CLI a user runs). Generation uses a miniature `tiny` generator.
1. Kills: a clean reference run gives the expected output and its wall time T; then `generate.py` runs again
   and again on a cache without generated data, each run SIGKILLed at a time drawn uniformly from [0, T),
   until a run finishes; the finished output is compared with the reference (lost: reference samples
   missing; duplicated: repeated ids or texts), and this repeats until N kills were made.
2. A kill in the middle of a study (once its second cell has started), and of tiny pretraining (after its
   first checkpoint): the re-run completes every cell / resumes pretraining from the checkpoint.
3. Damage: a torn line (file cut mid-line) and a flipped byte in each kind of cache file; the re-run must
   log the damage and end with exactly the reference output.
Needs SENTISYNTH_DATA_DIR with tweeteval/emotion and corpus/tweets_unlabeled.txt.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "generator.pretrain.max_steps=8",
    "generator.pretrain.max_lines=1500",
    "generator.pretrain.vocab_size=350",
    "generator.pretrain.n_embd=32",
    "generator.pretrain.n_layer=1",
    "generator.pretrain.n_head=2",
    "generator.pretrain.val_every=4",
    "generator.pretrain.batch_size=8",
    "generator.finetune.epochs=1",
    "generator.sampling.max_new_tokens=12",
    "generator.batch_size=4",
    "generator.budget.n_per_class=12",
    "data.seed_size=40",
    "guidance=shap_bias",
    "filters=none",
    "logger=none",
    "trainer.enable_progress_bar=false",
]
ENV = {
    **os.environ,
    "OMP_NUM_THREADS": "1",
    "WANDB_MODE": "disabled",
    "HYDRA_FULL_ERROR": "1",
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def generate(
    work: Path, cache: Path, name: str, extra: list[str] = (), kill_after: float | None = None
) -> dict:
    """Run generate.py (SIGKILLed after `kill_after` seconds when given): returncode, log, seconds, killed."""
    cmd = [
        sys.executable,
        "generate.py",
        f"paths.cache_dir={cache}",
        f"hydra.run.dir={work / name}",
        *TINY,
        *extra,
    ]
    return _run(cmd, kill_after)


def _run(
    cmd: list[str], kill_after: float | None = None, kill_when: Callable[[], bool] | None = None
) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    killed = False
    while proc.poll() is None:
        now = time.perf_counter() - t0
        if (kill_after is not None and now >= kill_after) or (kill_when is not None and kill_when()):
            proc.send_signal(signal.SIGKILL)
            killed = True
            break
        time.sleep(0.02)
    out = proc.communicate()[0]
    return {"rc": proc.returncode, "log": out, "seconds": time.perf_counter() - t0, "killed": killed}


def samples(run_dir: Path) -> list[dict]:
    path = run_dir / "synthetic.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.is_file() else []


def compare(got: list[dict], reference: list[dict]) -> dict[str, int]:
    """lost: reference ids missing; duplicated: repeated ids or normalised texts; extra: ids not in the reference."""
    ids = [r["id"] for r in got]
    texts = [" ".join(r["text"].lower().split()) for r in got]
    ref = {r["id"] for r in reference}
    return {
        "lost": len(ref - set(ids)),
        "duplicated": (len(ids) - len(set(ids))) + (len(texts) - len(set(texts))),
        "extra": len(set(ids) - ref),
        "n": len(got),
    }


def kill_campaigns(
    work: Path, cache: Path, reference: list[dict], t_ref: float, n_kills: int, rng: random.Random
) -> dict:
    """N SIGKILLs at uniform random times; after each campaign's finishing run, compare with the reference."""
    totals = {
        "kills": 0,
        "runs": 0,
        "campaigns": 0,
        "lost": 0,
        "duplicated": 0,
        "extra": 0,
        "resumed_from_store": 0,
        "finished_before_kill": 0,
    }
    while totals["kills"] < n_kills:
        shutil.rmtree(cache / "generation", ignore_errors=True)  # models stay cached; generated data does not
        totals["campaigns"] += 1
        while True:
            at = rng.uniform(0, t_ref) if totals["kills"] < n_kills else None
            res = generate(work, cache, f"kill{totals['runs']}", kill_after=at)
            totals["runs"] += 1
            totals["resumed_from_store"] += "resuming:" in res["log"]
            if res["killed"]:
                totals["kills"] += 1
                print(
                    f"  kill {totals['kills']:2d} at {at:5.1f}s (store: {store_lines(cache)} lines)",
                    flush=True,
                )
                continue
            if res["rc"] != 0:
                raise RuntimeError(f"generate.py failed after a kill:\n{res['log'][-3000:]}")
            totals["finished_before_kill"] += at is not None
            diff = compare(samples(work / f"kill{totals['runs'] - 1}"), reference)
            for k in ("lost", "duplicated", "extra"):
                totals[k] += diff[k]
            break
    return totals


def store_lines(cache: Path) -> int:
    return sum(len(p.read_bytes().splitlines()) for p in cache.glob("generation/raw/*/batches.jsonl"))


def damage(path: Path, how: str, rng: random.Random) -> None:
    """torn: cut the file in the middle of a line (binary files: in the middle); flip: xor one byte."""
    raw = bytearray(path.read_bytes())
    if how == "torn":
        cut = len(raw) // 2
        path.write_bytes(bytes(raw[:cut]))
    else:
        i = rng.randrange(len(raw))
        raw[i] ^= 0x20 if 32 < raw[i] < 127 else 0x01
        path.write_bytes(bytes(raw))


CACHE_FILES = {  # kind -> glob under the cache dir
    "store batches.jsonl": "generation/raw/*/batches.jsonl",
    "final synthetic.jsonl": "generation/final/*/synthetic.jsonl",
    "final manifest.json": "generation/final/*/manifest.json",
    "final integrity.json": "generation/final/*/integrity.json",
    "guidance.json": "guidance/*/guidance.json",
    "tiny model.safetensors": "tiny/*/model.safetensors",
    "tiny tokenizer.json": "tiny/*/tokenizer.json",
    "tiny meta.json": "tiny/*/meta.json",
    "generator model.safetensors": "generators/*/model.safetensors",
    "generator config.json": "generators/*/config.json",
}
DETECTED = ("damaged cache", "torn or damaged line")


def corruptions(
    work: Path, cache: Path, reference: list[dict], kinds: list[tuple[str, str]], rng: random.Random
) -> dict:
    """A torn line and a flipped byte in each kind of cache file; the re-run must detect it and match the reference."""
    out = {"damaged": 0, "detected": 0, "exact_after": 0, "missed": []}
    for how, kind in kinds:
        path = next(cache.glob(CACHE_FILES[kind]))
        damage(path, how, rng)
        res = generate(work, cache, f"damage{out['damaged']}")
        out["damaged"] += 1
        found = res["rc"] == 0 and any(d in res["log"] for d in DETECTED)
        exact = compare(samples(work / f"damage{out['damaged'] - 1}"), reference)
        ok = exact["lost"] == exact["duplicated"] == exact["extra"] == 0 and exact["n"] == len(reference)
        out["detected"] += found
        out["exact_after"] += ok
        if not (found and ok):
            out["missed"].append(f"{how} {kind} (rc {res['rc']}, detected {found}, exact {ok})")
        print(f"  {how:5s} {kind:28s} detected={found} exact={ok} ({res['seconds']:.0f}s)", flush=True)
    return out


def pretraining_kill(work: Path, cache: Path) -> dict:
    """Kill tiny pretraining after its first checkpoint; flip a byte in that checkpoint; the re-run finishes."""
    pre = cache / "pretrain_chaos"
    extra = ["generator.pretrain.max_steps=120", "generator.pretrain.val_every=60"]
    ckpts = lambda: list(pre.glob("tiny/.*.work/last.ckpt"))  # noqa: E731
    res = _run(
        [
            sys.executable,
            "generate.py",
            f"paths.cache_dir={pre}",
            f"hydra.run.dir={work / 'pre0'}",
            *TINY,
            *extra,
        ],
        kill_when=lambda: bool(ckpts()),
    )
    killed_with_ckpt = res["killed"] and bool(ckpts())
    again = generate(work, pre, "pre1", extra)
    meta = json.loads(next(pre.glob("tiny/*/meta.json")).read_text()) if again["rc"] == 0 else {}
    return {
        "killed_mid_pretraining": killed_with_ckpt,
        "resumed_from_step": meta.get("resumed_from_step"),
        "finished": again["rc"] == 0,
        "n": len(samples(work / "pre1")),
    }


def study_kill(work: Path, data_dir: str) -> dict:
    """Kill a miniature study while its second cell runs; the re-run completes every cell exactly once."""
    sdir = work / "study"
    cmd = [
        sys.executable,
        "train.py",
        "experiment=offline_tweeteval",
        "study.seeds=[0]",
        "study.seed_sizes=[40,60]",
        "study.augment_n=[20]",
        "~study.arms",
        '+study.arms={none:["augment=none"],real:["augment=real"]}',
        "~study.classifiers",
        "+study.classifiers={tfidf_lr:{seeds:all}}",
        'study.overrides=["logger=none","augment.n=20","save_predictions=false"]',
        f"study.dir={sdir}",
        f"paths.data_dir={data_dir}",
        f"paths.cache_dir={work / 'study_cache'}",
        f"hydra.run.dir={work / 'study_run'}",
    ]
    started = lambda: len(list(sdir.glob("*/metrics.json"))) >= 1 and len(list(sdir.glob("*/.hydra"))) >= 2  # noqa: E731
    first = _run(cmd, kill_when=started)
    again = _run(cmd)
    cells = sorted(p.parent.name for p in sdir.glob("*/metrics.json"))
    valid = all(
        json.loads((sdir / c / "metrics.json").read_text()).get("test/macro_f1") is not None for c in cells
    )
    return {
        "killed_mid_cell": first["killed"],
        "finished": again["rc"] == 0,
        "cells_done": len(cells),
        "cells_expected": 4,
        "metrics_valid": valid,
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default=None, help="kept when given; default: a temp dir, removed")
    ap.add_argument(
        "--quick", action="store_true", help="CI: two damaged files, no study or pretraining kill"
    )
    args = ap.parse_args(argv)
    data_dir = os.environ.get("SENTISYNTH_DATA_DIR")
    if not data_dir or not Path(data_dir, "corpus").is_dir():
        print(
            "error: set SENTISYNTH_DATA_DIR to a data dir with tweeteval/emotion and corpus/", file=sys.stderr
        )
        sys.exit(2)
    import tempfile

    work = Path(args.workdir or tempfile.mkdtemp(prefix="chaos-"))
    work.mkdir(parents=True, exist_ok=True)
    cache, rng, t_start = work / "cache", random.Random(args.seed), time.perf_counter()
    try:
        build = generate(work, cache, "build")  # models, guidance and caches, once
        if build["rc"] != 0:
            raise RuntimeError(build["log"][-3000:])
        shutil.rmtree(cache / "generation")
        ref_run = generate(work, cache, "reference")
        reference, t_ref = samples(work / "reference"), ref_run["seconds"]
        print(
            f"reference: {len(reference)} samples in {t_ref:.1f}s (models cached); kills uniform in [0, {t_ref:.1f})s"
        )
        report = {
            "reference_samples": len(reference),
            "reference_s": round(t_ref, 1),
            **kill_campaigns(work, cache, reference, t_ref, args.kills, rng),
        }
        kinds = (
            [("flip", "store batches.jsonl"), ("torn", "final synthetic.jsonl")]
            if args.quick
            else [(how, kind) for kind in CACHE_FILES for how in ("torn", "flip")]
        )
        report["corruption"] = corruptions(work, cache, reference, kinds, rng)
        if not args.quick:
            report["pretraining_kill"] = pretraining_kill(work, cache)
            report["study_kill"] = study_kill(work, data_dir)
        report["wall_s"] = round(time.perf_counter() - t_start, 1)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    c = report["corruption"]
    print(
        f"kills {report['kills']} ({report['campaigns']} campaigns, {report['runs']} runs), lost {report['lost']}, "
        f"duplicated {report['duplicated']}, extra {report['extra']}, resumed-from-store "
        f"{report['resumed_from_store']}, detected corruptions {c['detected']}/{c['damaged']} "
        f"(exact output after {c['exact_after']}/{c['damaged']}), wall {report['wall_s']}s"
    )
    for key in ("pretraining_kill", "study_kill"):
        if key in report:
            print(f"{key}: {report[key]}")
    if c["missed"]:
        print("not detected or not exact: " + "; ".join(c["missed"]))
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
