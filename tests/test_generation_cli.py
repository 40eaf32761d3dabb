"""`python generate.py` end to end on a tiny `tiny` generator: SIGKILL part-way, re-run, and the run
ends with exactly the requested count, no duplicated sample, and provenance on every line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import MINI_TINY, ROOT

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("shared_data")]  # subprocess runs on the real data

TINY = [
    *MINI_TINY,
    "generator.budget.n_per_class=15",
]
LABELS = ["anger", "joy", "optimism", "sadness"]


def command(tmp: Path, run: str, guidance_file: Path) -> list[str]:
    return [
        sys.executable,
        "generate.py",
        "data.seed_size=60",
        "guidance=shap_bias",
        f"guidance.path={guidance_file}",
        "guidance.bias=3.0",
        "filters=none",
        "logger=none",
        f"paths.cache_dir={tmp / 'cache'}",
        f"hydra.run.dir={tmp / run}",
        "trainer.enable_progress_bar=false",
        *TINY,
    ]


def store_lines(tmp: Path) -> int:
    files = list((tmp / "cache" / "generation" / "raw").glob("*/batches.jsonl"))
    return sum(len(f.read_text().splitlines()) for f in files)


def test_sigkill_then_rerun_gives_exact_distinct_count(tmp_path: Path) -> None:
    guidance = {
        "classes": {
            n: {
                "keywords": [
                    {"term": t, "shap": 1.0, "tfidf_diff": 0.1, "score": 1.0}
                    for t in ("so", "the", "love", "sad")
                ],
                "exemplars": [],
            }
            for n in LABELS
        }
    }
    gfile = tmp_path / "guidance.json"
    gfile.write_text(json.dumps(guidance))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled", "HYDRA_FULL_ERROR": "1"}
    proc = subprocess.Popen(
        command(tmp_path, "run1", gfile),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 240
    while store_lines(tmp_path) < 8 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "generate.py ended before it could be killed:\n" + proc.stdout.read()[-3000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = store_lines(tmp_path)
    assert 8 <= before < 60 and not (tmp_path / "run1" / "synthetic.jsonl").exists()

    done = subprocess.run(
        command(tmp_path, "run2", gfile), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "resuming" in done.stdout + done.stderr
    rows = [json.loads(line) for line in (tmp_path / "run2" / "synthetic.jsonl").read_text().splitlines()]
    assert len(rows) == 60
    assert (
        len({r["id"] for r in rows}) == 60 and len({" ".join(r["text"].lower().split()) for r in rows}) == 60
    )
    assert {n: sum(r["label_name"] == n for r in rows) for n in LABELS} == {n: 15 for n in LABELS}
    assert all(r["text"] and r["label_name"] == LABELS[r["label"]] for r in rows)
    prov = rows[0]["provenance"]
    assert prov["generator"]["kind"] == "tiny" and prov["guidance"] == "shap_bias"
    assert {"prompt", "keywords", "exemplar_indices", "sampling", "seed", "time"} <= set(prov)
    assert prov["sampling"]["temperature"] == 0.7 and prov["prompt"].startswith("<")
    assert prov["bias"] == 3.0 and prov["bias_keywords"] == ["so", "the", "love", "sad"]
    timings = json.loads((tmp_path / "run2" / "timings.json").read_text())
    metrics = json.loads((tmp_path / "run2" / "metrics.json").read_text())
    assert metrics["generate/n_samples"] == 60 and metrics["generate/budget_met"] == 1
    # the killed run's complete batches were kept, not regenerated
    assert timings["batches"] < len(
        {
            json.loads(x)["batch"]
            for x in next((tmp_path / "cache" / "generation" / "raw").glob("*/batches.jsonl"))
            .read_text()
            .splitlines()
        }
    )


def test_generate_with_filters_writes_a_report_that_adds_up(tmp_path: Path) -> None:
    """The filter chain after generation (heuristic, dedup, perplexity under the generator; the MiniLM
    teacher is left out to keep this fast): filter_report.json adds up and rejected.jsonl is written."""
    gfile = tmp_path / "guidance.json"
    gfile.write_text(json.dumps({"classes": {n: {"keywords": [], "exemplars": []} for n in LABELS}}))
    cmd = [a for a in command(tmp_path, "run", gfile) if a != "filters=none"]
    cmd = [
        a.replace("guidance=shap_bias", "guidance=naive") for a in cmd if not a.startswith("guidance.bias")
    ]
    cmd += [
        "filters=default",
        "~filters.teacher",
        "~filters.diversity",
        "filters.perplexity.percentile=80",
        "generator.budget.max_rounds=2",
        "generator.budget.min_kept_share=0",  # the report is under test, not the miniature model's yield
        "logger=wandb",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "run" / "filter_report.json").read_text())
    assert report["filters_applied"][:3] == ["heuristic", "dedup", "perplexity"]
    assert report["n_in"] == report["n_kept"] + report["n_dropped"]
    for step in report["filters"]:
        assert step["in"] == step["kept"] + step["dropped"]
        for c in step["per_class"].values():
            assert c["in"] == c["kept"] + c["dropped"]
    rejected = [json.loads(x) for x in (tmp_path / "run" / "rejected.jsonl").read_text().splitlines()]
    assert len(rejected) == report["n_dropped"] > 0  # the 80th-percentile perplexity cut always drops some
    assert all(r["rejected_by"] and r["reject_reason"] for r in rejected)
    kept = (tmp_path / "run" / "synthetic.jsonl").read_text().splitlines()
    assert all("perplexity" in json.loads(x) for x in kept)
    check_wandb_generation_run(tmp_path / "run", n_samples=len(kept))


def check_wandb_generation_run(run_dir: Path, n_samples: int) -> None:
    """The offline W&B run of a generation job: the samples and filter-report tables, the set as an
    artifact, and the generator's fine-tuning curves (Lightning's WandbLogger) in the same run."""
    from tests.wandb_offline import read_run

    runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    rec = read_run(runs[0])
    assert rec["run"].job_type == "generate"
    logged = {k: v for row in rec["history"] for k, v in row.items()}  # W&B flattens a table's fields
    assert logged["generate/samples/_type"] == logged["filters/report/_type"] == "table-file"
    assert logged["generate/samples/nrows"] == n_samples and logged["filters/report/nrows"] > 0
    assert "synthetic" in rec["artifacts"]
    assert "generator/val_ppl" in logged and "generator_pretrain/val_ppl" in logged  # per-validation curves


def test_train_generates_on_the_fly_once_for_a_sweep_over_classifiers(tmp_path: Path) -> None:
    """`train.py augment=synthetic_naive` without a path generates exactly the real arm's per-class counts
    through the cache; a second classifier on the same data reuses it (no new batch), and the run writes the
    linguistic comparison of seed, real pool and the synthetic rows."""
    tiny = [o for o in TINY if not o.startswith("generator.budget")]  # top-level groups, as in generate.py
    common = [
        "data.seed_size=60",
        "augment=synthetic_naive",
        "augment.n=40",
        "filters=none",
        "logger=none",
        f"paths.cache_dir={tmp_path / 'cache'}",
        "trainer.enable_progress_bar=false",
        *tiny,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled", "HYDRA_FULL_ERROR": "1"}

    def train(run: str, classifier: str) -> subprocess.CompletedProcess:
        cmd = [
            sys.executable,
            "train.py",
            *common,
            f"classifier={classifier}",
            f"hydra.run.dir={tmp_path / run}",
        ]
        return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)

    first = train("lr", "tfidf_lr")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
    batches = store_lines(tmp_path)
    summary = json.loads((tmp_path / "lr" / "data_summary.json").read_text())
    real = subprocess.run(
        [
            sys.executable,
            "train.py",
            *[a for a in common if not a.startswith(("augment", "generator.", "filters="))],
            "augment=real",
            "augment.n=40",
            f"hydra.run.dir={tmp_path / 'real'}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert real.returncode == 0, real.stderr[-3000:]
    real_summary = json.loads((tmp_path / "real" / "data_summary.json").read_text())
    assert (
        summary["per_class"] == real_summary["per_class"] and sum(summary["per_class"]) == 40
    )  # fair counts
    assert summary["strategy"] == "naive" and summary["shortfall"] == 0
    rows = [
        json.loads(x) for x in (tmp_path / "lr" / "generation" / "synthetic.jsonl").read_text().splitlines()
    ]
    assert [sum(r["label"] == c for r in rows) for c in range(4)] == summary["per_class"]
    assert all(r["provenance"]["guidance"] == "naive" for r in rows)

    second = train("svm", "tfidf_svm")
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-3000:]
    assert "cache hit" in second.stdout + second.stderr
    assert store_lines(tmp_path) == batches  # nothing generated again
    assert (tmp_path / "svm" / "generation" / "synthetic.jsonl").read_text() == (
        tmp_path / "lr" / "generation" / "synthetic.jsonl"
    ).read_text()
    metrics = json.loads((tmp_path / "svm" / "metrics.json").read_text())
    assert metrics["train/n_synthetic"] == 40 and metrics["train/n_total"] == 100

    import pandas as pd

    ling = pd.read_csv(tmp_path / "lr" / "linguistic.csv")
    assert set(ling["set"]) == {"seed", "real_pool", "synthetic"}
    assert set(ling[ling["set"] == "synthetic"]["class"]) == {"all", *LABELS}


def sample_key(row: dict) -> tuple:
    p = row["provenance"]
    return row["id"], row["text"], row["label"], p["seed"], p["request"], p["prompt"]


@pytest.mark.slow
def test_two_workers_write_the_same_samples_as_one(tmp_path: Path) -> None:
    """`generator.workers=2` deals each wave's chunks to two spawned processes, each with its own store
    shard; the merged result equals the one-process run sample for sample (one seed per request)."""
    guidance = {
        "classes": {
            n: {"keywords": [{"term": t, "score": 1.0} for t in ("so", "love", "sad")], "exemplars": []}
            for n in LABELS
        }
    }
    gfile = tmp_path / "guidance.json"
    gfile.write_text(json.dumps(guidance))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled", "HYDRA_FULL_ERROR": "1"}
    one = subprocess.run(
        command(tmp_path, "one", gfile), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert one.returncode == 0, one.stdout[-2000:] + one.stderr[-3000:]
    import shutil

    shutil.rmtree(
        tmp_path / "cache" / "generation"
    )  # keep the pretrained and fine-tuned models, not the samples
    two = subprocess.run(
        command(tmp_path, "two", gfile) + ["generator.workers=2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert two.returncode == 0, two.stdout[-2000:] + two.stderr[-3000:]
    raw = next((tmp_path / "cache" / "generation" / "raw").iterdir())
    assert (raw / "batches.jsonl").stat().st_size > 0 and (raw / "batches.w1.jsonl").stat().st_size > 0
    rows = {
        run: [json.loads(x) for x in (tmp_path / run / "synthetic.jsonl").read_text().splitlines()]
        for run in ("one", "two")
    }
    assert len(rows["one"]) == 60 and [sample_key(r) for r in rows["one"]] == [
        sample_key(r) for r in rows["two"]
    ]
    assert json.loads((tmp_path / "two" / "timings.json").read_text())["workers"] == 2
