"""`generator=ngram`: a word n-gram language model counted here in seconds, for a first readable set.

Why: a transformer pretrained here needs 1,000-2,000 steps (25-45 min on 2 cores) before its posts read like
posts; after the 100 steps that fit a 5-minute budget it writes "Bloods anded" (docs/quickstart_generation.md).
Counting word trigrams over the 113k-line unlabelled corpus takes seconds and gives locally fluent text.

The model: interpolated absolute discounting (Kneser-Ney continuation counts at the lowest order) over the
corpus, with each class's seed posts as a second, class-specific model that is consulted first at every
order (a hierarchical backoff: the class's own n-grams, then the corpus's, one order down, and so on).
Sampling follows the interpolation exactly: at each order, stay with the discounted counts with their
mass, else back off. Guidance: a post opens with the first words of a random seed post of its class (as
`tiny_anchored`), and with keywords each request draws `candidates` posts and keeps the one that uses the
most keywords (ties: the first). Exemplars are recorded but not read (an n-gram model has no prompt). With
`guidance.attributes` on, the drawn topic counts like a keyword and the drawn length caps the post and picks
among the candidates; style and persona are recorded only (an n-gram model cannot follow them).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sentisynth.generation.attributes import attribute_tokens, draw_attributes
from sentisynth.generation.base import GenContext, Request
from sentisynth.generation.prompts import class_keywords, sample_keywords
from sentisynth.generation.sampling import SamplingParams
from sentisynth.utils import file_fingerprint

log = logging.getLogger(__name__)

TOKEN = re.compile(r"@user(?:['’]s)?|#\w+|https?://\S+|&\w+;|\\n|\w+(?:['’]\w+)*|[^\w\s]")
NO_SPACE_BEFORE = re.compile(r" ([.,!?;:%)\]}…]|['’]s\b|n['’]t\b)")
NO_SPACE_AFTER = re.compile(r"([(\[{$#]) ")
BOS, EOS, UNK = 0, 1, 2  # reserved ids: every line is BOS^(n-1) ... EOS; UNK: a word the model never saw


def tokenize(text: str) -> list[str]:
    """Words, hashtags, mentions, URLs, and each punctuation mark or emoji; the stray variation selectors
    (U+FE0F) the corpus kept from its stripped emoji are dropped."""
    return TOKEN.findall(text.replace("\ufe0f", ""))


def detokenize(words: Sequence[str]) -> str:
    """Join words back into a post, with no space before closing punctuation."""
    return NO_SPACE_AFTER.sub(r"\1", NO_SPACE_BEFORE.sub(r"\1", " ".join(words))).strip()


@dataclass
class Order:
    """All n-grams of one context length, sorted by (context, word): `keys` are the distinct contexts (ids
    packed into one int64), `start[i]:start[i+1]` their continuations, `total` and `types` their counts."""

    keys: np.ndarray
    start: np.ndarray
    total: np.ndarray
    types: np.ndarray
    words: np.ndarray
    counts: np.ndarray

    def find(self, key: int) -> int:
        """The row of context `key`, or -1."""
        i = int(np.searchsorted(self.keys, key))
        return i if i < len(self.keys) and self.keys[i] == key else -1


def count_order(grams: np.ndarray, vocab: int, k: int) -> Order:
    """Count the n-grams in `grams` (rows of k context ids + one word id) into an `Order`."""
    key = np.zeros(len(grams), dtype=np.int64)
    for j in range(k):
        key = key * vocab + grams[:, j]
    pair = key * vocab + grams[:, k]
    uniq, counts = np.unique(pair, return_counts=True)
    ctx, words = uniq // vocab, (uniq % vocab).astype(np.int32)
    keys, start, types = np.unique(ctx, return_index=True, return_counts=True)
    total = np.add.reduceat(counts, start) if len(start) else np.zeros(0, dtype=np.int64)
    start = np.append(start, len(words))
    return Order(keys, start, total, types, words, counts.astype(np.int64))


class NgramLM:
    """An order-`n` word LM with interpolated absolute discounting; `parent` is where it backs off at each
    order when it has not seen a context (a class model's parent is the corpus model)."""

    def __init__(
        self, lines: list[list[int]], vocab: int, n: int = 3, discount: float = 0.75, weight: float = 1.0
    ) -> None:
        if float(vocab) ** n >= 2.0**62:  # contexts and words are packed into one int64
            raise ValueError(
                f"a {n}-gram model over {vocab} words does not fit int64 keys: lower generator.order"
            )
        self.n, self.vocab, self.discount, self.weight = n, vocab, discount, weight  # weight: counts x weight
        rows = []
        for ids in lines:
            seq = [BOS] * (n - 1) + ids + [EOS]
            rows.extend(seq[i - n + 1 : i + 1] for i in range(n - 1, len(seq)))
        grams = np.asarray(rows, dtype=np.int64).reshape(-1, n)
        self.orders = [count_order(grams[:, n - 1 - k :], vocab, k) for k in range(1, n)]
        # the lowest order: Kneser-Ney continuation counts (how many distinct words precede w)
        bigrams = np.unique(grams[:, n - 2 :], axis=0) if len(grams) else np.zeros((0, 2), np.int64)
        words, cont = np.unique(bigrams[:, 1], return_counts=True)
        self.uni_words, self.uni_p = words.astype(np.int32), cont / max(1, cont.sum())
        self._memo: dict[tuple[int, int, float], Any] = {}
        self._uni_cum: dict[float, np.ndarray] = {}

    def key(self, history: Sequence[int], k: int) -> int:
        key = 0
        for w in history[len(history) - k :]:
            key = key * self.vocab + int(w)
        return key

    def continuations(self, k: int, key: int, temp: float) -> tuple[float, np.ndarray, np.ndarray] | None:
        """(probability of staying at this order, continuation words, their cumulative weights) for a context
        of length k, or None when unseen. Memoised: a frequent context ('the') has thousands of continuations,
        and a fresh cumulative sum per word made sampling about 5x slower (measured on the corpus)."""
        memo_key = (k, key, temp)
        hit = self._memo.get(memo_key, False)
        if hit is not False:
            return hit
        o, out = self.orders[k - 1], None
        row = o.find(key)
        if row >= 0:
            total, types = self.weight * float(o.total[row]), float(o.types[row])
            a, b = o.start[row], o.start[row + 1]
            weights = np.maximum(self.weight * o.counts[a:b] - self.discount, 0.0)
            out = ((total - self.discount * types) / total, o.words[a:b], _cumulative(weights, temp))
        self._memo[memo_key] = out
        return out

    def uni_cum(self, temp: float) -> np.ndarray:
        if temp not in self._uni_cum:
            self._uni_cum[temp] = _cumulative(self.uni_p, temp)
        return self._uni_cum[temp]

    def prob(self, word: int, history: Sequence[int]) -> float:
        """P(word | last n-1 words of history), recursively interpolated down to the continuation unigram."""
        i = np.searchsorted(self.uni_words, word)
        p = float(self.uni_p[i]) if i < len(self.uni_words) and self.uni_words[i] == word else 0.0
        p = 0.9 * p + 0.1 / self.vocab  # unseen words keep a little mass
        for k in range(1, self.n):
            o = self.orders[k - 1]
            row = o.find(self.key(history, k))
            if row < 0:
                break
            a, b = o.start[row], o.start[row + 1]
            j = a + int(np.searchsorted(o.words[a:b], word))
            c = int(o.counts[j]) if j < b and o.words[j] == word else 0
            total = float(o.total[row])
            p = max(c - self.discount, 0.0) / total + self.discount * float(o.types[row]) / total * p
        return p


def sample_next(
    models: Sequence[NgramLM], history: Sequence[int], rng: np.random.Generator, temp: float
) -> int:
    """One word from the hierarchy: at each order, highest first, each model in turn keeps its discounted
    counts with their share of the mass, else hands over; the corpus's continuation unigram ends it."""
    n = models[-1].n
    for k in range(n - 1, 0, -1):
        for m in models:
            entry = m.continuations(k, m.key(history, k), temp)
            if entry is None or rng.random() >= entry[0]:
                continue
            words, cum = entry[1], entry[2]
            return int(words[_pick(cum, rng, temp)])
    base = models[-1]
    return int(base.uni_words[_pick(base.uni_cum(temp), rng, temp)])


def _pick(cum: np.ndarray, rng: np.random.Generator, temp: float) -> int:
    """An index drawn from cumulative weights; greedy (do_sample=false, temp 0) takes the largest weight."""
    if temp < 0.05:
        return int(np.argmax(np.diff(cum, prepend=0.0)))
    return int(min(np.searchsorted(cum, rng.random() * cum[-1], side="right"), len(cum) - 1))


def _cumulative(weights: np.ndarray, temp: float) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if 0.05 <= temp != 1.0:
        w = np.power(w, 1.0 / temp)
    return np.cumsum(w)


class Vocab:
    """Word <-> id, ids 0-2 reserved for the line markers and unknown words."""

    def __init__(self) -> None:
        self.words: list[str] = ["<s>", "</s>", "<unk>"]
        self.ids: dict[str, int] = {w: i for i, w in enumerate(self.words)}

    def encode(self, words: Sequence[str], grow: bool = True) -> list[int]:
        out = []
        for w in words:
            i = self.ids.get(w)
            if i is None:
                if not grow:
                    out.append(UNK)
                    continue
                i = self.ids[w] = len(self.words)
                self.words.append(w)
            out.append(i)
        return out


class NoBackend:
    """Sampling is plain numpy in this process: nothing to load (timings say `ngram`)."""

    name = "ngram"


class NgramGenerator:
    """`generator=ngram`: corpus trigrams + each class's seed trigrams, seed-anchored, keyword best-of-k."""

    kind = "ngram"
    reads_instruction = False
    workers = 1

    def __init__(
        self,
        corpus: str | None = None,
        order: int = 3,
        discount: float = 0.75,
        class_weight: float = 1.0,
        max_lines: int | None = None,
        anchor_words: int = 3,
        candidates: int = 8,
        sampling: dict | None = None,
        budget: dict | None = None,
        batch_size: int = 256,
        **_: Any,
    ) -> None:
        if order < 2:
            raise ValueError(f"generator.order must be >= 2, got {order}")
        self.corpus, self.order, self.discount = corpus, int(order), float(discount)
        self.class_weight = float(class_weight)
        self.max_lines, self.anchor_words, self.candidates = max_lines, int(anchor_words), int(candidates)
        self.sampling = SamplingParams(**(dict(sampling) if sampling else {}))
        self.budget = dict(budget) if budget else {}
        self.batch_size = int(batch_size)
        self.backend = NoBackend()
        self.vocab = Vocab()
        self.base: NgramLM | None = None
        self.classes: dict[int, NgramLM] = {}
        self._ctx: GenContext | None = None

    def identity(self) -> dict[str, Any]:
        """What changes the posts (the cache keys), the corpus by its bytes."""
        fp = file_fingerprint(self.corpus) if self.corpus else None
        return {
            "kind": self.kind,
            "corpus": fp,
            "order": self.order,
            "discount": self.discount,
            "class_weight": self.class_weight,
            "max_lines": self.max_lines,
            "anchor_words": self.anchor_words,
            "candidates": self.candidates,
        }

    def prepare(self, ctx: GenContext) -> None:
        """Nothing yet: the models are counted when first used (`count`), so a run whose set is already
        cached (a study cell) does not count the corpus for nothing (7-10 s a cell)."""
        self._ctx = ctx

    def ready(self) -> None:
        if self.base is None:
            assert self._ctx is not None, "prepare() first"
            self.count(self._ctx)

    def count(self, ctx: GenContext) -> None:
        """Count the corpus model (a few seconds; not cached: counting is as fast as loading) and one model
        per class on its seed posts (the vocabulary grows with the seed's words)."""
        if not self.corpus:
            raise FileNotFoundError(
                "ngram generator: generator.corpus is not set (path to the unlabelled corpus)"
            )
        t0 = time.perf_counter()
        with open(self.corpus, encoding="utf-8") as f:
            lines = [ln.strip() for ln, _ in zip(f, range(self.max_lines or 10**12)) if ln.strip()]
        corpus_ids = [self.vocab.encode(tokenize(t)) for t in lines]
        seed_ids = [self.vocab.encode(tokenize(t)) for t in ctx.seed_texts]
        v = len(self.vocab.words)
        self.base = NgramLM(corpus_ids, v, self.order, self.discount)
        labels = np.asarray(ctx.seed_labels)
        for c in range(len(ctx.label_names)):
            mine = [seed_ids[i] for i in np.flatnonzero(labels == c)]
            self.classes[c] = NgramLM(mine, v, self.order, self.discount, self.class_weight)
        log.info(
            "ngram generator: %d-gram model counted over %d corpus lines and %d seed posts (%d words) in %.1f s",
            self.order,
            len(lines),
            len(seed_ids),
            v,
            time.perf_counter() - t0,
        )

    # -- requests --------------------------------------------------------------------------------

    def make_requests(self, ctx: GenContext, label: int, n: int, rng: np.random.Generator) -> list[Request]:
        """One post per request: keywords drawn as for every generator, an opening from a seed post."""
        self.ready()
        s, name = ctx.strategy, ctx.label_names[label]
        terms, weights = class_keywords(ctx.guidance, name, s.keyword_pool)
        pool = np.flatnonzero(np.asarray(ctx.seed_labels) == label)
        out = []
        for _ in range(n):
            kws = sample_keywords(rng, terms, weights, s.n_keywords) if s.keyword_conditioning else []
            opening, anchor = [], None
            if self.anchor_words and pool.size:
                j = int(pool[rng.integers(pool.size)])
                words = tokenize(ctx.seed_texts[j])
                opening = words[: min(self.anchor_words, max(1, len(words) // 2))]
                anchor = int(ctx.seed_index[j])
            attrs = draw_attributes(rng, ctx.attributes)  # last: off leaves the rng stream as it was
            cond = " ".join(x for x in (f"<kw> {' '.join(kws)}" if kws else "", attribute_tokens(attrs)) if x)
            prompt = f"<{name}> " + (f"{cond} " if cond else "") + f"<text> {detokenize(opening)}"
            out.append(
                Request(label, name, prompt.rstrip(), [], list(kws or []), [], 1, len(opening), anchor, attrs)
            )
        return out

    def run_batch(
        self, ctx: GenContext, requests: Sequence[Request], seeds: Sequence[int]
    ) -> tuple[list[list[str]], int]:
        """Each request's post, one seed each, and the word count. With keywords or attributes, the best of
        `candidates` posts: most keywords (and the topic) used, then the length closest to the drawn one."""
        self.ready()
        out, n_words = [], 0
        for req, seed in zip(requests, seeds):
            rng = np.random.default_rng(int(seed))
            wanted = [*req.keywords, *([req.attributes["topic"]] if "topic" in req.attributes else [])]
            length = self.wanted_length(ctx, req)
            best, best_score = "", None
            for _ in range(self.candidates if wanted or length else 1):
                words = self.sample(req, rng, int(1.5 * length) if length else None)
                text = f" {' '.join(words).lower()} "
                score = (
                    sum(f" {k.lower()} " in text for k in wanted),
                    -abs(len(words) - length) if length else 0,
                )
                n_words += len(words)
                if best_score is None or score > best_score:  # phrases count too; ties: the first
                    best, best_score = detokenize(words), score
            out.append([best] if best else [])
        return out, n_words

    @staticmethod
    def wanted_length(ctx: GenContext, req: Request) -> int:
        """The drawn length attribute's word count (the bucket's median in the seed), or 0 without one."""
        if "length" not in req.attributes or ctx.attributes is None:
            return 0
        return int(ctx.attributes.length_words.get(req.attributes["length"], 0))

    def sample(self, req: Request, rng: np.random.Generator, max_words: int | None = None) -> list[str]:
        """The post's words: its opening, then words until the end marker, `max_new_tokens` or `max_words`
        in all (the length attribute)."""
        assert self.base is not None, "prepare() first"
        opening = tokenize(req.prompt.split("<text>", 1)[1]) if "<text>" in req.prompt else []
        history = [BOS] * (self.order - 1) + self.vocab.encode(opening, grow=False)
        models = [self.classes[req.label], self.base]
        new: list[int] = []
        temp = float(self.sampling.temperature) if self.sampling.do_sample else 0.0
        budget = int(self.sampling.max_new_tokens)
        if max_words:
            budget = max(1, min(budget, max_words - len(opening)))
        for _ in range(budget):
            w = sample_next(models, history, rng, temp)
            if w in (EOS, BOS):
                break
            new.append(w)
            history.append(w)
        return opening + [self.vocab.words[i] for i in new] if new else []

    def lm_scorer(self, texts: Sequence[str]) -> np.ndarray:
        """Per-text perplexity under the corpus model (the perplexity filter's scorer)."""
        self.ready()
        assert self.base is not None, "prepare() first"
        out = []
        for t in texts:
            ids = self.vocab.encode(tokenize(t), grow=False) + [EOS]
            hist = [BOS] * (self.order - 1)
            lp = 0.0
            for w in ids:
                lp += np.log(max(self.base.prob(w, hist), 1e-12))
                hist.append(w)
            out.append(float(np.exp(-lp / len(ids))))
        return np.asarray(out)
