"""Tweet-aware tokenization, shared by the TF-IDF classifiers, keyword ranking, filters and text analysis.

Keeps hashtags (#sad), emoticons (:-), <3), emoji and contractions (can't) as single tokens, and
maps user mentions and URLs to the placeholders `@user` and `<url>` so they never become features
of a particular user or link.
"""

from __future__ import annotations

import re

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
