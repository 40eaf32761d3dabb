"""Resumable generation store and content-addressed cache.

Batches are appended to a JSONL file as one flushed + fsynced write each; every line records its batch
id and the batch's size, so after a crash (even SIGKILL mid-write) only complete batches are kept and
the file is rewritten without the torn tail. Batches are deterministic given their id, so a resumed
run regenerates exactly what was lost and nothing twice.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sentisynth.utils import jsonl_text, write_jsonl

log = logging.getLogger(__name__)


@contextmanager
def exclusive(path: str | os.PathLike) -> Iterator[None]:
    """Process-exclusive lock, so two runs of the same config never append to the same store."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class BatchStore:
    """Append-only store of generated batches (`batches.jsonl`)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.batches: dict[str, list[dict]] = {}
        self.n_recovered = 0
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        groups: dict[str, list[dict]] = {}
        sizes: dict[str, int] = {}
        torn = False
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                if not line.endswith("\n"):
                    torn = True
                    break
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    torn = True
                    break
                groups.setdefault(row["batch"], []).append(row)
                sizes[row["batch"]] = row["batch_n"]
        complete = {b: rows for b, rows in groups.items() if len(rows) == max(sizes[b], 1)}
        if torn or len(complete) != len(groups):
            log.warning("%s: dropping %d incomplete batch(es) left by an interrupted run",
                        self.path, len(groups) - len(complete) + (1 if torn else 0))
            write_jsonl(self.path, (r for rows in complete.values() for r in rows))
        self.batches = {b: [r for r in rows if not r.get("empty_batch")] for b, rows in complete.items()}
        self.n_recovered = sum(len(v) for v in self.batches.values())

    def __contains__(self, batch_id: str) -> bool:
        return batch_id in self.batches

    def append(self, batch_id: str, rows: list[dict]) -> None:
        n = len(rows)
        lines = [dict(r, batch=batch_id, batch_n=n) for r in rows] or [{"batch": batch_id, "batch_n": 0, "empty_batch": True}]
        text = jsonl_text(lines)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        self.batches[batch_id] = [dict(r, batch=batch_id, batch_n=n) for r in rows]
