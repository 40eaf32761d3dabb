"""Guidance strategies as text: label-prefix conditioning for small LMs, instruction prompts for chat
LMs, and robust parsing/cleaning of what the models write back."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sentisynth.llm.parsing import clean_text  # noqa: F401 - re-exported: the label LMs clean decoded text with it
from sentisynth.llm.parsing import parse_posts as parse_llm_posts

STRATEGIES = ("naive", "exemplar", "shap", "shap_bias", "adaptive")  # adaptive: generation/adaptive.py
KW, EX, TEXT = "<kw>", "<ex>", "<text>"

DEFAULT_INSTRUCTION = (
    "Write {n} different, realistic social media posts (tweets) that express {label}. "
    "{exemplars}{keywords}Write one post per line, numbered 1 to {n}, and nothing else."
)


@dataclass
class GuidanceStrategy:
    """How a class is described to the generator (the `guidance` config group)."""

    name: str = "naive"
    n_exemplars: int = 0  # exemplar posts per prompt / prefix
    n_keywords: int = 0  # SHAP keywords per prompt / prefix
    keyword_pool: int = 20  # keywords are drawn from the class's top `keyword_pool`
    bias: float = 0.0  # shap_bias: logit bonus for keyword tokens
    bias_keywords: int = 20  # shap_bias: how many top keywords get the bonus
    max_exemplar_words: int = 30  # exemplars are cut to keep prefixes inside small context windows
    instruction: str = DEFAULT_INSTRUCTION

    def __post_init__(self) -> None:
        if self.name not in STRATEGIES:
            raise ValueError(f"guidance.name must be one of {STRATEGIES}, got {self.name!r}")

    @property
    def needs_guidance(self) -> bool:
        return self.n_exemplars > 0 or self.n_keywords > 0 or self.bias != 0

    @property
    def keyword_conditioning(self) -> bool:
        return self.n_keywords > 0

    def finetune_format(self) -> dict[str, Any]:
        """The parts that change how seed posts are formatted for fine-tuning (cache key of the model)."""
        return {
            "n_exemplars": self.n_exemplars,
            "n_keywords": self.n_keywords,
            "keyword_pool": self.keyword_pool,
            "max_exemplar_words": self.max_exemplar_words,
        }


# ---------------------------------------------------------------------------------------------
# Reading the guidance dict (schema of sentisynth.guidance: classes -> keywords / exemplars)
# ---------------------------------------------------------------------------------------------


def class_keywords(guidance: dict | None, label_name: str, top: int) -> tuple[list[str], np.ndarray]:
    """Top `top` keyword terms of a class with positive sampling weights (from their scores)."""
    if not guidance:
        return [], np.zeros(0)
    entries = guidance.get("classes", {}).get(label_name, {}).get("keywords", [])[:top]
    terms = [str(e["term"]) for e in entries]
    scores = np.array([float(e.get("score", 1.0) or 0.0) for e in entries], dtype=float)
    weights = np.clip(scores, 1e-6, None) if scores.size else scores
    return terms, weights


def class_exemplars(guidance: dict | None, label_name: str) -> list[tuple[str, int]]:
    if not guidance:
        return []
    return [
        (str(e["text"]), int(e["index"]))
        for e in guidance.get("classes", {}).get(label_name, {}).get("exemplars", [])
    ]


def sample_keywords(rng: np.random.Generator, terms: Sequence[str], weights: np.ndarray, k: int) -> list[str]:
    """k distinct keywords, more important ones more often, kept in ranking order."""
    if k <= 0 or not terms:
        return []
    k = min(k, len(terms))
    picked = rng.choice(len(terms), size=k, replace=False, p=weights / weights.sum())
    return [terms[i] for i in sorted(picked)]


def sample_exemplars(
    rng: np.random.Generator, exemplars: Sequence[tuple[str, int]], k: int, exclude_index: int | None = None
) -> list[tuple[str, int]]:
    pool = [e for e in exemplars if e[1] != exclude_index]
    if k <= 0 or not pool:
        return []
    picked = rng.choice(len(pool), size=min(k, len(pool)), replace=False)
    return [pool[i] for i in sorted(picked)]


def keywords_in_text(text: str, terms: Sequence[str], limit: int) -> list[str]:
    """Keywords (in ranking order) that occur in `text` as whole words: the fine-tuning conditioning."""
    low = text.lower()
    found = [t for t in terms if re.search(r"(?<!\w)" + re.escape(t.lower()) + r"(?!\w)", low)]
    return found[:limit]


# ---------------------------------------------------------------------------------------------
# Small label-fine-tuned LMs: conditioning prefixes
# ---------------------------------------------------------------------------------------------


def label_token(label_name: str) -> str:
    return "<" + re.sub(r"\s+", "_", label_name.strip()) + ">"


def special_tokens(label_names: Sequence[str], markers: Sequence[str] = ()) -> list[str]:
    """Label tokens, the slot markers and (attributes on) the attribute markers `<topic>` ..."""
    return [label_token(n) for n in label_names] + [KW, EX, TEXT, *markers]


def shorten(text: str, max_words: int) -> str:
    words = text.split()
    return " ".join(words[:max_words])


def conditioning_prefix(
    label_name: str,
    keywords: Sequence[str] | None = None,
    exemplars: Sequence[str] = (),
    max_exemplar_words: int = 30,
    attributes: str = "",
) -> str:
    """`<anger> <kw> furious hate <ex> first example <text>`: the post follows `<text>`.

    `keywords=None` means the strategy has no keyword slot; an empty list is an (informative) empty slot.
    `attributes` (`<topic> rain <length> short`, attributes on) goes just before `<text>`.
    """
    parts = [label_token(label_name)]
    if keywords is not None:
        parts.append(" ".join([KW, *keywords]))
    for ex in exemplars:
        parts.append(f"{EX} {shorten(ex, max_exemplar_words)}")
    if attributes:
        parts.append(attributes)
    parts.append(TEXT)
    return " ".join(parts)


# ---------------------------------------------------------------------------------------------
# Instruction LMs: prompts and completion parsing
# ---------------------------------------------------------------------------------------------


def render_instruction(
    template: str,
    label_name: str,
    n: int,
    keywords: Sequence[str] = (),
    exemplars: Sequence[str] = (),
    attributes: str = "",
) -> str:
    """The prompt; `attributes` (a line such as `Topic: rain. Length: about 9 words.`) fills an `{attributes}`
    slot of the template, or is added as the prompt's last line when the template has none."""
    ex_block = ""
    if exemplars:
        ex_block = "Examples of such posts:\n" + "\n".join(f"- {e}" for e in exemplars) + "\n"
    kw_block = ""
    if keywords:
        kw_block = "Words typical of " + label_name + " posts: " + ", ".join(keywords) + ".\n"
    slots = {"n": n, "label": label_name, "exemplars": ex_block, "keywords": kw_block}
    if "{attributes}" in template:
        return template.format(**slots, attributes=attributes + "\n" if attributes else "").strip()
    text = template.format(**slots).strip()
    return f"{text}\n{attributes}" if attributes else text


def parse_posts(completion: str, n: int) -> list[str]:
    """Posts from an instruction LM's completion (at most `n`): one parser for every LLM path,
    `sentisynth.llm.parsing.parse_posts`, which also counts dropped posts and refusals."""
    return parse_llm_posts(completion, n).posts
