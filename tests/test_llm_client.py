"""The OpenAI-compatible client against a local fault-injecting server (tests/fake_openai_server.py):
retries and their counts per fault, Retry-After, one-line fatal errors without the key, the durable
response cache (nothing answered is sent twice), cost from the server's usage, caps that stop before they
are passed and resume, rate limits, and the key on no disk."""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from sentisynth.llm.base import LLMRequest
from sentisynth.llm.openai_compat import ApiError, ApiSettings, BudgetExceeded, OpenAICompatLLM, retry_after_s
from tests.conftest import ROOT
from tests.fake_openai_server import FakeOpenAI

PRICES = {"input_per_mtok": 3.0, "output_per_mtok": 15.0}


def settings(url: str, **kw) -> ApiSettings:
    base = {"max_concurrency": 4, "timeout_s": 1.0, "max_retries": 6, "backoff_s": 0.01, "pricing": PRICES}
    return ApiSettings(base_url=url, model="fake-model", api_key_env="SENTISYNTH_TEST_KEY", **{**base, **kw})


def requests(n: int, chat: bool = True) -> list[LLMRequest]:
    if chat:
        return [
            LLMRequest([{"role": "user", "content": f"write post {i}"}], None, {"seed": i, "max_tokens": 40})
            for i in range(n)
        ]
    return [LLMRequest(None, f"post {i}:", {"seed": i, "max_tokens": 40}) for i in range(n)]


@pytest.mark.parametrize("fault", ["429", "500", "timeout", "drop", "empty", "malformed"])
def test_each_transient_fault_is_retried_and_counted(fault: str, tmp_path: Path) -> None:
    with FakeOpenAI(faults=[fault, fault], hang_s=1.5) as srv:
        llm = OpenAICompatLLM(settings(srv.url, timeout_s=0.5), tmp_path)
        [ans] = llm.complete(requests(1))
    assert ans.text.startswith("Here are 2 posts") and ans.finish_reason == "stop"
    assert llm.stats["retries"] == 2 and llm.stats["requests"] == 1 and srv.received == 3


def test_both_endpoints_and_provenance_fields(tmp_path: Path) -> None:
    with FakeOpenAI() as srv:
        llm = OpenAICompatLLM(settings(srv.url), tmp_path)
        chat, comp = llm.complete(requests(1) + requests(1, chat=False))
    assert chat.model == comp.model == "fake-model" and chat.system_fingerprint == "fp_fake"
    assert chat.usage["prompt_tokens"] == 3 and comp.usage["completion_tokens"] > 0 and chat.key != comp.key


def test_retry_after_seconds_are_honoured(tmp_path: Path) -> None:
    assert retry_after_s({"retry-after": "2"}) == 2.0 and retry_after_s({"retry-after-ms": "150"}) == 0.15
    assert retry_after_s({}) is None and retry_after_s({"retry-after": "soon"}) is None
    with FakeOpenAI(faults=["429"], retry_after="1") as srv:
        t0 = time.perf_counter()
        OpenAICompatLLM(settings(srv.url), tmp_path).complete(requests(1))
        assert time.perf_counter() - t0 >= 1.0  # the server asked for 1 s; backoff alone would be ~0.01 s


@pytest.mark.parametrize("status", ["401", "404"])
def test_fatal_status_stops_at_once_with_one_line_and_no_key(
    status: str, tmp_path: Path, monkeypatch
) -> None:
    key = "sk-" + secrets.token_hex(12)
    monkeypatch.setenv("SENTISYNTH_TEST_KEY", key)
    with FakeOpenAI(faults=[status]) as srv:
        with pytest.raises(ApiError) as err:
            OpenAICompatLLM(settings(srv.url, max_concurrency=1), tmp_path).complete(requests(1))
        assert srv.received == 1 and srv.auth == {f"Bearer {key}"}  # the key was sent, once, and not retried
    msg = str(err.value)
    assert srv.url in msg and "fake-model" in msg and f"HTTP {status}" in msg and key not in msg
    assert "\n" not in msg and err.value.exit_code == 2


def test_retries_run_out_with_one_line(tmp_path: Path) -> None:
    with FakeOpenAI(faults=["500"] * 3) as srv:
        with pytest.raises(ApiError, match="after 2 retries"):
            OpenAICompatLLM(settings(srv.url, max_retries=2), tmp_path).complete(requests(1))
        assert srv.received == 3


def test_answers_are_cached_durably_and_never_sent_twice(tmp_path: Path) -> None:
    with FakeOpenAI() as srv:
        first = OpenAICompatLLM(settings(srv.url), tmp_path).complete(requests(8) + requests(2))  # 2 repeats
        again = OpenAICompatLLM(settings(srv.url), tmp_path)  # a new process would read the same file
        second = again.complete(requests(10))
    assert max(srv.answered.values()) == 1 and sum(srv.answered.values()) == 10
    assert [a.text for a in second[:8]] == [a.text for a in first[:8]] and again.stats["requests"] == 2
    cache = next((tmp_path / "llm").rglob("responses.jsonl"))
    with open(cache, "ab") as f:  # a torn last line (a kill mid-write) is ignored, not trusted
        f.write(b'{"key": "x", "text": "half')
    assert len(OpenAICompatLLM(settings("http://127.0.0.1:9/v1"), tmp_path).complete(requests(10))) == 10


def test_cost_is_server_usage_times_prices_and_a_cap_stops_then_resumes(tmp_path: Path) -> None:
    with FakeOpenAI() as srv:
        llm = OpenAICompatLLM(settings(srv.url, limits={"max_cost_usd": 0.004}), tmp_path)
        with pytest.raises(BudgetExceeded) as err:
            llm.complete(requests(30))
        paid = sum(srv.answered.values())
        server_cost = (srv.usage["prompt_tokens"] * 3.0 + srv.usage["completion_tokens"] * 15.0) / 1e6
        assert 0 < paid < 30 and llm.stats["requests"] == paid
        assert llm.stats["cost_usd"] == pytest.approx(server_cost) and server_cost <= 0.004
        assert "max_cost_usd" in str(err.value) and "Rerun" in str(err.value) and err.value.exit_code == 3
        assert llm.estimate(requests(30))["requests"] == 30 - paid  # what is left; the rest is cached
        done = OpenAICompatLLM(settings(srv.url, limits={"max_cost_usd": 1.0}), tmp_path).complete(
            requests(30)
        )
    assert len(done) == 30 and max(srv.answered.values()) == 1 and sum(srv.answered.values()) == 30


def test_token_cap_and_dry_run_bounds(tmp_path: Path) -> None:
    with FakeOpenAI() as srv:
        llm = OpenAICompatLLM(settings(srv.url, limits={"max_total_tokens": 200}), tmp_path)
        est = llm.estimate(requests(5))
        assert est["requests"] == 5 and est["max_completion_tokens"] == 200 and srv.received == 0
        assert est["max_cost_usd"] == pytest.approx((est["max_prompt_tokens"] * 3 + 200 * 15) / 1e6)
        with pytest.raises(BudgetExceeded, match="max_total_tokens=200"):
            llm.complete(requests(5))
        assert llm.stats["prompt_tokens"] + llm.stats["completion_tokens"] <= 200


def test_requests_per_minute_paces_requests(tmp_path: Path) -> None:
    with FakeOpenAI() as srv:
        t0 = time.perf_counter()
        OpenAICompatLLM(settings(srv.url, requests_per_minute=600), tmp_path).complete(requests(6))
        assert time.perf_counter() - t0 >= 0.45  # one request per 0.1 s: the 6th starts 0.5 s after the 1st


def test_the_key_is_in_no_file(tmp_path: Path, monkeypatch) -> None:
    key = "sk-" + secrets.token_hex(16)
    monkeypatch.setenv("SENTISYNTH_TEST_KEY", key)
    with FakeOpenAI(faults=["429", None, "401"]) as srv:
        llm = OpenAICompatLLM(settings(srv.url, max_concurrency=1), tmp_path)
        with pytest.raises(ApiError):
            llm.complete(requests(3))
    files = [f for f in tmp_path.rglob("*") if f.is_file()]
    assert files and all(key.encode() not in f.read_bytes() for f in files)


@pytest.mark.slow
def test_ctrl_c_finishes_requests_in_flight_and_a_rerun_sends_only_the_rest(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        from sentisynth.errors import RunStopped
        from sentisynth.llm.openai_compat import OpenAICompatLLM
        from tests.test_llm_client import requests, settings
        try:
            OpenAICompatLLM(settings(sys.argv[1], max_concurrency=2, timeout_s=5), {str(tmp_path)!r}).complete(requests(40))
        except RunStopped as e:
            print(e, file=sys.stderr)
            sys.exit(e.exit_code)
        """
    )
    with FakeOpenAI(delay_s=0.2) as srv:
        proc = subprocess.Popen(
            [sys.executable, "-c", script, srv.url], cwd=ROOT, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 60
        while sum(srv.answered.values()) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130 and "interrupted" in err
        paid = sum(srv.answered.values())
        cached = sum(1 for _ in next((tmp_path / "llm").rglob("responses.jsonl")).open())
        assert 6 <= paid == cached < 40  # every answered request is in the cache
        OpenAICompatLLM(settings(srv.url), tmp_path).complete(requests(40))
    assert sum(srv.answered.values()) == 40 and max(srv.answered.values()) == 1


def test_settings_are_checked_with_the_key_named() -> None:
    from sentisynth.errors import ConfigError

    with pytest.raises(ConfigError, match="generator.max_concurrency"):
        ApiSettings(base_url="http://x/v1", model="m", max_concurrency=0)
    with pytest.raises(ConfigError, match="generator.limits.max_cost_usd"):
        ApiSettings(base_url="http://x/v1", model="m", limits={"max_cost_usd": -1})
    with pytest.raises(ConfigError, match="endpoint"):
        ApiSettings(base_url="http://x/v1", model="m", endpoint="responses")


def test_retry_after_as_an_http_date() -> None:
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= retry_after_s({"retry-after": when}) <= 30
    past = format_datetime(datetime.now(UTC) - timedelta(seconds=30), usegmt=True)
    assert retry_after_s({"retry-after": past}) == 0.0


def test_extra_body_goes_into_the_request_body(tmp_path: Path) -> None:
    """vLLM's own sampling knobs (top_k, repetition_penalty) travel as top-level JSON keys, as `create(extra_body=)`
    sends them."""
    req = LLMRequest([{"role": "user", "content": "hi"}], None, {"seed": 1, "extra_body": {"top_k": 40}})
    with FakeOpenAI() as srv:
        OpenAICompatLLM(settings(srv.url), tmp_path).complete([req])
    [body] = [json.loads(b) for b in srv.answered]
    assert body["top_k"] == 40 and "extra_body" not in body and body["seed"] == 1


def test_concurrent_answers_and_two_writers_leave_every_line_intact(tmp_path: Path) -> None:
    """Answers arriving together share group commits; two clients (as two processes would) append to the same
    file: every answer is one intact line, read back by a third."""
    with FakeOpenAI() as srv:
        a = OpenAICompatLLM(settings(srv.url, max_concurrency=16), tmp_path)
        b = OpenAICompatLLM(settings(srv.url, max_concurrency=16), tmp_path)
        t = threading.Thread(target=a.complete, args=(requests(60),))
        t.start()
        b.complete(requests(60)[::-1][:30] + requests(90)[60:])
        t.join()
    path = next((tmp_path / "llm").rglob("responses.jsonl"))
    lines = path.read_bytes().splitlines(keepends=True)
    fresh = OpenAICompatLLM(settings("http://127.0.0.1:9/v1"), tmp_path)
    assert fresh.cache.n_damaged == 0 and len(fresh.cache) == 90 and len(lines) == sum(srv.answered.values())


def test_a_cache_that_cannot_be_written_raises_instead_of_losing_answers(tmp_path: Path, monkeypatch) -> None:
    from sentisynth.llm.cache import ResponseCache

    def full(self, items):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ResponseCache, "add_many", full)
    with FakeOpenAI() as srv:
        with pytest.raises(OSError, match="No space"):
            OpenAICompatLLM(settings(srv.url), tmp_path).complete(requests(3))


def test_a_run_stopped_by_a_cap_then_resumed_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    with FakeOpenAI() as srv:
        whole = OpenAICompatLLM(settings(srv.url), tmp_path / "whole").complete(requests(12))
        capped = settings(srv.url, limits={"max_cost_usd": 0.002})
        with pytest.raises(BudgetExceeded):
            OpenAICompatLLM(capped, tmp_path / "parts").complete(requests(12))
        parts = OpenAICompatLLM(settings(srv.url), tmp_path / "parts").complete(requests(12))
    assert [(c.text, c.usage, c.key) for c in parts] == [(c.text, c.usage, c.key) for c in whole]
    assert set(srv.answered.values()) == {2}  # once per cache directory, never twice in one
