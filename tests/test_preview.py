"""Issue 28 item 3: `preview=N` uses cached models only and says which command caches them."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentisynth.cache import cached_only, one_time_cost
from sentisynth.errors import DataError
from sentisynth.generation.preview import preview_lines
from sentisynth.generation.tiny import cached_pretraining


def test_preview_refuses_a_one_time_build_naming_the_command(tmp_path: Path) -> None:
    built: list[Path] = []
    cached_only("python generate.py generator=quick")
    try:
        with pytest.raises(
            DataError, match=r"not cached yet .* run `python generate.py generator=quick` first"
        ):
            cached_pretraining("tiny", "k", tmp_path, built.append)
        with pytest.raises(DataError, match="filter teacher is not cached"):
            one_time_cost("the filter teacher", "1 min", tmp_path)
    finally:
        cached_only(None)
    assert built == []
    one_time_cost("the filter teacher", "1 min", tmp_path)  # outside preview: only a log line


def test_preview_lines_show_guidance_and_verdicts() -> None:
    rows = [
        {"id": "1", "label": 0, "text": "so mad", "provenance": {"keywords": ["mad"]}},
        {"id": "2", "label": 0, "text": "meh", "provenance": {"keywords": ["fury"]}},
    ]
    lines = preview_lines(rows, {"1"}, {"2": "teacher: low_confidence"}, ["anger", "joy"])
    assert lines[0] == "anger (1/2 kept):" and "[kept] so mad" in lines[1] and "guidance: mad" in lines[2]
    assert "[rejected: teacher: low_confidence] meh" in lines[3] and lines[-1] == "joy (0/0 kept):"
