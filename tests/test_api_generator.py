"""`generator=api` in-process against the local fake server (no vLLM needed): the exact budget, provenance of
each answer, `generate/*` cost equal to the server's usage, the dry run, requests as the API sees them, the
batch file round trip, and the LLM judge with its kappa against the teacher."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sentisynth.errors import RunStopped
from tests.conftest import NAMES
from tests.fake_openai_server import FakeOpenAI

PRICES = ("generator.pricing.input_per_mtok=1.5", "generator.pricing.output_per_mtok=6")


def api_cfg(compose_cfg, data_dir: Path, url: str, *extra: str):
    return compose_cfg(
        "generate",
        f"paths.data_dir={data_dir}",
        "data.seed_size=20",
        "generator=api",
        f"generator.base_url={url}",
        "generator.model=fake-model",
        "generator.api_key_env=SENTISYNTH_TEST_KEY",
        "generator.posts_per_request=2",
        "generator.budget.n_per_class=5",
        "generator.timeout_s=5",
        "guidance=exemplar",
        "filters=none",
        "logger=none",
        *PRICES,
        *extra,
    )


def test_generate_through_the_api_gives_the_budget_with_provenance_and_cost(
    compose_cfg, tiny_data_dir
) -> None:
    from sentisynth.generation import run_generate_stage

    with FakeOpenAI(faults=["429", "500"]) as srv:
        cfg = api_cfg(compose_cfg, tiny_data_dir, srv.url)
        metrics = run_generate_stage(cfg)
        again = run_generate_stage(cfg)  # the finished set is cached: nothing is sent
    out = Path(cfg.paths.output_dir)
    rows = [json.loads(x) for x in (out / "synthetic.jsonl").read_text().splitlines()]
    assert {n: sum(r["label_name"] == n for r in rows) for n in NAMES} == {n: 5 for n in NAMES}
    prov = rows[0]["provenance"]
    assert (
        prov["model"] == "fake-model"
        and prov["system_fingerprint"] == "fp_fake"
        and prov["finish_reason"] == "stop"
    )
    assert (
        prov["usage"]["completion_tokens"] > 0
        and prov["generator"]["kind"] == "api"
        and "base_url" not in json.dumps(prov)
    )
    assert metrics["generate/requests"] == sum(srv.answered.values()) == 12  # 3 requests x 2 posts per class
    assert metrics["generate/retries"] == 2 and metrics["generate/posts_parsed"] == 24
    cost = (srv.usage["prompt_tokens"] * 1.5 + srv.usage["completion_tokens"] * 6) / 1e6
    assert metrics["generate/cost_usd"] == pytest.approx(cost) and again["generate/requests"] == 0
    assert "generate/cost_usd" in json.loads((out / "metrics.json").read_text())
    assert "Generation cost" in (out / "README.md").read_text()


def test_dry_run_prints_requests_and_a_cost_bound_and_sends_nothing(
    compose_cfg, tiny_data_dir, capsys
) -> None:
    from sentisynth.generation import run_generate_stage

    with FakeOpenAI() as srv:
        metrics = run_generate_stage(api_cfg(compose_cfg, tiny_data_dir, srv.url, "generator.dry_run=true"))
        assert srv.received == 0
    assert metrics["dry_run/requests"] == 12 and metrics["dry_run/max_completion_tokens"] == 12 * 256
    assert "dry run: first round 12 requests" in capsys.readouterr().out


def test_requests_as_the_api_sees_them(tmp_path: Path) -> None:
    from sentisynth.generation.base import GenContext, Request
    from sentisynth.generation.openai_compat import ApiGenerator
    from sentisynth.generation.prompts import GuidanceStrategy

    ctx = GenContext(
        [], np.zeros(0, int), np.zeros(0, int), NAMES, GuidanceStrategy(name="naive"), None, tmp_path
    )
    req = Request(1, "joy", "Write 3 posts that express joy.", [], n_posts=3)
    chat = ApiGenerator("http://h/v1", "m", structured_output=True, sampling={"top_k": 40})
    msgs = chat.llm_request(ctx, req, 7)
    assert msgs.messages[-1] == {"role": "user", "content": req.prompt} and msgs.params["seed"] == 7
    assert msgs.params["response_format"]["json_schema"]["schema"]["properties"]["posts"]["maxItems"] == 3
    assert msgs.params["extra_body"] == {"top_k": 40, "repetition_penalty": 1.2}
    base = ApiGenerator(
        "http://h/v1", "m", endpoint="completions", system_prompt="", sampling={"do_sample": False}
    )
    comp = base.llm_request(ctx, req, 7)
    assert (
        comp.prompt == req.prompt + "\n" and comp.params["temperature"] == 0.0 and "top_p" not in comp.params
    )
    assert "http://h" not in json.dumps(chat.identity())  # the host is not part of what answers are keyed by


def test_batch_file_is_written_then_read_back(compose_cfg, tiny_data_dir) -> None:
    from sentisynth.generation import run_generate_stage

    with FakeOpenAI() as srv:
        with pytest.raises(RunStopped, match="batch file") as stop:
            run_generate_stage(api_cfg(compose_cfg, tiny_data_dir, srv.url, "generator.batch=true"))
        assert srv.received == 0
        path = Path(str(stop.value).split("batch file ")[1].split(" ")[0])
        lines = [json.loads(x) for x in path.read_text().splitlines()]
        assert len(lines) == 12 and all(
            x["method"] == "POST" and x["url"] == "/v1/chat/completions" for x in lines
        )
        # answer the batch as a Batch API would (here: the fake server's own answers, out of order)
        results = [
            {
                "custom_id": x["custom_id"],
                "response": {"status_code": 200, "body": srv.answer(x["url"], x["body"])},
            }
            for x in reversed(lines)
        ]
        out = path.with_name("results.jsonl")
        out.write_text("".join(json.dumps(r) + "\n" for r in results))
        sent = sum(srv.answered.values())
        metrics = run_generate_stage(
            api_cfg(compose_cfg, tiny_data_dir, srv.url, f"generator.batch_results={out}", "hydra.run.dir=x")
        )
        assert srv.received == 0 and sum(srv.answered.values()) == sent  # nothing went to the server
    assert metrics["generate/n_samples"] == 20 and metrics["generate/requests"] == 0


class FixedTeacher:
    """A teacher whose top class is given per text."""

    def __init__(self, labels: dict[str, int]) -> None:
        self.labels = labels

    def score(self, texts: list[str]) -> dict[str, np.ndarray]:
        lab = np.array([self.labels[t] for t in texts])
        return {"label": lab, "confidence": np.ones(len(texts)), "probs": np.eye(4)[lab]}


def test_judge_keeps_by_its_rule_and_reports_kappa_with_the_teacher(tmp_path: Path) -> None:
    from sentisynth.filters import FilterContext
    from sentisynth.filters.judge import JudgeFilter, cohen_kappa

    def verdict(body: dict) -> str:
        post = body["messages"][-1]["content"]
        good = "good" in post
        return json.dumps({"expresses_label": good, "realistic": "robot" not in post, "reason": "r"})

    texts = ["good day", "good robot", "bad day", "good vibes", "meh", "gibberish"]
    samples = [
        {"id": str(i), "text": t, "label": 1, "label_name": "joy", "provenance": {}}
        for i, t in enumerate(texts)
    ]
    teacher = FixedTeacher(
        {"good day": 1, "good robot": 1, "bad day": 0, "good vibes": 1, "meh": 1, "gibberish": 2}
    )
    ctx = FilterContext(cache_dir=tmp_path, label_names=NAMES, teacher=teacher)
    with FakeOpenAI(text=verdict) as srv:
        judge = JudgeFilter(srv.url, "judge-model", api_key_env=None, max_retries=0)
        kept, dropped = judge.apply([dict(s) for s in samples], ctx)
        judge.apply([dict(s) for s in samples], ctx)  # asked again: every verdict comes from the cache
        assert sum(srv.answered.values()) == 6
    assert [s["text"] for s in kept] == ["good day", "good vibes"]
    assert {s["reject_reason"] for s in dropped} == {"judge_not_expresses_label", "judge_not_realistic"}
    judge_keep = np.array([t in ("good day", "good vibes") for t in texts])
    teacher_agrees = np.array([teacher.labels[t] == 1 for t in texts])
    assert judge.step_info["kappa_teacher"] == pytest.approx(
        round(cohen_kappa(judge_keep, teacher_agrees), 4)
    )
    assert cohen_kappa(np.array([1, 0, 1, 0]), np.array([1, 0, 1, 0])) == 1.0
