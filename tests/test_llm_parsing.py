"""The post parser on a battery of realistic LLM answers (tests/fixtures/completions.json, 35 of them):
preambles, numbered/bulleted/markdown lists, JSON (schema, fenced, bare), quotes, closing offers, refusals,
more or fewer posts than asked, answers cut by max_tokens."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sentisynth.llm.parsing import parse_posts, posts_schema

CASES = json.loads((Path(__file__).parent / "fixtures" / "completions.json").read_text(encoding="utf-8"))
LEFTOVER = re.compile(
    r"^(?:\d+[.)\]:-]|[-*•>]\s|post \d|tweet #?\d|sure\b|here (?:are|is)\b|[\"'“”‘’])", re.I
)


def test_the_battery_is_large_and_varied() -> None:
    assert len(CASES) >= 30 and len({c["name"] for c in CASES}) == len(CASES)
    assert {c["finish_reason"] for c in CASES} == {"stop", "length"} and any(c["refused"] for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_each_answer_gives_exactly_its_posts(case: dict) -> None:
    parsed = parse_posts(case["text"], case["n"], case["finish_reason"])
    assert parsed.posts == case["posts"] and parsed.refused == case["refused"]
    assert not any(LEFTOVER.match(p) for p in parsed.posts)  # no list marker, preamble or quote survives


def test_dropped_counts_the_extra_and_the_unfinished() -> None:
    by_name = {c["name"]: c for c in CASES}
    extra = by_name["more_than_asked"]
    assert parse_posts(extra["text"], extra["n"]).dropped == 2
    cut = by_name["cut_by_length"]
    assert parse_posts(cut["text"], cut["n"], "length").dropped == 1
    assert parse_posts(cut["text"], cut["n"], "stop").posts[-1] == "the best is yet to"  # not cut: kept
    assert parse_posts(by_name["refusal_sorry"]["text"], 3).posts == []


def test_schema_asks_for_a_list_of_at_most_n_posts() -> None:
    schema = posts_schema(5)["json_schema"]["schema"]
    assert schema["required"] == ["posts"] and schema["properties"]["posts"]["maxItems"] == 5
