"""Startup of `python train.py` for the default job: interpreter, imports and config composition, up to
the point where work starts (loading data), against the 3 s target on this machine.

    SENTISYNTH_DATA_DIR=../shared/data python benchmarks/bench_startup.py [--repeats 3]

Three figures, each the median wall time of `--repeats` fresh processes:
- `--cfg job`: Hydra composes and prints the config, then exits (imports of train.py + composition);
- default job, logger=none: train.py up to `sentisynth.train.run_arm` (the first line of real work), i.e.
  also the library imports that `run` needs;
- default job (logger=wandb, offline): the same, plus starting the offline W&B run, which `run` does
  before any work so Trainer curves reach it live.
Wall and CPU seconds side by side: on a shared, loaded machine the wall time is mostly waiting for a core,
and the process's CPU time (user + system, its children included) is what it takes on an idle core.
The last line prints the cumulative import time of what train.py imports before work (`python -X importtime`).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 3.0
PROBE = """
import os, runpy, sys, time
import sentisynth.train as T

def stop(*args, **kwargs):
    print(f"STARTUP {time.time() - float(os.environ['BENCH_T0']):.3f}", flush=True)
    os._exit(0)

T.run_arm = stop  # run() calls run_arm right after opening the tracker: everything before it is startup
sys.argv = ["train.py", *sys.argv[1:]]
runpy.run_path(os.path.join(os.environ["BENCH_ROOT"], "train.py"), run_name="__main__")
"""


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(args: list[str], probe: bool, out: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one fresh process (interpreter start included). On a loaded machine the
    wall time is mostly waiting for a core; the CPU time is what an idle core would take."""
    cmd = [sys.executable, "-c", PROBE, *args] if probe else [sys.executable, str(ROOT / "train.py"), *args]
    env = {**os.environ, "BENCH_ROOT": str(ROOT), "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}
    c0, t0 = child_cpu(), time.time()
    env["BENCH_T0"] = repr(t0)
    proc = subprocess.run(cmd, cwd=out, env=env, capture_output=True, text=True, timeout=300)
    wall, cpu = time.time() - t0, child_cpu() - c0
    if proc.returncode != 0:
        raise SystemExit(f"error: {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    if probe:
        line = next((x for x in proc.stdout.splitlines() if x.startswith("STARTUP ")), None)
        if line is None:
            raise SystemExit(
                f"error: the job never reached run_arm:\n{proc.stdout[-1000:]}{proc.stderr[-1000:]}"
            )
        wall = float(line.split()[1])
    return wall, cpu


def slowest_imports(out: Path, k: int = 6) -> str:
    """Cumulative import time of the top-level modules the default job imports (python -X importtime)."""
    code = "import sentisynth.train, sentisynth.cli, hydra, omegaconf"
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], cwd=out, capture_output=True, text=True, timeout=300
    )
    rows = []
    for line in proc.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit() and not parts[2].startswith("  "):
            rows.append((int(parts[1]) / 1e6, parts[2].strip()))
    return ", ".join(f"{name} {s:.2f}s" for s, name in sorted(rows, reverse=True)[:k])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        runs = {
            "--cfg job (imports + composition)": (["--cfg", "job"], False),
            "default job to run_arm, logger=none": ([f"hydra.run.dir={out}/none", "logger=none"], True),
            "default job to run_arm, logger=wandb (offline)": ([f"hydra.run.dir={out}/wb"], True),
        }
        print(
            f"startup of python train.py: median of {args.repeats} fresh processes, target {TARGET_S:.1f} s; "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )
        print(f"{'':48s} {'wall':>7s} {'CPU':>7s}  CPU/target")
        for label, (argv, probe) in runs.items():
            walls, cpus = zip(*[timed(argv, probe, out) for _ in range(args.repeats)])
            wall, cpu = statistics.median(walls), statistics.median(cpus)
            print(f"{label:48s} {wall:6.2f}s {cpu:6.2f}s  {cpu / TARGET_S:.2f}x")
        print("cumulative import time (python -X importtime):", slowest_imports(out))


if __name__ == "__main__":
    main()
