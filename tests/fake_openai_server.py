"""A small OpenAI-compatible server for tests, on 127.0.0.1 (an ephemeral port) in a thread: it answers
`/v1/chat/completions` and `/v1/completions` like OpenAI (usage, system_fingerprint, finish_reason) and
injects scripted faults, one per incoming request, in order: `429` (with `Retry-After`), `500`, `timeout`
(answers after the client gave up), `drop` (closes the connection without a response), `empty` (no choices),
`malformed` (a body that is not JSON), `401`, `404`. It counts what it answered per request body, so a test
can check that no answered request was sent twice."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def default_text(body: dict[str, Any]) -> str:
    """A deterministic answer: two numbered posts that depend on the request's content and seed."""
    tag = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:6]
    return f"Here are 2 posts:\n1. so happy about the game today {tag}\n2. what a day, loving it {tag}"


class FakeOpenAI:
    """`with FakeOpenAI(faults=[...]) as srv:` then `srv.url` (…/v1); `srv.answered` counts 200s per body."""

    def __init__(
        self,
        faults: list[str | None] | None = None,
        text: Callable[[dict[str, Any]], str] = default_text,
        delay_s: float = 0.0,
        hang_s: float = 2.0,
        retry_after: str = "0.05",
        finish_reason: str = "stop",
    ) -> None:
        self.faults = list(faults or [])
        self.text, self.delay_s, self.hang_s = text, delay_s, hang_s
        self.retry_after, self.finish_reason = retry_after, finish_reason
        self.received = 0
        self.answered: Counter[str] = Counter()
        self.usage = {"prompt_tokens": 0, "completion_tokens": 0}
        self.auth: set[str] = set()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def next_fault(self) -> str | None:
        with self.lock:
            self.received += 1
            return self.faults.pop(0) if self.faults else None

    def answer(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        text = self.text(body)
        if "messages" in body:
            prompt = " ".join(str(m.get("content", "")) for m in body["messages"])
            choice = {"index": 0, "message": {"role": "assistant", "content": text}}
            kind = "chat.completion"
        else:
            prompt, choice, kind = str(body.get("prompt", "")), {"index": 0, "text": text}, "text_completion"
        choice["finish_reason"] = self.finish_reason
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split())}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        with self.lock:
            self.answered[json.dumps(body, sort_keys=True)] += 1
            for k in self.usage:
                self.usage[k] += usage[k]
        return {
            "id": f"cmpl-{self.received}", "object": kind, "created": int(time.time()), "model": body.get("model"),
            "system_fingerprint": "fp_fake", "choices": [choice], "usage": usage,
        }  # fmt: skip

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        srv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                return

            def send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                srv.auth.add(self.headers.get("Authorization", ""))
                fault = srv.next_fault()
                error = json.dumps({"error": {"message": f"injected {fault}", "type": "test"}}).encode()
                if fault == "drop":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if fault == "timeout":
                    time.sleep(srv.hang_s)
                if fault in ("429", "500", "401", "404"):
                    extra = {"Retry-After": srv.retry_after} if fault == "429" else {}
                    self.send(int(fault), error, extra)
                    return
                if fault == "malformed":
                    self.send(200, b"{not json")
                    return
                if srv.delay_s:
                    time.sleep(srv.delay_s)
                payload = srv.answer(self.path, body)
                if fault == "empty":
                    payload["choices"] = []
                self.send(200, json.dumps(payload).encode())

        return Handler
