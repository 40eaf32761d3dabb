"""Linguistic comparison of real and synthetic text (the reference paper's analysis, made measurable).

For each text set (seed, real pool, synthetic) and each class plus `all`: vocabulary richness
(type-token ratio, and MTLD, which does not shrink with length), distinct-1/2, self-BLEU on a sample,
embedding spread and nearest-neighbour distance (MiniLM, on a sample; the 'all' rows, when asked for),
mean length, rates of personal pronouns by person and number, of temporal expressions (time words,
past and future markers), of hashtags, mentions, URLs and emoji, and the share of the set's
vocabulary never seen in the seed.

Rates are per 100 tokens unless named `per_text`. Pronoun and temporal classes are word lists (below)
and a light past-tense heuristic (`-ed` words), English only: they compare sets with each other, they
are not a parser.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sentisynth.cache import read_entry_json, write_entry
from sentisynth.text import PLACEHOLDERS, URL, USER, tweet_tokenize
from sentisynth.utils import (
    atomic_write_text,
    markdown_table,
    pyplot,
    save_figure,
    to_json,
)

FIRST_SINGULAR = {"i", "me", "my", "mine", "myself", "i'm", "im", "i've", "ive", "i'll", "i'd", "imma"}
FIRST_PLURAL = {"we", "us", "our", "ours", "ourselves", "we're", "we've", "we'll", "we'd", "let's"}
SECOND = {
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
    "you're",
    "youre",
    "you've",
    "you'll",
    "you'd",
    "u",
    "ur",
    "ya",
    "y'all",
    "yall",
}
THIRD = {
    "he",
    "him",
    "his",
    "himself",
    "he's",
    "she",
    "her",
    "hers",
    "herself",
    "she's",
    "they",
    "them",
    "their",
    "theirs",
    "themselves",
    "they're",
    "they've",
    "they'll",
}
TIME_WORDS = {
    "today",
    "tonight",
    "tomorrow",
    "yesterday",
    "now",
    "soon",
    "later",
    "ago",
    "before",
    "after",
    "morning",
    "afternoon",
    "evening",
    "night",
    "day",
    "days",
    "week",
    "weeks",
    "weekend",
    "month",
    "months",
    "year",
    "years",
    "hour",
    "hours",
    "minute",
    "minutes",
    "moment",
    "always",
    "never",
    "again",
    "still",
    "already",
    "yet",
    "until",
    "since",
    "recently",
    "lately",
    "tmrw",
    "tmr",
    "tonite",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "christmas",
    "season",
}
PAST_MARKERS = {
    "was",
    "were",
    "had",
    "did",
    "didn't",
    "wasn't",
    "weren't",
    "hadn't",
    "went",
    "came",
    "got",
    "said",
    "made",
    "saw",
    "felt",
    "thought",
    "told",
    "knew",
    "left",
    "lost",
    "won",
    "ate",
    "took",
}
FUTURE_MARKERS = {
    "will",
    "'ll",
    "won't",
    "gonna",
    "shall",
    "i'll",
    "we'll",
    "you'll",
    "they'll",
    "he'll",
    "she'll",
    "it'll",
    "tomorrow",
    "soon",
    "next",
}
_NOT_PAST_ED = {
    "need",
    "feed",
    "red",
    "bed",
    "seed",
    "speed",
    "indeed",
    "proceed",
    "succeed",
    "exceed",
    "shed",
    "sled",
    "bred",
    "wed",
    "ted",
    "ned",
    "fed",
    "led",
    "breed",
    "greed",
    "weed",
    "bleed",
}


def tokens_of(text: str) -> list[str]:
    return tweet_tokenize(text)


def _words(tokens: Iterable[str]) -> list[str]:
    """Lexical tokens only: no placeholders, hashtags, punctuation, emoji or emoticons."""
    return [t for t in tokens if t not in PLACEHOLDERS and t[:1].isalnum()]


def _is_past(token: str) -> bool:
    return token in PAST_MARKERS or (len(token) > 4 and token.endswith("ed") and token not in _NOT_PAST_ED)


def distinct_n(token_lists: Sequence[list[str]], n: int) -> float:
    """Unique n-grams / all n-grams across the set (Li et al., 2016)."""
    grams = [tuple(toks[i : i + n]) for toks in token_lists for i in range(len(toks) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def mtld(words: list[str]) -> float:
    """MTLD (McCarthy & Jarvis, 2010) via lexicalrichness; NaN for fewer than 10 words."""
    if len(words) < 10:
        return float("nan")
    from lexicalrichness import LexicalRichness

    return float(LexicalRichness(words, preprocessor=None, tokenizer=None).mtld(threshold=0.72))


def self_bleu(texts: Sequence[str], sample: int = 100, seed: int = 0) -> float:
    """Mean sentence BLEU of each sampled text against the other sampled texts (higher = more repetitive).

    The same number as `sacrebleu.sentence_bleu(hyp, others, tokenize="13a")` (exp smoothing, effective
    order) averaged over the sample, but each text is tokenised and its n-grams counted once, and each
    hypothesis reads the best other count per n-gram from a top-two table instead of merging 99 references:
    49x faster on 100 tweets (`benchmarks/bench_filter_rounds.py`); `tests/test_analysis.py` checks equality.
    """
    from sacrebleu.metrics.bleu import BLEU
    from sacrebleu.metrics.helpers import extract_all_word_ngrams

    texts = [t for t in texts if t.strip()]
    if len(texts) < 2:
        return float("nan")
    rng = random.Random(seed)
    picked = rng.sample(list(texts), min(sample, len(texts)))
    tokenizer = BLEU(tokenize="13a").tokenizer
    grams = [extract_all_word_ngrams(tokenizer(t.rstrip()), 1, 4) for t in picked]
    # per n-gram: (best count, its text, second-best count), so "the best count among the others" is one lookup
    top: dict[tuple, list[int]] = {}
    for i, (counts, _) in enumerate(grams):
        for g, c in counts.items():
            e = top.get(g)
            if e is None:
                top[g] = [c, i, 0]
            elif c > e[0]:
                e[2], e[0], e[1] = e[0], c, i
            elif c > e[2]:
                e[2] = c
    lens = [n for _, n in grams]
    scores = []
    for i, (counts, hyp_len) in enumerate(grams):
        others = lens[:i] + lens[i + 1 :]
        ref_len = min(others, key=lambda r: (abs(hyp_len - r), r))  # sacrebleu: closest, ties to the shorter
        correct, total = [0] * 4, [0] * 4
        for g, c in counts.items():
            n = len(g) - 1
            total[n] += c
            e = top[g]
            best = e[2] if e[1] == i else e[0]
            correct[n] += min(c, best)
        score = BLEU.compute_bleu(correct, total, hyp_len, ref_len, smooth_method="exp", effective_order=True)
        scores.append(score.score)
    return float(np.mean(scores)) / 100.0


def embedding_measures(
    texts: Sequence[str],
    sample: int = 200,
    seed: int = 0,
    embedder: Callable[[Sequence[str]], np.ndarray] | None = None,
) -> dict[str, float]:
    """Sentence embeddings (MiniLM by default) of a seeded sample of at most `sample` texts:
    `embed_spread`, the mean pairwise cosine distance (how much of the meaning space the set covers), and
    `embed_nn`, the mean cosine distance of each text to its nearest other text (0 when every text has a
    near copy: redundancy, which the mean over all pairs barely sees)."""
    texts = [t for t in texts if t.strip()]
    if len(texts) < 2:
        return {"embed_spread": float("nan"), "embed_nn": float("nan")}
    rng = np.random.default_rng(seed)
    picked = [texts[i] for i in sorted(rng.choice(len(texts), size=min(sample, len(texts)), replace=False))]
    if embedder is None:
        from sentisynth.classifiers.embeddings import embed_texts

        embedder = embed_texts
    X = np.asarray(embedder(picked), dtype=float)
    X = X / np.clip(np.linalg.norm(X, axis=1, keepdims=True), 1e-12, None)
    sims = X @ X.T
    n = len(picked)
    spread = 1.0 - (sims.sum() - np.trace(sims)) / (n * (n - 1))
    np.fill_diagonal(sims, -np.inf)
    return {"embed_spread": float(spread), "embed_nn": float(np.mean(1.0 - sims.max(axis=1)))}


def embedding_spread(
    texts: Sequence[str],
    sample: int = 200,
    seed: int = 0,
    embedder: Callable[[Sequence[str]], np.ndarray] | None = None,
) -> float:
    """Mean pairwise cosine distance of sentence embeddings over a seeded sample (`embedding_measures`)."""
    return embedding_measures(texts, sample, seed, embedder)["embed_spread"]


def text_measures(
    texts: Sequence[str], seed_vocab: set[str] | None = None, self_bleu_sample: int = 100, seed: int = 0
) -> dict[str, float]:
    """All measures for one set of texts (see the module docstring)."""
    import emoji

    token_lists = [tokens_of(t) for t in texts]
    all_tokens = [t for toks in token_lists for t in toks]
    words = _words(all_tokens)
    n_tok = max(len(all_tokens), 1)
    per100 = 100.0 / n_tok
    n_texts = max(len(texts), 1)
    counts = Counter(all_tokens)

    def rate(vocab: set[str]) -> float:
        return sum(c for w, c in counts.items() if w in vocab) * per100

    bigrams = Counter(zip(all_tokens, all_tokens[1:]))
    going_to = bigrams.get(("going", "to"), 0)
    types = set(words)
    out = {
        "n_texts": float(len(texts)),
        "mean_tokens": len(all_tokens) / n_texts,
        "ttr": len(types) / max(len(words), 1),
        "mtld": mtld(words),
        "distinct_1": distinct_n(token_lists, 1),
        "distinct_2": distinct_n(token_lists, 2),
        "self_bleu": self_bleu(texts, self_bleu_sample, seed),
        "pron_1sg": rate(FIRST_SINGULAR),
        "pron_1pl": rate(FIRST_PLURAL),
        "pron_2": rate(SECOND),
        "pron_3": rate(THIRD),
        "time_words": rate(TIME_WORDS),
        "past_markers": sum(c for w, c in counts.items() if _is_past(w)) * per100,
        "future_markers": (rate(FUTURE_MARKERS) + going_to * per100),
        "hashtags_per_text": sum(c for w, c in counts.items() if w.startswith("#")) / n_texts,
        "mentions_per_text": counts.get(USER, 0) / n_texts,
        "urls_per_text": counts.get(URL, 0) / n_texts,
        "emoji_per_text": sum(emoji.emoji_count(t) for t in texts) / n_texts,
    }
    if seed_vocab is not None:
        out["unseen_vocab_share"] = len(types - seed_vocab) / max(len(types), 1)
    return out


def vocabulary(texts: Iterable[str]) -> set[str]:
    return set(_words(t for text in texts for t in tokens_of(text)))


def _memo_key(texts: Sequence[str], seed_vocab: set[str] | None, self_bleu_sample: int, seed: int) -> str:
    h = hashlib.sha256(f"v1|{self_bleu_sample}|{seed}|".encode())
    h.update("\x1e".join(sorted(seed_vocab)).encode() if seed_vocab is not None else b"<no seed vocab>")
    h.update(b"\x1d")
    h.update("\x1e".join(texts).encode())
    return h.hexdigest()[:20]


def compare_sets(
    sets: dict[str, tuple[Sequence[str], Sequence[int]]],
    label_names: Sequence[str],
    seed_name: str = "seed",
    self_bleu_sample: int = 100,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    embed_sample: int = 0,
    embedder: Callable[[Sequence[str]], np.ndarray] | None = None,
) -> pd.DataFrame:
    """One row per (set, class) plus (set, 'all'): every measure. `sets[seed_name]` defines the seed vocabulary.

    With `cache_dir`, each group's measures are memoised on disk under a hash of its texts (self-BLEU is the
    slow part), so a study that analyses the same seed and real pool in every synthetic cell computes them once.
    `embed_sample` > 0 adds `embed_spread` and `embed_nn` (`embedding_measures` on that many texts) to each set's
    'all' row,
    memoised apart from the other measures (so memos written before it stay valid).
    """
    seed_vocab = vocabulary(sets[seed_name][0]) if seed_name in sets else None
    memo = Path(cache_dir) / "analysis" if cache_dir else None
    rows = []
    for set_name, (texts, labels) in sets.items():
        labels = np.asarray(labels, dtype=int)
        groups = [("all", np.ones(len(texts), dtype=bool))] + [
            (name, labels == c) for c, name in enumerate(label_names)
        ]
        for cls, mask in groups:
            subset = [t for t, m in zip(texts, mask) if m]
            if not subset:
                continue
            entry = memo / _memo_key(subset, seed_vocab, self_bleu_sample, seed) if memo else None
            measures = read_entry_json(entry, "measures.json", "linguistic measures") if entry else None
            if measures is None:
                measures = text_measures(subset, seed_vocab, self_bleu_sample, seed)
                if entry is not None:
                    write_entry(entry, {"measures.json": to_json(measures)})
            if cls == "all" and embed_sample > 0:
                measures = {**measures, **_spread(subset, embed_sample, seed, memo, embedder)}
            rows.append({"set": set_name, "class": cls, **measures})
    return pd.DataFrame(rows)


def _spread(
    texts: Sequence[str],
    sample: int,
    seed: int,
    memo: Path | None,
    embedder: Callable[[Sequence[str]], np.ndarray] | None,
) -> dict[str, float]:
    """`embedding_measures`, memoised on disk (MiniLM only: an injected embedder is never memoised)."""
    h = hashlib.sha256(f"embed-v1|{sample}|{seed}|".encode() + "\x1e".join(texts).encode()).hexdigest()[:20]
    entry = memo / f"spread-{h}" if memo is not None and embedder is None else None
    hit = read_entry_json(entry, "spread.json", "embedding spread") if entry else None
    if hit is not None:
        return {k: float(v) for k, v in hit.items()}
    value = embedding_measures(texts, sample, seed, embedder)
    if entry is not None:
        write_entry(entry, {"spread.json": to_json(value)})
    return value


def to_markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    cell = lambda v: f"{v:.{digits}f}" if isinstance(v, float) else str(v)  # noqa: E731
    return markdown_table(list(frame.columns), (row.tolist() for _, row in frame.iterrows()), cell)


def plot_comparison(frame: pd.DataFrame, path: str | Path, measures: Sequence[str] | None = None) -> Path:
    """Grouped bars per measure: sets side by side, overall ('all') rows."""
    plt = pyplot()

    measures = list(
        measures
        or [
            "mtld",
            "distinct_2",
            "self_bleu",
            "embed_spread",
            "embed_nn",
            "pron_1sg",
            "pron_1pl",
            "time_words",
            "past_markers",
            "future_markers",
            "hashtags_per_text",
            "emoji_per_text",
        ]
    )
    overall = frame[frame["class"] == "all"].set_index("set")
    cols = 5
    rows = int(np.ceil(len(measures) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False)
    for ax, m in zip(axes.flat, measures):
        values = overall[m] if m in overall else pd.Series(dtype=float)
        ax.bar(values.index.astype(str), values.values, color=plt.cm.tab10.colors[: len(values)])
        ax.set_title(m, fontsize=10)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    for ax in list(axes.flat)[len(measures) :]:
        ax.axis("off")
    fig.suptitle("Linguistic comparison (all classes)")
    return save_figure(fig, path)


def write_analysis(frame: pd.DataFrame, out_dir: str | Path, stem: str = "linguistic") -> dict[str, Path]:
    """`<stem>.csv`, `<stem>.md` and `<stem>.png` in `out_dir` (written atomically)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / f"{stem}.csv", "md": out / f"{stem}.md", "png": out / f"{stem}.png"}
    atomic_write_text(paths["csv"], frame.to_csv(index=False))
    atomic_write_text(paths["md"], to_markdown(frame))
    plot_comparison(frame, paths["png"])
    return paths
