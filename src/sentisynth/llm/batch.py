"""OpenAI Batch files: the requests that have no answer yet as one JSONL (`custom_id` = the request key), and
a results file read back into the same response cache, so half-price batch endpoints (and vLLM's
`run_batch`) feed a run exactly as live requests would.

Format (https://platform.openai.com/docs/guides/batch): one request a line,
`{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body": {...}}`; results come back as
`{"custom_id", "response": {"status_code", "body": {...}}, "error"}` in any order.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sentisynth.errors import DataError, RunStopped
from sentisynth.llm.base import LLMRequest
from sentisynth.utils import write_jsonl

log = logging.getLogger(__name__)


class BatchPending(RunStopped):
    """Requests were written to a batch file: run it, then rerun with `generator.batch_results=<output>`."""


def batch_line(client: Any, req: LLMRequest) -> dict[str, Any]:
    """One request in Batch format; extra body fields (top_k, repetition_penalty) go into the body itself."""
    body = client.request_body(req)
    body.update(body.pop("extra_body", None) or {})
    url = "/v1/chat/completions" if req.messages is not None else "/v1/completions"
    return {"custom_id": client.key(req), "method": "POST", "url": url, "body": body}


def write_batch_requests(client: Any, requests: Sequence[LLMRequest]) -> None:
    """Write the unanswered requests (deduplicated by key) as a batch file beside the response cache and stop
    the run with one line saying how to run it and how to read the results back; nothing when all are answered."""
    missing = {client.key(r): r for r in requests if client.cached(client.key(r)) is None}
    if not missing:
        return
    path = client.cache_path.parent / f"batch-{len(missing)}-{next(iter(missing))[:12]}.jsonl"
    write_jsonl(path, [batch_line(client, r) for r in missing.values()])
    raise BatchPending(
        f"{len(missing)} requests written to the batch file {path} (OpenAI Batch format). Submit it to the "
        "provider's Batch API (or run it with python -m vllm.entrypoints.openai.run_batch -i FILE -o OUT --model "
        "DIR), then rerun this command with generator.batch_results=<the output file>"
    )


def import_batch_results(client: Any, path: Path) -> int:
    """Put every successful answer of a Batch output file into the client's response cache; returns how many
    were new. Failed lines are counted and logged (their requests are sent again or batched again)."""
    if not path.is_file():
        raise DataError(f"generator.batch_results={path}: no such file")
    added = failed = 0
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}, line {n}: not JSON ({e.msg})") from None
        response = row.get("response") or {}
        if row.get("error") or response.get("status_code") != 200 or not row.get("custom_id"):
            failed += 1
            continue
        added += int(client.add_answer(str(row["custom_id"]), response["body"]))
    if failed:
        log.warning("%s: %d requests failed in the batch; they will be asked for again", path, failed)
    return added
