"""The short chaos run CI does: 2 SIGKILLs at random times, a flipped byte in the raw store and a torn final
set, on a miniature tiny generator (the full run: `python benchmarks/chaos.py`, 20 kills)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = os.environ.get("SENTISYNTH_DATA_DIR")


@pytest.mark.slow
@pytest.mark.skipif(
    not DATA or not Path(DATA, "corpus").is_dir(), reason="needs SENTISYNTH_DATA_DIR with the corpus"
)
def test_short_chaos_run_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import chaos
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    report = chaos.main(["--kills", "2", "--quick", "--workdir", str(tmp_path), "--seed", "1"])
    assert report["kills"] == 2 and report["reference_samples"] == 48
    assert report["lost"] == 0 and report["duplicated"] == 0 and report["extra"] == 0
    assert report["corruption"] == {"damaged": 2, "detected": 2, "exact_after": 2, "missed": []}
