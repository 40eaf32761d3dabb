"""Read an offline W&B run back from its `run-*.wandb` file, with wandb's own protobuf records.

wandb >= 0.2x dropped its Python datastore reader; the file is LevelDB's log format (32 KiB blocks,
7-byte record headers: crc32, length, type) after a 7-byte ':W&B' header, each record a serialized
`wandb_internal_pb2.Record`.
"""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path
from typing import Any

BLOCK, HEADER = 32768, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def _payloads(data: bytes) -> list[bytes]:
    assert data[:4] == b":W&B", "not a .wandb file"
    out, pos, partial = [], HEADER, b""
    while pos + HEADER <= len(data):
        room = BLOCK - pos % BLOCK
        if room < HEADER:  # block trailer padding
            pos += room
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind == 0 and length == 0:
            pos += BLOCK - pos % BLOCK if pos % BLOCK else 0
            continue
        if kind == FULL:
            out.append(chunk)
        elif kind == FIRST:
            partial = chunk
        elif kind == MIDDLE:
            partial += chunk
        elif kind == LAST:
            out.append(partial + chunk)
    return out


def read_run(run_dir: Path, wait_s: float = 60.0) -> dict[str, Any]:
    """`{"history": [row, ...], "config": {...}, "run": Record.run, "artifacts": [names]}` of one offline run.

    `run.finish()` returns before wandb's service has written the whole file: wait for the exit record."""
    deadline = time.monotonic() + wait_s
    while True:
        result = _parse(next(Path(run_dir).glob("run-*.wandb")))
        if result["exited"] or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def _parse(path: Path) -> dict[str, Any]:
    from wandb.proto import wandb_internal_pb2 as pb

    result: dict[str, Any] = {"history": [], "config": {}, "run": None, "artifacts": [], "exited": False}
    for payload in _payloads(path.read_bytes()):
        rec = pb.Record()
        rec.ParseFromString(payload)
        kind = rec.WhichOneof("record_type")
        if kind == "history":
            result["history"].append(
                {"/".join(i.nested_key) or i.key: json.loads(i.value_json) for i in rec.history.item}
            )
        elif kind == "run":
            result["run"] = rec.run
        elif kind == "config":
            result["config"].update({i.key: json.loads(i.value_json) for i in rec.config.update})
        elif kind == "artifact":
            result["artifacts"].append(rec.artifact.name)
        elif kind == "exit":
            result["exited"] = True
    return result
