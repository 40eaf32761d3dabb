"""The message-level LLM layer: one request (chat messages or a text prompt, plus sampling), one completion
(text, finish reason, usage, model, fingerprint), and the small protocol every provider answers. The API
generator and the LLM judge speak only this, whatever serves the model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sentisynth.utils import content_key


@dataclass(frozen=True)
class LLMRequest:
    """Chat `messages` (`/v1/chat/completions`) or a `prompt` (`/v1/completions`), and the request's
    parameters (temperature, top_p, max_tokens, seed, logit_bias, response_format, extra_body)."""

    messages: list[dict[str, str]] | None
    prompt: str | None
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("an LLMRequest has either messages (chat) or a prompt (completions)")

    @property
    def endpoint(self) -> str:
        return "chat" if self.messages is not None else "completions"

    def key_for(self, model: str) -> str:
        """The request's content key: model, endpoint, messages or prompt, every parameter (seed included).
        Never the API key or the host: the same question to the same model is the same answer."""
        return content_key(
            {"model": model, "endpoint": self.endpoint, "messages": self.messages, "prompt": self.prompt,
             "params": self.params},
            length=24,
        )  # fmt: skip


@dataclass
class Completion:
    """One answer and what the server said about it; `cached` when it came from the response cache."""

    text: str
    finish_reason: str | None
    usage: dict[str, int]
    model: str
    system_fingerprint: str | None
    key: str
    cached: bool = False

    def record(self) -> dict[str, Any]:
        """What the response cache stores (everything but `cached`)."""
        return {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "usage": self.usage,
            "model": self.model,
            "system_fingerprint": self.system_fingerprint,
        }


class LLM(Protocol):
    """A provider: `complete` answers requests in order (sending only what it has no answer for)."""

    def identity(self) -> dict[str, Any]: ...

    def complete(self, requests: Sequence[LLMRequest]) -> list[Completion]: ...
