"""Verified cache entries: a directory is trusted only when its content hashes still match.

Writers build an entry in a temp directory, `seal` it (sha256, size and line count of every file into
`integrity.json`, written last) and publish it with one rename. Readers call `is_sound` instead of
testing for a marker file: a missing seal, a missing, truncated, zeroed or flipped file, or an unreadable
seal is logged with the path, the entry is moved aside and removed, and the caller rebuilds it.
`python -m sentisynth.cache seal DIR` vouches for an entry made by an older version (no seal yet).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sentisynth.utils import barrier, is_rank_zero, write_json

log = logging.getLogger(__name__)

SEAL = "integrity.json"
_SKIP = {SEAL, ".lock"}


# Set by `generate.py preview=N`: the command that builds the one-time entries; building one then fails.
_CACHED_ONLY: list[str] = []


def cached_only(command: str | None) -> None:
    """Refuse one-time builds (`one_time_cost` raises) while `command` is set; None allows them again."""
    _CACHED_ONLY[:] = [command] if command else []


def refuse_if_cached_only(what: str) -> None:
    """In preview mode (`cached_only`), one line naming what is missing and the command that caches it."""
    if _CACHED_ONLY:
        from sentisynth.errors import DataError

        raise DataError(
            f"{what} is not cached yet (preview uses cached models only); run `{_CACHED_ONLY[0]}` first"
        )


def one_time_cost(what: str, estimate: str, where: str | os.PathLike) -> None:
    """Say before a one-time cost (pretraining, fine-tuning, a teacher fit) what it is, how long it should
    take here and that it is cached afterwards; in preview mode, fail with the command that caches it."""
    refuse_if_cached_only(what)
    log.info("one-time: %s, %s; cached afterwards in %s (later runs reuse it)", what, estimate, where)


def file_digest(path: str | os.PathLike) -> dict[str, Any]:
    """sha256, byte count and line count of one file (read in 1 MiB chunks)."""
    h, size, lines = hashlib.sha256(), 0, 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
            lines += chunk.count(b"\n")
    return {"sha256": h.hexdigest(), "bytes": size, "lines": lines}


def _files(directory: Path) -> list[Path]:
    return sorted(
        p for p in directory.rglob("*") if p.is_file() and p.name not in _SKIP and not p.name.endswith(".tmp")
    )


def seal(directory: str | os.PathLike, counts: dict[str, Any] | None = None) -> dict[str, Any]:
    """Record the content of every file in `directory` (and optional counts) in its `integrity.json`."""
    directory = Path(directory)
    entry = {
        "files": {p.relative_to(directory).as_posix(): file_digest(p) for p in _files(directory)},
        "counts": counts or {},
        "sealed": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_json(directory / SEAL, entry)
    return entry


def problem(directory: str | os.PathLike) -> str | None:
    """What is wrong with a sealed entry (None when every file matches its recorded hash)."""
    directory = Path(directory)
    try:
        recorded = json.loads((directory / SEAL).read_text(encoding="utf-8"))["files"]
    except FileNotFoundError:
        return f"no {SEAL} (unfinished or made by an older version)"
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"{SEAL} unreadable ({type(e).__name__})"
    for rel, want in recorded.items():
        path = directory / rel
        if not path.is_file():
            return f"{rel} is missing"
        got = file_digest(path)
        if got["bytes"] != want["bytes"]:
            return f"{rel} has {got['bytes']} bytes, {want['bytes']} recorded"
        if got["sha256"] != want["sha256"]:
            return f"{rel} does not match its recorded sha256 (damaged)"
    return None


def discard(directory: str | os.PathLike) -> None:
    """Move a damaged entry out of the way (one rename, so no reader sees it half-deleted), then delete it."""
    directory = Path(directory)
    aside = directory.parent / f".{directory.name}.damaged-{os.getpid()}-{time.time_ns()}"
    os.replace(directory, aside)
    shutil.rmtree(aside, ignore_errors=True)


def is_sound(directory: str | os.PathLike, what: str) -> bool:
    """True for an intact sealed entry; False when absent, or damaged (logged, then removed for a rebuild)."""
    directory = Path(directory)
    if not directory.exists():
        return False
    issue = problem(directory)
    if issue is None:
        return True
    log.warning("damaged cache: %s %s: %s; rebuilding it", what, directory, issue)
    print(f"warning: damaged cache {directory}: {issue}; rebuilding it", file=sys.stderr, flush=True)
    discard(directory)
    return False


def publish(tmp: str | os.PathLike, final: str | os.PathLike, counts: dict[str, Any] | None = None) -> None:
    """Seal `tmp` and rename it to `final`; a concurrent run that published first wins (tmp is dropped)."""
    tmp, final = Path(tmp), Path(final)
    seal(tmp, counts)
    try:
        os.replace(tmp, final)
    except OSError:
        if not final.exists():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def publish_dir(
    final: str | os.PathLike, write: Callable[[Path], None], counts: dict[str, Any] | None = None
) -> None:
    """Build a cache entry in a temp sibling (`write(tmp)`), seal it and rename it into place, so readers never
    see half of it; a concurrent run that published first wins. Under DDP rank 0 writes, the others wait."""
    final = Path(final)
    if is_rank_zero():
        tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            write(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        publish(tmp, final, counts)
    barrier()


def write_entry(
    final: str | os.PathLike, files: dict[str, str], counts: dict[str, Any] | None = None
) -> None:
    """Write text files as one sealed entry: built in a temp dir, then published with one rename."""
    final = Path(final)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, text in files.items():
        (tmp / name).write_text(text, encoding="utf-8")
    publish(tmp, final, counts)


def read_entry_json(directory: str | os.PathLike, name: str, what: str) -> Any:
    """A JSON file of a sound entry, or None when the entry is absent or damaged (then removed)."""
    directory = Path(directory)
    if not is_sound(directory, what):
        return None
    return json.loads((directory / name).read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> None:
    """`python -m sentisynth.cache seal DIR...` or `check DIR...`."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or args[0] not in ("seal", "check"):
        print("usage: python -m sentisynth.cache seal|check DIR...", file=sys.stderr)
        sys.exit(2)
    bad = 0
    for d in args[1:]:
        if args[0] == "seal":
            entry = seal(d)
            print(f"sealed {d}: {len(entry['files'])} files")
        else:
            issue = problem(d)
            bad += issue is not None
            print(f"{d}: {issue or 'ok'}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
