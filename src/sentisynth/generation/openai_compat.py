"""`generator=api`: an LLM behind any OpenAI-compatible API (a hosted model, or your own vLLM / Ollama /
llama.cpp / TGI server) writes the posts. The guidance strategy's instruction is the prompt (chat requests,
or plain text completions for base models); each request asks for several posts and is parsed robustly.

What happens around the request is the LLM layer's (`sentisynth.llm.openai_compat`): concurrency, rate
limits, retries, the durable response cache (a paid answer is never lost and never bought twice) and the
cost caps. This file only turns the pipeline's `Request`s into messages and answers back into posts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sentisynth.errors import ConfigError
from sentisynth.generation.base import GenContext, Posts, Request, bias_token_ids, guided_instruction
from sentisynth.generation.sampling import SamplingParams
from sentisynth.llm.base import Completion, LLMRequest
from sentisynth.llm.openai_compat import ApiSettings, OpenAICompatLLM
from sentisynth.llm.parsing import parse_posts, posts_schema

log = logging.getLogger(__name__)

ENDPOINTS = ("chat", "completions")


class NoBackend:
    """The API generator samples on its server: nothing loads here (timings say `api`)."""

    name = "api"


class ApiGenerator:
    """Guided prompts sent to an OpenAI-compatible endpoint; several posts per request."""

    kind = "api"
    reads_instruction = True
    lm_scorer = None  # no local LM: the perplexity filter needs filters.perplexity.model_path, else skips
    workers = 1  # concurrency lives in the client (generator.max_concurrency), not in processes

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        api_key_env: str | None = "OPENAI_API_KEY",
        endpoint: str = "chat",
        system_prompt: str | None = None,
        posts_per_request: int = 5,
        structured_output: bool = False,
        tokenizer: str | None = None,
        sampling: dict | None = None,
        budget: dict | None = None,
        batch_size: int = 64,
        batch: bool = False,
        batch_results: str | None = None,
        dry_run: bool = False,
        **client: Any,
    ) -> None:
        if not model:
            raise ConfigError("generator.model is not set: the model name the server serves (generator=api)")
        if endpoint not in ENDPOINTS:
            raise ConfigError(f"generator.endpoint={endpoint!r}: choose one of {', '.join(ENDPOINTS)}")
        self.settings = ApiSettings(
            base_url=str(base_url), model=str(model), api_key_env=api_key_env, endpoint=endpoint, **client
        )
        self.system_prompt = system_prompt or ""
        self.posts_per_prompt = int(posts_per_request)
        self.structured_output = bool(structured_output)
        self.tokenizer_name = tokenizer
        self.sampling = SamplingParams(**(dict(sampling) if sampling else {}))
        self.budget = dict(budget) if budget else {}
        self.batch_size = int(batch_size)
        self.batch, self.batch_results, self.dry_run = bool(batch), batch_results, bool(dry_run)
        self.backend = NoBackend()
        self.client: OpenAICompatLLM | None = None
        self.tokenizer: Any = None
        self.parse_counts = {"parsed": 0, "dropped": 0, "refused": 0}

    def identity(self) -> dict[str, Any]:
        """What changes the answers (the cache keys): not the URL, the key or any limit."""
        return {
            "kind": self.kind,
            "model": self.settings.model,
            "endpoint": self.settings.endpoint,
            "system_prompt": self.system_prompt,
            "posts_per_prompt": self.posts_per_prompt,
            "structured_output": self.structured_output,
            "tokenizer": self.tokenizer_name,
        }

    def prepare(self, ctx: GenContext) -> None:
        """The client over the response cache (`cache_dir/llm/`); the served model's tokenizer for logit_bias."""
        self.client = OpenAICompatLLM(self.settings, Path(ctx.cache_dir))
        if ctx.strategy.bias and self.tokenizer_name:
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(self.tokenizer_name)
        elif ctx.strategy.bias:
            log.warning(
                "guidance=%s: no generator.tokenizer, so the keyword logit_bias cannot be sent (prompt only)",
                ctx.strategy.name,
            )
        if self.batch_results:
            from sentisynth.llm.batch import import_batch_results

            n = import_batch_results(self.client, Path(self.batch_results))
            log.info("read %d answers from %s into the response cache", n, self.batch_results)

    # -- requests --------------------------------------------------------------------------------

    def make_requests(self, ctx: GenContext, label: int, n: int, rng: np.random.Generator) -> list[Request]:
        out = []
        for _ in range(max(1, -(-n // self.posts_per_prompt))):
            instruction, kws, exs, attrs = guided_instruction(ctx, label, self.posts_per_prompt, rng)
            name = ctx.label_names[label]
            out.append(
                Request(label, name, instruction, [], kws, exs, self.posts_per_prompt, attributes=attrs)
            )
        return out

    def llm_request(self, ctx: GenContext, req: Request, seed: int) -> LLMRequest:
        """One request as the API sees it: messages (chat) or a prompt (completions), sampling and seed."""
        s = self.sampling
        params: dict[str, Any] = {
            "temperature": float(s.temperature) if s.do_sample else 0.0,
            "max_tokens": int(s.max_new_tokens),
            "seed": int(seed),
        }
        if s.do_sample and s.top_p is not None:
            params["top_p"] = float(s.top_p)
        extra = {}  # not OpenAI's: vLLM, TGI and llama.cpp read them from the body
        if s.do_sample and s.top_k:
            extra["top_k"] = int(s.top_k)
        if s.repetition_penalty and float(s.repetition_penalty) != 1.0:
            extra["repetition_penalty"] = float(s.repetition_penalty)
        if extra:
            params["extra_body"] = extra
        if self.tokenizer is not None and ctx.strategy.bias:
            ids = bias_token_ids(self.tokenizer, ctx, req.label)
            params["logit_bias"] = {str(i): float(ctx.strategy.bias) for i in ids}
        if self.settings.endpoint == "completions":
            prompt = f"{self.system_prompt}\n{req.prompt}\n" if self.system_prompt else f"{req.prompt}\n"
            return LLMRequest(None, prompt, params)
        if self.structured_output:
            params["response_format"] = posts_schema(req.n_posts)
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return LLMRequest(system + [{"role": "user", "content": req.prompt}], None, params)

    def _client(self) -> OpenAICompatLLM:
        if self.client is None:
            raise RuntimeError("ApiGenerator.prepare(ctx) must run first")
        return self.client

    def prefetch(self, ctx: GenContext, requests: Sequence[Request], seeds: Sequence[int]) -> None:
        """A whole wave at once: every request of every chunk goes out concurrently (up to
        max_concurrency) and lands in the response cache, so the chunks that follow read it. In batch mode the
        wave's unanswered requests are written as one OpenAI Batch file instead, and the run stops."""
        llm_requests = [self.llm_request(ctx, r, s) for r, s in zip(requests, seeds)]
        if self.batch:
            from sentisynth.llm.batch import write_batch_requests

            write_batch_requests(self._client(), llm_requests)  # raises BatchPending when any is unanswered
            return
        self._client().complete(llm_requests)

    def run_batch(
        self, ctx: GenContext, requests: Sequence[Request], seeds: Sequence[int]
    ) -> tuple[list[list[str]], int]:
        """Each request's completion parsed into at most `n_posts` posts, with the answer's provenance."""
        answers = self._client().complete([self.llm_request(ctx, r, s) for r, s in zip(requests, seeds)])
        out: list[list[str]] = []
        for req, ans in zip(requests, answers):
            parsed = parse_posts(ans.text, req.n_posts, ans.finish_reason)
            self.parse_counts["parsed"] += len(parsed.posts)
            self.parse_counts["dropped"] += parsed.dropped
            self.parse_counts["refused"] += int(parsed.refused)
            out.append(Posts(parsed.posts, meta=answer_provenance(ans)))
        return out, sum(int(a.usage.get("completion_tokens") or 0) for a in answers)

    # -- accounting ------------------------------------------------------------------------------

    def metrics(self) -> dict[str, float]:
        """`generate/*` keys: what this run sent and paid (the server's `usage` times the prices)."""
        stats = dict(self._client().stats) if self.client is not None else {}
        out = {
            f"generate/{k}": stats.get(k, 0)
            for k in ("requests", "retries", "prompt_tokens", "completion_tokens", "cost_usd")
        }
        out.update({f"generate/posts_{k}": v for k, v in self.parse_counts.items()})
        return out

    def estimate(self, ctx: GenContext, requests: Sequence[Request], seeds: Sequence[int]) -> dict[str, Any]:
        """Requests and upper bounds on tokens and cost for a dry run (nothing is sent)."""
        return self._client().estimate([self.llm_request(ctx, r, s) for r, s in zip(requests, seeds)])


def answer_provenance(ans: Completion) -> dict[str, Any]:
    """What each sample records of the answer it came from."""
    return {
        "model": ans.model,
        "system_fingerprint": ans.system_fingerprint,
        "finish_reason": ans.finish_reason,
        "usage": dict(ans.usage),
        "request_key": ans.key,
    }
