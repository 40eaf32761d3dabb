"""Cache entries built by racing processes (parallel study jobs): `entry_lock` + `publish_dir` build once."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import pytest

from sentisynth.cache import publish_dir
from sentisynth.utils import entry_lock


def build_once(entry: str, log: str) -> None:
    """What load_or_train_teacher and the generators do: check under the lock, else build and publish."""
    with entry_lock(entry):
        if (Path(entry) / "meta.json").is_file():
            return
        with open(log, "a") as f:
            f.write("built\n")
        time.sleep(0.3)  # a slow build: the other processes must wait, not build again

        def write(tmp: Path) -> None:
            (tmp / "meta.json").write_text("{}")

        publish_dir(entry, write)


@pytest.mark.slow  # three spawned interpreters
def test_racing_processes_build_an_entry_once(tmp_path: Path) -> None:
    entry, log = tmp_path / "cache" / "teachers" / "abc", tmp_path / "builds.txt"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=build_once, args=(str(entry), str(log))) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert log.read_text().splitlines() == ["built"]
    assert sorted(p.name for p in entry.parent.iterdir()) == ["abc"]  # the lock lives in <cache>/.locks
    assert (entry / "meta.json").is_file() and (tmp_path / "cache" / ".locks" / "teachers-abc.lock").exists()
