"""Tweet-aware tokenization, shared by the TF-IDF classifiers, keyword ranking, filters and text analysis.

Keeps hashtags (#sad), emoticons (:-), <3), emoji and contractions (can't) as single tokens, and
maps user mentions and URLs to the placeholders `@user` and `<url>` so they never become features
of a particular user or link.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

USER = "@user"
URL = "<url>"
PLACEHOLDERS = frozenset({USER, URL})

_URL_RE = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_EMOTICON = r"""(?:[<>]?[:;=8][\-o\*']?[\)\]\(\[dDpP/\\:\}\{@\|]+|[\)\]\(\[dDpP/\\:\}\{@\|]+[\-o\*']?[:;=8][<>]?|<3+|</3+)"""
TOKEN_RE = re.compile(
    rf"""
    (?P<url>(?:https?://|www\.)\S+)
  | (?P<user>@\w+)
  | (?P<emoticon>{_EMOTICON})
  | (?P<hashtag>\#\w+(?:'\w+)?)
  | (?P<word>\w+(?:'\w+)*)
  | (?P<emoji>[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\uFE0F]+)
  | (?P<punct>[!?]+|\.{{2,}})
    """,
    re.VERBOSE | re.UNICODE,
)
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})


@lru_cache(maxsize=1)
def _skeleton_table() -> dict[int, str | None]:
    """str.translate table: invisible format characters (Cf: zero-width space/joiners, soft hyphen, word
    joiner, BOM, bidi marks) and variation selectors -> removed; a non-ASCII letter or digit that Unicode's
    TR39 confusables list (confusable-homoglyphs' copy) says looks like ASCII -> that ASCII (Cyrillic `а`)."""
    import json
    from importlib.resources import files

    data = json.loads(files("confusable_homoglyphs").joinpath("confusables.json").read_text(encoding="utf-8"))
    table: dict[int, str | None] = {}
    for char, alikes in data.items():
        if len(char) != 1 or char.isascii():
            continue
        ascii_ = [a["c"] for a in alikes if a["c"].isascii() and a["c"].isprintable() and a["c"].strip()]
        if ascii_:  # one alphanumeric character first, so `ο` -> `o`, not a punctuation look-alike
            table[ord(char)] = min(ascii_, key=lambda a: (len(a) != 1 or not a.isalnum(), ascii_.index(a)))
    for code, alike in list(table.items()):  # text is case-folded first: `т` folds like `Т` -> `T` -> `t`
        lower = chr(code).casefold()
        if len(lower) == 1 and not lower.isascii() and alike:
            table.setdefault(ord(lower), alike.lower())
    for code in range(0x110000):
        if unicodedata.category(chr(code)) == "Cf" or 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF:
            table[code] = None
    return table


def skeleton(text: str) -> str:
    """A comparison key that disguises cannot change: NFKC (fullwidth `ｊｏｙ`, ideographic spaces), invisible
    characters removed, case folded, look-alike letters folded to ASCII, spacing collapsed. Not for display."""
    text = unicodedata.normalize("NFKC", text).casefold().translate(_skeleton_table())
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def normalize_tweet(text: str) -> str:
    """Lowercase, unify apostrophes and replace mentions/URLs with placeholders (char n-gram input)."""
    text = _URL_RE.sub(URL, text.translate(_APOSTROPHES))
    text = re.sub(r"@\w+", USER, text)
    return " ".join(text.lower().split())


def tweet_tokenize(text: str) -> list[str]:
    """Split a post into tweet-aware tokens (see module docstring); lowercased except emoticons."""
    tokens: list[str] = []
    for m in TOKEN_RE.finditer(text.translate(_APOSTROPHES)):
        kind = m.lastgroup
        tok = m.group()
        if kind == "url":
            tokens.append(URL)
        elif kind == "user":
            tokens.append(USER)
        elif kind == "emoticon":
            tokens.append(tok)
        elif kind == "emoji":
            tokens.extend(ch for ch in tok if ch != "\ufe0f")
        else:
            tokens.append(tok.lower())
    return tokens
