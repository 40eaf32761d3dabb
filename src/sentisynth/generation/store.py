"""Resumable generation store and content-addressed cache.

Batches are appended to a JSONL file as one flushed + fsynced write each; every line records its batch
id, the batch's size and a checksum of its content, so after a crash (even SIGKILL mid-write) or a
damaged byte only complete, intact batches are kept and the file is rewritten without the rest. Batches
are deterministic given their id, so a resumed run regenerates exactly what was lost and nothing twice.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from sentisynth.utils import checked_line, is_rank_zero, jsonl_text, row_checksum, write_jsonl

log = logging.getLogger(__name__)


def parse_line(raw: bytes) -> dict | None:
    """One store line, or None when it is torn, undecodable, fails its checksum, or is not a batch row."""
    row = checked_line(raw)
    if row is None or not isinstance(row.get("batch"), str) or not isinstance(row.get("batch_n"), int):
        return None
    return row


class BatchStore:
    """Append-only store of generated batches (`batches.jsonl`)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.batches: dict[str, list[dict]] = {}
        self.n_recovered = 0
        self._load()

    def _load(self) -> None:
        """Keep only complete batches whose every line parses and matches its checksum; rewrite the file
        without the rest (a torn tail, a flipped byte, a deleted line), which is then regenerated."""
        if not self.path.exists():
            return
        groups: dict[str, list[dict]] = {}
        sizes: dict[str, int] = {}
        bad_lines = 0
        for raw in self.path.read_bytes().splitlines(keepends=True):
            row = parse_line(raw)
            if row is None:
                bad_lines += 1
                continue
            groups.setdefault(row["batch"], []).append(row)
            sizes[row["batch"]] = row["batch_n"]
        complete = {b: rows for b, rows in groups.items() if len(rows) == max(sizes[b], 1)}
        if (
            bad_lines or len(complete) != len(groups)
        ) and is_rank_zero():  # elsewhere rank 0 may be mid-append
            lost = sum(len(rows) for b, rows in groups.items() if b not in complete)
            log.warning(
                "%s: %d torn or damaged line(s); dropping %d incomplete batch(es) (%d more line(s)), "
                "regenerated on demand",
                self.path,
                bad_lines,
                len(groups) - len(complete),
                lost,
            )
            write_jsonl(self.path, (r for rows in complete.values() for r in rows))
        self.batches = {b: [r for r in rows if not r.get("empty_batch")] for b, rows in complete.items()}
        self.n_recovered = sum(len(v) for v in self.batches.values())

    def __contains__(self, batch_id: str) -> bool:
        return batch_id in self.batches

    def append(self, batch_id: str, rows: list[dict]) -> None:
        n = len(rows)
        lines = [dict(r, batch=batch_id, batch_n=n) for r in rows] or [
            {"batch": batch_id, "batch_n": 0, "empty_batch": True}
        ]
        lines = [
            json.loads(jsonl_text([r])) for r in lines
        ]  # plain JSON values: the checksum a reader recomputes
        lines = [dict(r, crc=row_checksum(r)) for r in lines]
        text = jsonl_text(lines)
        self.batches[batch_id] = [r for r in lines if not r.get("empty_batch")]
        if not is_rank_zero():  # DDP ranks 1..N-1 generate the same batches (same seeds); rank 0 stores them
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
