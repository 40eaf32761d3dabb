"""Any OpenAI-compatible server (OpenAI, vLLM, Ollama, llama.cpp, TGI, LM Studio) through the official `openai`
client (async): concurrency, rate limits, retries with backoff, the durable response cache, and cost caps.

What people who pay per token need: an answer is cached before it counts (`llm.cache`), so a rerun after a
kill, a crash or a cap sends only what has no answer yet; a cap stops the run before a request could pass
it; 400/401/403/404 stop at once with one line that names the base URL, the model and the status (never the
key); 429, 5xx, timeouts and dropped connections are retried with exponential backoff and jitter, honouring
`Retry-After`.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import random
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from sentisynth.errors import ConfigError, RunStopped
from sentisynth.llm.base import Completion, LLMRequest
from sentisynth.llm.cache import ResponseCache
from sentisynth.utils import content_key

log = logging.getLogger(__name__)
for _name in ("httpx", "httpx2", "openai"):  # one INFO line per request otherwise
    logging.getLogger(_name).setLevel(logging.WARNING)

CONNECTIONS_PER_CLIENT = 16  # httpx scans its whole pool on every request: k small pools beat one big one
FATAL_STATUS = (400, 401, 403, 404, 422)  # the request or the credentials are wrong: retrying cannot help
MAX_RETRY_AFTER_S = 120.0  # a server asking for longer than this is treated as down


class ApiError(RunStopped):
    """The server refused the request (or kept failing after every retry): one line, nothing lost."""

    exit_code = 2


class BudgetExceeded(RunStopped):
    """A cost or token cap would be passed by the next request: the run stops, what was paid for is kept."""


class Interrupted(RunStopped):
    """Ctrl-C / SIGTERM: the requests in flight were finished and cached, nothing else was sent."""

    exit_code = 130


@dataclass
class ApiSettings:
    """`generator.*` (and `filters.judge.*`) of an OpenAI-compatible endpoint; validated on creation."""

    base_url: str
    model: str
    api_key_env: str | None = "OPENAI_API_KEY"
    endpoint: str = "chat"
    max_concurrency: int = 16
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    timeout_s: float = 60.0
    max_retries: int = 6
    pricing: dict[str, float] = field(default_factory=dict)
    limits: dict[str, float | None] = field(default_factory=dict)
    backoff_s: float = 0.5  # first retry waits up to this; doubles per retry, capped at backoff_max_s
    backoff_max_s: float = 30.0

    def __post_init__(self) -> None:
        self.pricing = {"input_per_mtok": 0.0, "output_per_mtok": 0.0, **dict(self.pricing or {})}
        self.limits = {"max_cost_usd": None, "max_total_tokens": None, **dict(self.limits or {})}
        checks = {
            "max_concurrency": self.max_concurrency >= 1,
            "timeout_s": self.timeout_s > 0,
            "max_retries": self.max_retries >= 0,
            "requests_per_minute": self.requests_per_minute is None or self.requests_per_minute > 0,
            "tokens_per_minute": self.tokens_per_minute is None or self.tokens_per_minute > 0,
            "pricing.input_per_mtok": self.pricing["input_per_mtok"] >= 0,
            "pricing.output_per_mtok": self.pricing["output_per_mtok"] >= 0,
            "limits.max_cost_usd": self.limits["max_cost_usd"] is None or self.limits["max_cost_usd"] >= 0,
            "limits.max_total_tokens": self.limits["max_total_tokens"] is None or self.limits["max_total_tokens"] >= 0,
        }  # fmt: skip
        for key, ok in checks.items():
            if not ok:
                raise ConfigError(f"generator.{key}: out of range (got {self._get(key)!r})")
        if self.endpoint not in ("chat", "completions"):
            raise ConfigError(f"generator.endpoint={self.endpoint!r}: choose chat or completions")

    def _get(self, dotted: str) -> Any:
        head, _, tail = dotted.partition(".")
        value = getattr(self, head)
        return value[tail] if tail else value

    def cost(self, prompt_tokens: float, completion_tokens: float) -> float:
        p = self.pricing
        return (prompt_tokens * p["input_per_mtok"] + completion_tokens * p["output_per_mtok"]) / 1e6


def retry_after_s(headers: Any) -> float | None:
    """The server's `retry-after-ms` / `Retry-After` (seconds or an HTTP date), if any."""
    if headers is None:
        return None
    try:
        if headers.get("retry-after-ms"):
            return float(headers["retry-after-ms"]) / 1000
        value = headers.get("retry-after")
        if not value:
            return None
        try:
            return float(value)
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def prompt_bound(req: LLMRequest) -> int:
    """An upper bound on a request's prompt tokens: a byte-level BPE spends at most one token per byte, plus
    a chat template's few tokens per message and the response schema."""
    if req.messages is not None:
        n = sum(len(str(m.get("content", "")).encode()) + 16 for m in req.messages)
    else:
        n = len(str(req.prompt).encode())
    if "response_format" in req.params:
        n += len(json.dumps(req.params["response_format"]).encode())
    return n


class OpenAICompatLLM:
    """`complete(requests)`: answers in order, from the cache or the server; `stats` says what was sent."""

    def __init__(self, settings: ApiSettings, cache_dir: Path | None = None) -> None:
        self.settings = settings
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in settings.model)[:60]
        root = Path(cache_dir) if cache_dir is not None else None
        self.cache_path = (
            root / "llm" / f"{name}-{content_key({'model': settings.model})[:8]}" / "responses.jsonl"
            if root is not None
            else None
        )
        self.cache = ResponseCache(self.cache_path) if self.cache_path is not None else None
        self._memory: dict[str, dict[str, Any]] = {}  # no cache_dir: answers live for this object only
        self.stats: dict[str, float] = dict.fromkeys(
            ("requests", "retries", "prompt_tokens", "completion_tokens", "cost_usd", "cached"), 0
        )

    # -- what a request is -----------------------------------------------------------------------

    def identity(self) -> dict[str, Any]:
        return {"provider": "openai_compat", "model": self.settings.model, "endpoint": self.settings.endpoint}

    def key(self, req: LLMRequest) -> str:
        return req.key_for(self.settings.model)

    def request_body(self, req: LLMRequest) -> dict[str, Any]:
        """The JSON body the endpoint receives (also a Batch file's `body`)."""
        params = dict(req.params)
        if req.messages is None:
            params.pop("response_format", None)  # /v1/completions has none
            return {"model": self.settings.model, "prompt": req.prompt, **params}
        return {"model": self.settings.model, "messages": req.messages, **params}

    def cached(self, key: str) -> dict[str, Any] | None:
        return self.cache.get(key) if self.cache is not None else self._memory.get(key)

    def _store(self, key: str, record: dict[str, Any]) -> None:
        if self.cache is not None:
            self.cache.add(key, record)
        else:
            self._memory[key] = record

    def _record(self, body: dict[str, Any]) -> dict[str, Any]:
        return response_record(body, self.settings.model)

    def add_answer(self, key: str, body: dict[str, Any]) -> bool:
        """Cache an answer that came another way (a Batch results file); True when it was new."""
        if self.cached(key) is not None:
            return False
        self._store(key, self._record(body))
        return True

    # -- answering -------------------------------------------------------------------------------

    def complete(self, requests: Sequence[LLMRequest]) -> list[Completion]:
        """Every request's completion, in order. Only requests with no cached answer are sent (each once,
        however often it appears). Raises `BudgetExceeded`, `ApiError` or `Interrupted` after caching every
        answer that arrived."""
        keys = [self.key(r) for r in requests]
        todo = {k: r for k, r in zip(keys, requests) if self.cached(k) is None}
        self.stats["cached"] += len(set(keys)) - len(todo)
        if todo:
            run_async(self._send_all(todo))
        return [self._completion(k) for k in keys]

    def _completion(self, key: str) -> Completion:
        rec = self.cached(key)
        assert rec is not None
        return Completion(
            str(rec.get("text") or ""),
            rec.get("finish_reason"),
            dict(rec.get("usage") or {}),
            str(rec.get("model") or self.settings.model),
            rec.get("system_fingerprint"),
            key,
        )

    def estimate(self, requests: Sequence[LLMRequest]) -> dict[str, Any]:
        """A dry run: how many requests would be sent and upper bounds on their tokens and cost."""
        todo = {self.key(r): r for r in requests if self.cached(self.key(r)) is None}
        p = sum(prompt_bound(r) for r in todo.values())
        c = sum(int(r.params.get("max_tokens") or 0) for r in todo.values())
        return {
            "requests": len(todo),
            "cached": len({self.key(r) for r in requests}) - len(todo),
            "max_prompt_tokens": p,
            "max_completion_tokens": c,
            "max_cost_usd": self.settings.cost(p, c),
        }

    # -- the async part --------------------------------------------------------------------------

    def _client(self) -> Any:
        from openai import AsyncOpenAI

        env = self.settings.api_key_env
        key = os.environ.get(env) if env else None
        if not key and not getattr(self, "_said_no_key", False):
            self._said_no_key = True
            log.info("generator.api_key_env=%s is not set: sending no key (fine for a local server)", env)
        return AsyncOpenAI(
            api_key=key or "EMPTY",
            base_url=self.settings.base_url,
            max_retries=0,  # ours: counted, with Retry-After and jitter
            timeout=self.settings.timeout_s,
        )

    async def _send_all(self, todo: dict[str, LLMRequest]) -> None:
        run = _Run(self, todo)
        await run.go()


class _Run:
    """One `complete` call's requests in flight: the semaphore, limiters, caps, progress and the stop reason."""

    def __init__(self, llm: OpenAICompatLLM, todo: dict[str, LLMRequest]) -> None:
        from aiolimiter import AsyncLimiter

        s = llm.settings
        self.llm, self.todo, self.s = llm, todo, s
        self.sem = asyncio.Semaphore(s.max_concurrency)
        # one request every 60/RPM s (no bursts, which is what trips a server's own limiter); tokens may burst
        self.rpm = AsyncLimiter(1, 60 / s.requests_per_minute) if s.requests_per_minute else None
        self.tpm = AsyncLimiter(s.tokens_per_minute, 60) if s.tokens_per_minute else None
        self.stop: RunStopped | None = None
        self.in_flight = {"cost": 0.0, "tokens": 0}
        self.spent = {"cost": 0.0, "tokens": 0}
        self.pending: list[tuple[str, dict[str, Any], asyncio.Future]] = []  # answers waiting for a fsync
        self.writer: asyncio.Task | None = None
        self.bar = tqdm(total=len(todo), desc=f"{s.model} requests", unit="req", dynamic_ncols=True)
        self.t0 = time.perf_counter()

    async def go(self) -> None:
        # one client (connection pool) per CONNECTIONS_PER_CLIENT slots: at concurrency 64 this is 1.5x the
        # requests/s of one client on a zero-latency server (benchmarks/bench_api_client.py); no more than the
        # requests need, as each client costs ~50 ms to set up (its TLS context)
        slots = min(self.s.max_concurrency, len(self.todo))
        clients = [self.llm._client() for _ in range(max(1, -(-slots // CONNECTIONS_PER_CLIENT)))]
        tasks = [
            asyncio.create_task(self.one(clients[i % len(clients)], k, r))
            for i, (k, r) in enumerate(self.todo.items())
        ]
        self._install_signals(tasks)
        try:
            results = await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self._remove_signals()
            self.bar.close()
            for client in clients:
                await client.close()
        if self.stop is not None:
            raise self.stop
        for r in results:  # a bug or a disk that refuses the cache: raised, not an answer silently missing
            if isinstance(r, Exception):
                raise r

    def _install_signals(self, tasks: list[asyncio.Task]) -> None:
        """First Ctrl-C / SIGTERM: send nothing new, finish and cache what is in flight. A second: cancel."""
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()

        def on_signal() -> None:
            if self.stop is None or not isinstance(self.stop, Interrupted):
                self.stop = Interrupted(
                    "interrupted: the requests in flight were finished and cached; rerun the same command to "
                    "go on (answered requests are not sent again)"
                )
                print("\nstopping: finishing the requests in flight (again to abort them)", flush=True)
            else:
                for t in tasks:
                    t.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)

    def _remove_signals(self) -> None:
        if threading.current_thread() is threading.main_thread():
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    def _cap_stop(self, cost: float, tokens: int) -> RunStopped | None:
        """The stop a request with these upper bounds would cause, or None when it fits under every cap."""
        lim, s = self.s.limits, self.s
        if (
            lim["max_cost_usd"] is not None
            and self.spent["cost"] + self.in_flight["cost"] + cost > lim["max_cost_usd"]
        ):
            what = f"generator.limits.max_cost_usd=${lim['max_cost_usd']:g}"
        elif (
            lim["max_total_tokens"] is not None
            and self.spent["tokens"] + self.in_flight["tokens"] + tokens > lim["max_total_tokens"]
        ):
            what = f"generator.limits.max_total_tokens={int(lim['max_total_tokens'])}"
        else:
            return None
        return BudgetExceeded(
            f"stopped before {what} could be passed: ${self.spent['cost']:.6f} and {self.spent['tokens']} tokens "
            f"spent in this run on {int(self.llm.stats['requests'])} requests to {s.model}, every answer kept in "
            f"the cache. Rerun the same command to go on (answered requests are not sent again), with a higher "
            f"cap to spend more in one run"
        )

    async def one(self, client: Any, key: str, req: LLMRequest) -> None:
        async with self.sem:
            if self.stop is not None:
                return
            p_bound = prompt_bound(req)
            tokens = p_bound + int(req.params.get("max_tokens") or 0)
            cost = self.s.cost(p_bound, int(req.params.get("max_tokens") or 0))
            stop = self._cap_stop(cost, tokens)
            if stop is not None:
                self.stop = self.stop or stop
                return
            self.in_flight["cost"] += cost
            self.in_flight["tokens"] += tokens
            try:
                if self.rpm is not None:
                    await self.rpm.acquire()
                if self.tpm is not None:
                    await self.tpm.acquire(min(tokens, self.s.tokens_per_minute))
                body = await self.send(client, req)
            except RunStopped as e:
                self.stop = self.stop or e
                return
            finally:
                self.in_flight["cost"] -= cost
                self.in_flight["tokens"] -= tokens
            record = self.llm._record(body)
            await self.store(key, record)  # durable before it counts
            self.account(record)

    async def store(self, key: str, record: dict[str, Any]) -> None:
        """Cache an answer; returns once it is on disk. The fsync runs in a thread, and the answers that
        arrive meanwhile share the next write + fsync, so the event loop keeps sending (group commit)."""
        if self.llm.cache is None:
            self.llm._store(key, record)
            return
        done = asyncio.get_running_loop().create_future()
        self.pending.append((key, record, done))
        if self.writer is None or self.writer.done():
            self.writer = asyncio.create_task(self._flush())
        await done

    async def _flush(self) -> None:
        cache = self.llm.cache
        assert cache is not None
        while self.pending:
            batch, self.pending = self.pending, []
            error: Exception | None = None
            try:
                await asyncio.to_thread(cache.add_many, [(k, r) for k, r, _ in batch])
            except Exception as e:  # noqa: BLE001 - each waiting request raises it (disk full, ...)
                error = e
            for *_, done in batch:
                if done.done():  # its request was cancelled (a second Ctrl-C)
                    continue
                if error is None:
                    done.set_result(None)
                else:
                    done.set_exception(error)

    def account(self, record: dict[str, Any]) -> None:
        u, st = record["usage"], self.llm.stats
        p, c = int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0)
        cost = self.s.cost(p, c)
        st["requests"] += 1
        st["prompt_tokens"] += p
        st["completion_tokens"] += c
        st["cost_usd"] += cost
        self.spent["cost"] += cost
        self.spent["tokens"] += p + c
        self.bar.update(1)
        rate = self.bar.n / max(time.perf_counter() - self.t0, 1e-9)
        tokens = int(st["prompt_tokens"] + st["completion_tokens"])
        self.bar.set_postfix_str(f"{rate:.1f} req/s, {tokens} tokens, ${st['cost_usd']:.4f}", refresh=False)

    async def send(self, client: Any, req: LLMRequest) -> dict[str, Any]:
        """One request with retries; returns the response body as a dict."""
        import openai

        s = self.s
        for attempt in range(s.max_retries + 1):
            wait = None
            try:
                body = await self._call(client, req)
                if not body.get("choices"):
                    raise ValueError("the response has no choices")
                return body
            except openai.APIStatusError as e:
                if e.status_code in FATAL_STATUS:
                    raise ApiError(
                        f"{s.base_url} answered HTTP {e.status_code} for model {s.model!r} "
                        f"({type(e).__name__}); check generator.base_url, generator.model and the key in "
                        f"${s.api_key_env}"
                    ) from None
                reason, wait = f"HTTP {e.status_code}", retry_after_s(e.response.headers)
            except (openai.APITimeoutError, openai.APIConnectionError) as e:
                reason = type(e).__name__
            except (ValueError, TypeError, KeyError, AttributeError, openai.APIResponseValidationError) as e:
                reason = f"malformed response ({type(e).__name__})"
            if attempt == s.max_retries:
                raise ApiError(
                    f"{s.base_url} (model {s.model!r}): {reason} after {s.max_retries} retries; rerun to go on "
                    "(answered requests are not sent again)"
                )
            self.llm.stats["retries"] += 1
            if wait is not None and wait > MAX_RETRY_AFTER_S:
                raise ApiError(
                    f"{s.base_url} asks to retry after {wait:.0f} s (model {s.model!r}); rerun later"
                )
            backoff = random.uniform(0, min(s.backoff_max_s, s.backoff_s * 2**attempt))
            await asyncio.sleep(wait if wait is not None else backoff)
        raise AssertionError("unreachable")

    async def _call(self, client: Any, req: LLMRequest) -> dict[str, Any]:
        """POST the body as it is through the client's documented `post` for raw requests (its errors, headers
        and timeouts), without typing the parameters and the answer into pydantic models: that cost more CPU
        than the rest of a request. A body that is not JSON raises ValueError (retried)."""
        body = self.llm.request_body(req)
        body.update(body.pop("extra_body", None) or {})  # what `create(extra_body=...)` would send
        path = "/chat/completions" if req.messages is not None else "/completions"
        answer = json.loads(await client.post(path, cast_to=bytes, body=body))
        if not isinstance(answer, dict):
            raise ValueError("the response is not a JSON object")
        return answer


def response_record(body: dict[str, Any], model: str) -> dict[str, Any]:
    """What the cache keeps of a response body: the first choice's text, why it ended, usage and model."""
    choice = (body.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    text = (
        message.get("content") if isinstance(message, dict) and "content" in message else choice.get("text")
    )
    usage = body.get("usage") or {}
    return {
        "text": text or "",
        "finish_reason": choice.get("finish_reason"),
        "usage": {
            "prompt_tokens": int(usage.get("prompt_tokens") or 0),
            "completion_tokens": int(usage.get("completion_tokens") or 0),
        },
        "model": body.get("model") or model,
        "system_fingerprint": body.get("system_fingerprint"),
    }


def run_async(coro: Any) -> Any:
    """Run a coroutine from sync code, also where an event loop is already running (a notebook): then in a
    thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["value"] = asyncio.run(coro)
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            out["error"] = e

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out.get("value")
