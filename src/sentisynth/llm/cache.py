"""The response cache: every paid answer, appended durably (one flushed + fsynced line each, with a checksum)
before it counts, keyed by the request's content. A run killed at any point, or stopped by a cap, loses no
answer it received and never asks the same question twice. Lines torn by a crash or damaged on disk fail
their checksum and are ignored (that request is simply asked again)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from sentisynth.utils import checked_line, row_checksum

log = logging.getLogger(__name__)


class ResponseCache:
    """`responses.jsonl` under a directory: key -> the completion's record. Several processes may append to
    the same file: each answer is one `O_APPEND` write, so lines never interleave."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rows: dict[str, dict[str, Any]] = {}
        self.n_damaged = 0
        self.reload()

    def reload(self) -> None:
        """Read every intact line (another process may have added some since)."""
        if not self.path.exists():
            return
        for raw in self.path.read_bytes().splitlines(keepends=True):
            row = self._parse(raw)
            if row is None:
                self.n_damaged += 1
                continue
            self.rows[row.pop("key")] = row
        if self.n_damaged:
            log.warning("%s: %d torn or damaged line(s) ignored; asked again", self.path, self.n_damaged)

    @staticmethod
    def _parse(raw: bytes) -> dict[str, Any] | None:
        row = checked_line(raw)
        if row is None or not isinstance(row.get("key"), str):
            return None
        row.pop("crc")
        return row

    def __contains__(self, key: str) -> bool:
        return key in self.rows

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, key: str) -> dict[str, Any] | None:
        return self.rows.get(key)

    def add(self, key: str, record: dict[str, Any]) -> None:
        """Append one answer and make it durable before returning."""
        self.add_many([(key, record)])

    def add_many(self, items: list[tuple[str, dict[str, Any]]]) -> None:
        """Append several answers with one `O_APPEND` write and one fsync (a group commit: the client's
        answers that arrive while the previous fsync runs share the next one), durable before returning."""
        rows = []
        for key, record in items:
            row = json.loads(json.dumps({"key": key, **record}, ensure_ascii=False))
            row["crc"] = row_checksum(row)
            rows.append(row)
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(data)
            while view:  # a regular file takes it all at once; a short write (disk full) is not silently lost
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        for row in rows:
            self.rows[row["key"]] = {k: v for k, v in row.items() if k not in ("key", "crc")}
