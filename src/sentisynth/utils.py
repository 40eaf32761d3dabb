"""Small shared helpers, one copy each: seeding, atomic writes, JSON and JSON Lines, content hashes, markdown,
cross-process locks and the DDP rank."""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and (if imported) torch, so a config and seed give the same results."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a file so that readers never see a partial one (temp file in the same dir + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.errno and not e.filename:  # a full disk: name what was being written
            raise OSError(e.errno, e.strerror or os.strerror(e.errno), str(path)) from e
        raise


def to_plain(cfg: Any) -> Any:
    """OmegaConf nodes -> plain dicts/lists (interpolations resolved); anything else unchanged."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(cfg, (DictConfig, ListConfig)):
        return OmegaConf.to_container(cfg, resolve=True)
    return cfg


def _to_builtin(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def to_json(obj: Any) -> str:
    """Indented JSON text (NumPy scalars/arrays and paths converted), ending with a newline."""
    return json.dumps(obj, indent=2, ensure_ascii=False, default=_to_builtin) + "\n"


def write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, to_json(obj))


def _broken(path: str | os.PathLike, e: ValueError, line: int | None = None) -> Exception:
    from sentisynth.errors import DataError

    where = f"line {e.lineno}, column {e.colno}: {e.msg}" if isinstance(e, json.JSONDecodeError) else str(e)
    if line is not None:
        where = f"line {line}: {where}"
    return DataError(f"{path}: not valid JSON ({where}); the file is damaged or truncated")


def read_json(path: str | os.PathLike) -> Any:
    """Every JSON file the project reads back (metrics, models, caches, reports) comes through here: a
    broken one is a `DataError` naming the file (a missing one stays `FileNotFoundError`, which names it)."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise _broken(path, e) from None


def jsonl_text(rows: Iterable[Any]) -> str:
    """JSON Lines: one object per line, UTF-8 kept as is, numpy values and paths as plain values."""
    return "".join(json.dumps(r, ensure_ascii=False, default=_to_builtin_or_str) + "\n" for r in rows)


def write_jsonl(path: str | os.PathLike, rows: Iterable[Any]) -> None:
    """Write JSON Lines atomically (readers never see a partial file)."""
    atomic_write_text(path, jsonl_text(rows))


def read_jsonl(path: str | os.PathLike) -> list[Any]:
    """Every non-empty line of a JSON Lines file, parsed."""
    rows, i = [], 0
    try:
        with open(path, encoding="utf-8") as f:
            for i, line in enumerate(f, 1):  # noqa: B007 - i names the broken line
                if line.strip():
                    rows.append(json.loads(line))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise _broken(path, e, i) from None
    return rows


def _to_builtin_or_str(obj: Any) -> Any:
    try:
        return _to_builtin(obj)
    except TypeError:
        return str(obj)


def content_key(obj: Any, length: int = 16) -> str:
    """Stable hash of a JSON-able object (sorted keys): the name of a cache entry for that content."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


def row_checksum(row: dict) -> str:
    """Checksum of a store line's content (without its own `crc`): a flipped byte no longer passes as data."""
    body = {k: v for k, v in row.items() if k != "crc"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def checked_line(raw: bytes) -> dict | None:
    """One checksummed JSONL line (`row_checksum` in its `crc`), or None when it is torn (no newline),
    undecodable, not an object, or fails its checksum: what append-only stores read back after a crash."""
    if not raw.endswith(b"\n"):
        return None
    try:
        row = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(row, dict) or row.get("crc") != row_checksum(row):  # no crc at all: not trusted either
        return None
    return row


def file_fingerprint(path: str | os.PathLike, length: int = 16) -> str:
    """Hash of a file's bytes, read in chunks (corpora can be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:length]


def markdown_table(
    columns: Sequence[Any], rows: Iterable[Sequence[Any]], cell: Callable[[Any], str] = str
) -> str:
    """A GitHub markdown table; `cell` formats each value (e.g. floats to 4 digits)."""
    lines = ["| " + " | ".join(map(str, columns)) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend (no display needed, safe in workers)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Lay out, save atomically (temp file + rename, so a reader never sees half a PNG) and close a figure."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.tight_layout()
    fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def is_rank_zero() -> bool:
    """False on DDP ranks 1..N-1 (launched by Lightning, torchrun or srun): they train but never write files.

    Read from torch.distributed once it is up, else from the launchers' environment variables, so the answer
    is right before the first `Trainer.fit` too (a launched rank starts with LOCAL_RANK set). torch is not
    imported for this: a process group can only be up if torch already is, and importing it costs 2.3 s of
    the TF-IDF job's startup (benchmarks/bench_startup.py).
    """
    if "torch.distributed" in sys.modules:
        dist = sys.modules["torch.distributed"]
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank() == 0
    return all(int(os.environ.get(v) or 0) == 0 for v in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"))


def barrier() -> None:
    """Wait for every DDP rank (no-op in one process): rank 0 has published what the others read next."""
    dist = sys.modules.get("torch.distributed")  # no process group without torch imported (is_rank_zero)
    if dist is not None and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


@contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """Exclusive lock between processes, also across machines on a shared filesystem (`filelock`: flock,
    or an O_EXCL lock file where the filesystem has no flock). A no-op on DDP ranks other than 0: they
    never write caches, and waiting for a lock that rank 0 holds across a collective would deadlock."""
    from filelock import FileLock

    if not is_rank_zero():
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path)):
        yield


def entry_lock(entry: str | os.PathLike) -> Any:
    """The lock for building the cache entry `<cache>/<kind>/<key>`: `<cache>/.locks/<kind>-<key>.lock`, kept
    out of the `<kind>/` listing. The first job builds the entry; others wait, then find it built."""
    entry = Path(entry)
    return file_lock(entry.parent.parent / ".locks" / f"{entry.parent.name}-{entry.name}.lock")
