"""The API client's own ceiling: requests/s against a zero-latency OpenAI-compatible server (a raw asyncio
HTTP/1.1 server in another process answering every request at once with a canned completion), at
concurrency 1, 16 and 64, side by side in one run, with the durable response cache (one fsynced append per
answer, as generation uses it) and without (answers in memory). No hosted or local LLM can be faster than
this through the client, so it bounds any run.

    python benchmarks/bench_api_client.py                 # 300 / 2000 / 3000 requests at 1 / 16 / 64
    python benchmarks/bench_api_client.py --scale 0.2     # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import socket
import tempfile
import time
from pathlib import Path

BODY = json.dumps(
    {
        "id": "cmpl-0", "object": "chat.completion", "created": 0, "model": "bench", "system_fingerprint": "fp",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "1. a post\n2. another post"},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28},
    }
).encode()  # fmt: skip
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(BODY)).encode()
    + b"\r\n\r\n"
    + BODY
)


class Answer(asyncio.Protocol):
    """Reads requests (headers + Content-Length body) off a keep-alive connection, answers each at once."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport, self.buf = transport, b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            head_end = self.buf.find(b"\r\n\r\n")
            if head_end < 0:
                return
            length = 0
            for line in self.buf[:head_end].split(b"\r\n")[1:]:
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            end = head_end + 4 + length
            if len(self.buf) < end:
                return
            self.buf = self.buf[end:]
            self.transport.write(RESPONSE)


def serve(sock: socket.socket) -> None:
    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Answer, sock=sock)
        await server.serve_forever()

    asyncio.run(main())


def measure(url: str, concurrency: int, n: int, cache_dir: Path | None) -> float:
    """Requests/s of one `complete` call of `n` distinct requests."""
    from sentisynth.llm.base import LLMRequest
    from sentisynth.llm.openai_compat import ApiSettings, OpenAICompatLLM

    llm = OpenAICompatLLM(
        ApiSettings(base_url=url, model="bench", api_key_env=None, max_concurrency=concurrency), cache_dir
    )
    reqs = [
        LLMRequest([{"role": "user", "content": f"write 2 posts {i}"}], None, {"seed": i, "max_tokens": 8})
        for i in range(n)
    ]
    t0 = time.perf_counter()
    llm.complete(reqs)
    dt = time.perf_counter() - t0
    assert llm.stats["requests"] == n
    return n / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the request counts")
    args = ap.parse_args()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    proc = mp.get_context("fork").Process(target=serve, args=(sock,), daemon=True)
    proc.start()
    try:
        measure(url, 4, 20, None)  # warm-up: imports, first connections
        rows = []
        for concurrency, n in ((1, 300), (16, 2000), (64, 3000)):
            n = max(20, int(n * args.scale))
            with tempfile.TemporaryDirectory() as tmp:
                cached = measure(url, concurrency, n, Path(tmp))
            memory = measure(url, concurrency, n, None)
            rows.append((concurrency, n, cached, memory))
            print(
                f"concurrency {concurrency}: {cached:.0f} req/s (durable cache), {memory:.0f} (memory)",
                flush=True,
            )
    finally:
        proc.terminate()
    base = rows[0][2]
    print(f"\n{'concurrency':>11}{'requests':>9}{'req/s cached':>14}{'req/s memory':>14}{'vs c=1':>8}")
    for concurrency, n, cached, memory in rows:
        print(f"{concurrency:>11}{n:>9}{cached:>14.0f}{memory:>14.0f}{cached / base:>7.1f}x")


if __name__ == "__main__":
    main()
