"""Diversity at generation time: attributes (topic, style, length, persona) drawn per request.

Each request gets one value per attribute kind, drawn with the request's own rng (so a run is reproducible
and a request's attributes do not depend on its batch). Values come from `guidance.attributes.lists`
or, with `mine_from_seed`, from the seed posts: topics are the seed's frequent hashtags and content words that no class owns,
lengths are short / medium / long terciles of seed word counts (each with its median word count). Instruction
LMs read them as a line of the prompt; small label LMs as conditioning tokens (`<topic> rain <length> short`)
and, when attributes are on, are fine-tuned on seed posts that carry the attributes mined from each post.
Off (`enabled: false`, the default) nothing is drawn, so prompts, rng streams and cache keys are unchanged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from sentisynth.text import PLACEHOLDERS, tweet_tokenize

KINDS = ("topic", "style", "length", "persona")
MARKERS = {k: f"<{k}>" for k in KINDS}  # conditioning tokens of the label LMs
LENGTHS = ("short", "medium", "long")
# Frequent tweet words that are not topics (verbs, adverbs, fillers; no POS tagger ships offline), besides
# sklearn's English stop words, -ing forms (getting, going) and past forms of 5+ letters (asked, watched).
NOT_TOPICS = frozenset(
    """amp just like know think want really new bit does did said say tell make use believe got get gets
    need feel let come came went goes gonna wanna lol omg im dont don didn doesn isn ain cant won wont yes yeah
    way thing things lot little old long hard right good bad best better worst big today tonight tomorrow
    day days time times year years week point leave look looks watch help ass shit fuck fucking damn""".split()
)


@dataclass
class AttributeConfig:
    """`guidance.attributes`: which kinds, their value lists, and whether to mine topics/lengths from the seed."""

    enabled: bool = False
    kinds: list[str] = field(default_factory=lambda: list(KINDS))
    lists: dict[str, list[str]] = field(default_factory=dict)
    mine_from_seed: bool = True
    n_topics: int = 30  # mined topics: the seed's most frequent hashtags / content words
    min_topic_count: int = 2  # a mined topic occurs in at least this many seed posts
    max_topic_lift: float = 2.0  # and no class holds it more than this many times its share of the seed

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(KINDS)
        if unknown:
            raise ValueError(
                f"guidance.attributes.kinds: unknown {sorted(unknown)} (known: {', '.join(KINDS)})"
            )
        self.kinds = list(self.kinds)
        self.lists = {str(k): [str(v) for v in vs] for k, vs in dict(self.lists or {}).items() if vs}


@dataclass
class AttributeSpace:
    """The values each kind is drawn from (`values`) and, for `length`, each bucket's word count."""

    values: dict[str, list[str]]
    length_words: dict[str, int] = field(default_factory=dict)
    length_edges: tuple[int, int] = (0, 0)  # word counts: short <= edges[0] < medium <= edges[1] < long

    def to_dict(self) -> dict[str, Any]:
        """What keys the caches (raw generation store, fine-tuned models) when attributes are on."""
        return {
            "values": self.values,
            "length_words": self.length_words,
            "length_edges": list(self.length_edges),
        }


def attribute_config(node: Mapping[str, Any] | None) -> AttributeConfig | None:
    """The enabled config, or None (attributes off: no key, no draw, no change anywhere)."""
    cfg = AttributeConfig(**dict(node)) if node else AttributeConfig()
    return cfg if cfg.enabled else None


def content_words(text: str) -> list[str]:
    """Hashtags and alphabetic words of 3+ letters that are neither stop words nor `NOT_TOPICS` nor -ing /
    -ed forms: candidate topics of a post (once each)."""
    out = []
    for t in tweet_tokenize(text):
        word = t.lstrip("#")
        if t in PLACEHOLDERS or not word.isalpha() or len(word) < 3 or word in ENGLISH_STOP_WORDS:
            continue
        if word in NOT_TOPICS or word.endswith("ing") or (len(word) > 4 and word.endswith("ed")):
            continue
        out.append(t)
    return list(dict.fromkeys(out))


def mine_topics(
    texts: Sequence[str], labels: Sequence[int] | None, n: int, min_count: int, max_lift: float = 2.0
) -> list[str]:
    """The seed's frequent hashtags and content words (by how many posts hold them) that are not a class's
    own: a topic is what a post is about, the label says how it feels. On TweetEval emotion the most frequent
    hashtags are #sad, #anger, #fuming; drawn as the topic of a joy post they would fight its label, so a
    word whose share in some class exceeds `max_lift` times that class's share of the seed is left out."""
    words = [content_words(t) for t in texts]
    df = Counter(w for ws in words for w in ws)
    keep = {w for w, c in df.items() if c >= min_count}
    if labels is not None and len(set(labels)) > 1:
        prior = Counter(int(y) for y in labels)
        by_class: dict[str, Counter] = {w: Counter() for w in keep}
        for ws, y in zip(words, labels):
            for w in ws:
                if w in keep:
                    by_class[w][int(y)] += 1
        keep = {
            w
            for w in keep
            if max(by_class[w][c] / df[w] / (prior[c] / len(labels)) for c in prior) <= max_lift
        }
    return sorted(keep, key=lambda w: (-df[w], w))[:n]


def length_buckets(texts: Sequence[str]) -> tuple[dict[str, int], tuple[int, int]]:
    """Terciles of seed word counts: each bucket's median word count, and the two edges."""
    counts = np.array([len(t.split()) for t in texts] or [12])
    lo, hi = (int(x) for x in np.quantile(counts, [1 / 3, 2 / 3]))
    parts = {
        "short": counts[counts <= lo],
        "medium": counts[(counts > lo) & (counts <= hi)],
        "long": counts[counts > hi],
    }
    words = {k: int(np.median(v)) if v.size else int(np.median(counts)) for k, v in parts.items()}
    return words, (lo, hi)


def build_space(
    cfg: AttributeConfig, seed_texts: Sequence[str], seed_labels: Sequence[int] | None = None
) -> AttributeSpace:
    """Config lists win; topics (class-neutral, given the labels) and lengths are mined from the seed when a
    kind has no list."""
    values: dict[str, list[str]] = {}
    words, edges = length_buckets(seed_texts)
    for kind in cfg.kinds:
        if cfg.lists.get(kind):
            values[kind] = list(cfg.lists[kind])
        elif cfg.mine_from_seed and kind == "topic":
            values[kind] = mine_topics(
                seed_texts, seed_labels, cfg.n_topics, cfg.min_topic_count, cfg.max_topic_lift
            )
        elif cfg.mine_from_seed and kind == "length":
            values[kind] = list(LENGTHS)
    return AttributeSpace({k: v for k, v in values.items() if v}, words, edges)


def draw_attributes(rng: np.random.Generator, space: AttributeSpace | None) -> dict[str, str]:
    """One value per kind, uniformly, with the request's rng; none when attributes are off."""
    if space is None:
        return {}
    return {kind: vals[int(rng.integers(len(vals)))] for kind, vals in space.values.items()}


def post_attributes(text: str, space: AttributeSpace | None) -> dict[str, str]:
    """What a seed post itself says about the mined kinds (label-LM fine-tuning rows): the first topic of the
    space that it contains, its length bucket. Style and persona are not read off a post."""
    if space is None:
        return {}
    out = {}
    if "topic" in space.values:
        words = set(content_words(text))
        found = [t for t in space.values["topic"] if t in words]
        if found:
            out["topic"] = found[0]
    if "length" in space.values and set(space.values["length"]) <= set(LENGTHS):
        n, (lo, hi) = len(text.split()), space.length_edges
        out["length"] = "short" if n <= lo else "medium" if n <= hi else "long"
    return out


def attributes_line(attrs: Mapping[str, str], space: AttributeSpace | None = None) -> str:
    """`Topic: rain. Style: sarcastic. Length: about 9 words. Written by: a teacher.` (instruction prompts)."""
    parts = []
    for kind, value in attrs.items():
        if kind == "length":
            n = (space.length_words if space else {}).get(value)
            parts.append(f"Length: about {n} words." if n else f"Length: {value}.")
        elif kind == "persona":
            parts.append(f"Written by: {value}.")
        else:
            parts.append(f"{kind.capitalize()}: {value}.")
    return " ".join(parts)


def attribute_tokens(attrs: Mapping[str, str]) -> str:
    """`<topic> rain <length> short`: the label LMs' conditioning for the drawn attributes."""
    return " ".join(f"{MARKERS[k]} {v}" for k, v in attrs.items())
