"""Cheap surface checks that catch the typical failure modes of sampled text.

Length bounds, non-printable characters, degenerate repetition, posts with no content beyond
placeholders / hashtags / URLs / mentions, and keyboard-mash gibberish.
"""

from __future__ import annotations

import re
import unicodedata
from itertools import pairwise

from sentisynth.filters.base import FilterContext, Sample, reject

_NON_CONTENT = re.compile(
    r"^(?:@\w+|#\S+|(?:https?://|www\.)\S+|<\w+>|\[\w+\]|\{\w+\}|[^\w]+)$", re.IGNORECASE | re.UNICODE
)
_ALPHA = re.compile(r"^[a-z]+$")
_VOWELS = set("aeiouy")
_CONSONANT_RUN = re.compile(r"[bcdfghjklmnpqrstvwxz]{5,}")


def is_gibberish_word(word: str) -> bool:
    """A lowercase alphabetic word that no language would write: no vowel, or 5+ consonants in a row."""
    if len(word) < 4 or not _ALPHA.match(word):
        return False
    return not (set(word) & _VOWELS) or bool(_CONSONANT_RUN.search(word))


def _bad_char(ch: str) -> bool:
    if ch in "\n\t":
        return False
    return (
        ch == "\ufffd"
        or unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn")
        or (unicodedata.category(ch) == "Cf" and ch not in "\u200d\ufe0f")
    )


class HeuristicFilter:
    """Reject by the first failed check; the reason says which one."""

    name = "heuristic"

    def __init__(
        self,
        min_words: int = 3,
        max_words: int = 80,
        max_chars: int = 400,
        max_repeated_ngram_frac: float = 0.5,
        max_same_token_run: int = 4,
        min_content_words: int = 2,
        max_gibberish_frac: float = 0.5,
    ) -> None:
        self.min_words, self.max_words, self.max_chars = min_words, max_words, max_chars
        self.max_repeated_ngram_frac = max_repeated_ngram_frac
        self.max_same_token_run = max_same_token_run
        self.min_content_words = min_content_words
        self.max_gibberish_frac = max_gibberish_frac

    def check(self, text: str) -> tuple[str, str] | None:
        """(reason, detail) for the first failed check, or None when the text passes."""
        words = text.split()
        if len(words) < self.min_words:
            return "too_short", f"{len(words)} words < {self.min_words}"
        if len(words) > self.max_words or len(text) > self.max_chars:
            return "too_long", f"{len(words)} words / {len(text)} chars"
        bad = (
            [ch for ch in text if (ord(ch) < 32 or ord(ch) == 127) and ch not in "\n\t"]
            if text.isascii()
            else [ch for ch in text if _bad_char(ch)]
        )
        if bad:
            return "non_printable", f"{len(bad)} non-printable char(s), e.g. {bad[0]!r}"
        lower = [w.lower() for w in words]
        run, longest = 1, 1
        for a, b in pairwise(lower):
            run = run + 1 if a == b else 1
            longest = max(longest, run)
        if longest >= self.max_same_token_run:
            return "repetition", f"the same word {longest} times in a row"
        grams = list(zip(lower, lower[1:], lower[2:]))
        if len(grams) >= 4:
            frac = 1 - len(set(grams)) / len(grams)
            if frac > self.max_repeated_ngram_frac:
                return "repeated_ngrams", f"{frac:.0%} of word trigrams are repeats"
        content = [w for w in words if not _NON_CONTENT.match(w)]
        if len(content) < self.min_content_words:
            return "placeholder_only", f"{len(content)} content word(s) besides placeholders/hashtags/URLs"
        alpha = [w for w in (re.sub(r"[^\w]", "", w.lower()) for w in content) if _ALPHA.match(w)]
        if len(alpha) >= 2:
            frac = sum(is_gibberish_word(w) for w in alpha) / len(alpha)
            if frac > self.max_gibberish_frac:
                return "gibberish", f"{frac:.0%} of words look like keyboard mashing"
        return None

    def apply(self, samples: list[Sample], ctx: FilterContext) -> tuple[list[Sample], list[Sample]]:
        kept, dropped = [], []
        for s in samples:
            failed = self.check(str(s["text"]))
            if failed is None:
                kept.append(s)
            else:
                dropped.append(reject(s, *failed))
        return kept, dropped

    def __repr__(self) -> str:
        return f"HeuristicFilter({self.__dict__})"
