"""Posts out of an LLM's answer, whatever shape it took: JSON (structured output, in a code fence, a bare
list), or free text with a preamble ("Sure! Here are 5 posts:"), numbered / bulleted / markdown lists,
headings, quotes around each post and a closing offer ("Let me know if…"). A refusal gives no post. An
answer cut by `max_tokens` (`finish_reason == "length"`) loses its last, unfinished post."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

_QUOTES = "\"'“”‘’«»`"
# "1.", "2)", "(3)", "#4", "Post 5:", "Tweet #6 -", "-", "*", "•", "–"; markdown bold around a number
_MARKER = re.compile(
    r"^\s*(?:\*\*)?(?:(?:post|tweet)\s*#?\s*\d{1,3}\s*[.):\-–]*|[(\[]?#?\d{1,3}\s*[.):\]\-–]|[-*\u2022\u2013\u2014+>])"
    r"(?:\*\*)?\s*",
    re.IGNORECASE,
)
_PREAMBLE = re.compile(
    r"^\s*(?:sure|of course|certainly|absolutely|okay|ok|here (?:are|is|you go)|below are|these are|"
    r"i(?:'ve| have) (?:written|created|generated)|as requested)\b.*",
    re.IGNORECASE,
)
_CLOSING = re.compile(
    r"^\s*(?:let me know|i hope (?:these|this)|hope (?:these|this)|feel free|if you(?:'d| would)? (?:like|need|want)|"
    r"would you like|want me to|these posts|note:|\(?note that|enjoy|happy to help)\b",
    re.IGNORECASE,
)
_REFUSAL = re.compile(
    r"^\s*(?:i'?m sorry|i am sorry|sorry, (?:but )?i|i (?:can(?:no|')t|won'?t|am (?:not able|unable)|'m (?:not able|"
    r"unable))|as an ai\b|i must decline)",
    re.IGNORECASE,
)
_HEADING = re.compile(r"^\s*(?:#{1,6}\s|\*\*[^*]+\*\*:?\s*$|[A-Z][\w ]{0,40}:\s*$)")
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_LEADING_TAGS = re.compile(r"^(?:\s*<[^<>\s]{1,40}>)+\s*")


@dataclass
class ParsedPosts:
    """The posts, how many were found but not used (beyond the asked number, or unfinished), and whether
    the answer was a refusal."""

    posts: list[str] = field(default_factory=list)
    dropped: int = 0
    refused: bool = False


def posts_schema(n: int) -> dict[str, Any]:
    """`response_format` asking for `{"posts": [n strings]}` (OpenAI's json_schema form; vLLM and llama.cpp
    take it too)."""
    items = {"type": "string", "minLength": 2, "maxLength": 400}
    schema = {
        "type": "object",
        "properties": {"posts": {"type": "array", "items": items, "minItems": 1, "maxItems": max(1, int(n))}},
        "required": ["posts"],
        "additionalProperties": False,
    }
    return {"type": "json_schema", "json_schema": {"name": "posts", "strict": True, "schema": schema}}


def clean_text(text: str) -> str:
    """Normalise white space and strip leftover prefix/special tags at the start."""
    return " ".join(_LEADING_TAGS.sub("", text).split())


def _unquote(text: str) -> str:
    text = text.strip()
    while len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    return text


def _json_posts(text: str) -> list[str] | None:
    """Posts from a JSON answer (`{"posts": [...]}`, another single list field, or a bare list), also inside
    a code fence; None when the answer is not JSON of that shape."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)] or [text]
    for cand in candidates:
        cand = cand.strip()
        if not cand or cand[0] not in "[{":
            continue
        try:
            obj = json.loads(cand)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            lists = [v for v in obj.values() if isinstance(v, list)]
            obj = obj.get("posts", lists[0] if len(lists) == 1 else None)
        if isinstance(obj, list):
            out = [o.get("text") or o.get("post") if isinstance(o, dict) else o for o in obj]
            return [str(o) for o in out if isinstance(o, (str, int, float)) and str(o).strip()]
    return None


def _truncated_json_posts(text: str) -> list[str] | None:
    """Complete strings of a JSON list cut by max_tokens (`{"posts": ["a", "b", "c…`): all but the open one."""
    body = _FENCE.sub(lambda m: m.group(1), text).strip()
    if not body.startswith(("{", "[")) or '"' not in body:
        return None
    start = body.find("[")
    if start < 0:
        return None
    strings = re.findall(r'"((?:[^"\\]|\\.)*)"\s*[,\]]', body[start:])
    return [json.loads(f'"{s}"') for s in strings]


def _text_posts(text: str) -> tuple[list[str], bool]:
    """Posts from free text, one per line (list markers, quotes, preambles, headings, closings removed);
    and whether the answer is a refusal."""
    lines = [ln for ln in text.replace("\r", "\n").split("\n") if ln.strip()]
    if lines and _REFUSAL.match(_MARKER.sub("", lines[0])) and len(lines) <= 2:
        return [], True
    posts: list[str] = []
    for raw in lines:
        marked = bool(_MARKER.match(raw))
        line = _MARKER.sub("", raw).strip() if marked else raw.strip()
        if not marked and (_PREAMBLE.match(line) or (line.endswith(":") and len(line.split()) < 14)):
            continue
        if not marked and _HEADING.match(raw):
            continue
        if not marked and posts and _CLOSING.match(line):
            break  # the rest is a closing offer
        if line.startswith("```"):
            continue
        line = clean_text(_unquote(line.replace("**", "")))
        if len(line) >= 2 and not _REFUSAL.match(line):
            posts.append(line)
    return posts, False


def parse_posts(text: str, n_asked: int, finish_reason: str | None = None) -> ParsedPosts:
    """At most `n_asked` posts from `text`; see the module docstring for the shapes it reads."""
    text = text or ""
    cut = finish_reason == "length"
    posts = _json_posts(text)
    refused = False
    if posts is None and cut:
        posts = _truncated_json_posts(text)
        cut = False if posts is not None else cut  # the open string was not matched
    if posts is None:
        posts, refused = _text_posts(text)
    posts = [p for p in (clean_text(_unquote(p)) for p in posts) if p]
    dropped = 0
    if cut and posts:
        posts, dropped = posts[:-1], 1
    extra = max(0, len(posts) - int(n_asked))
    return ParsedPosts(posts[: int(n_asked)], dropped + extra, refused)
