"""The `ngram` generator: its interpolated model is a distribution, its sampler follows it, and the generator
is reproducible, seed-anchored and steered by keywords."""

from __future__ import annotations

import numpy as np
import pytest

from sentisynth.generation.base import GenContext
from sentisynth.generation.ngram import (
    EOS,
    NgramGenerator,
    NgramLM,
    Vocab,
    detokenize,
    sample_next,
    tokenize,
)
from sentisynth.generation.prompts import GuidanceStrategy

CORPUS = [
    "i love this song so much",
    "i love my dog",
    "i hate mondays so much",
    "this song is so good",
    "my dog is so cute",
    "mondays are the worst",
    "i hate waiting in line",
    "so happy today",
]


def _model(lines: list[str] = CORPUS, n: int = 3) -> tuple[NgramLM, Vocab]:
    v = Vocab()
    ids = [v.encode(tokenize(t)) for t in lines]
    return NgramLM(ids, len(v.words), n), v


def test_tokenize_keeps_tweet_units_and_detokenize_joins_them() -> None:
    words = tokenize("Can't wait &amp; see @user's #happy day!! (ok) \ufe0f")
    assert words == ["Can't", "wait", "&amp;", "see", "@user's", "#happy", "day", "!", "!", "(", "ok", ")"]
    assert detokenize(words) == "Can't wait &amp; see @user's #happy day!! (ok)"


@pytest.mark.parametrize("history", [["i", "love"], ["so"], ["never", "seen"], []])
def test_interpolated_probabilities_sum_to_one(history: list[str]) -> None:
    lm, v = _model()
    hist = [0, 0] + v.encode(history, grow=False)
    total = sum(lm.prob(w, hist) for w in range(len(v.words)))
    assert total == pytest.approx(1.0, abs=1e-9)


def test_sampler_follows_the_model() -> None:
    """The sampler draws exactly the interpolated distribution (single model): empirical frequencies after
    'i love' match prob() within sampling error."""
    lm, v = _model()
    hist = [0, 0] + v.encode(["i", "love"], grow=False)
    rng = np.random.default_rng(0)
    draws = np.bincount([sample_next([lm], hist, rng, 1.0) for _ in range(20000)], minlength=len(v.words))
    p = np.array([lm.prob(w, hist) for w in range(len(v.words))])
    p_cont = p / p.sum()  # the unseen-word floor lives in prob() only: the sampler never draws a word the
    # corpus lacks, so compare on the words it can draw
    seen = p > 0.1 / len(v.words) + 1e-12
    emp = draws / draws.sum()
    assert emp[v.ids["this"]] == pytest.approx(p_cont[v.ids["this"]], abs=0.02)
    assert emp[v.ids["my"]] == pytest.approx(p_cont[v.ids["my"]], abs=0.02)
    assert emp[seen].sum() > 0.99


def _ctx(tmp_path, strategy: GuidanceStrategy, guidance: dict | None = None) -> GenContext:
    seed = [
        "i am so angry at mondays",
        "traffic makes me furious today",
        "so happy with my dog",
        "love this song",
    ]
    return GenContext(
        seed, np.array([0, 0, 1, 1]), np.arange(4), ["anger", "joy"], strategy, guidance, tmp_path
    )


def _gen(tmp_path, **kw) -> NgramGenerator:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(CORPUS * 3) + "\n")
    return NgramGenerator(corpus=str(corpus), sampling={"temperature": 1.0, "max_new_tokens": 12}, **kw)


def test_generator_is_reproducible_and_anchored(tmp_path) -> None:
    ctx = _ctx(tmp_path, GuidanceStrategy(name="naive"))
    runs = []
    for _ in range(2):
        gen = _gen(tmp_path)
        gen.prepare(ctx)
        reqs = gen.make_requests(ctx, 0, 20, np.random.default_rng(3))
        posts, n_words = gen.run_batch(ctx, reqs, list(range(20)))
        runs.append(posts)
    assert runs[0] == runs[1] and n_words > 0
    for req, post in zip(reqs, runs[0]):
        opening = req.prompt.split("<text>", 1)[1].strip()
        assert req.anchor_index in (0, 1) and opening
        assert not post or post[0].startswith(opening)


def test_keywords_steer_best_of_k(tmp_path) -> None:
    guidance = {"classes": {"joy": {"keywords": [{"term": "song", "score": 1.0}], "exemplars": []}}}
    ctx = _ctx(tmp_path, GuidanceStrategy(name="shap", n_keywords=1), guidance)
    hits = {}
    for k in (1, 8):
        gen = _gen(tmp_path, candidates=k, anchor_words=0)
        gen.prepare(ctx)
        reqs = gen.make_requests(ctx, 1, 60, np.random.default_rng(0))
        assert all(r.keywords == ["song"] for r in reqs)
        posts, _ = gen.run_batch(ctx, reqs, list(range(60)))
        hits[k] = sum("song" in p[0].split() for p in posts if p)
    assert hits[8] > hits[1]


def test_lm_scorer_prefers_corpus_like_text(tmp_path) -> None:
    ctx = _ctx(tmp_path, GuidanceStrategy(name="naive"))
    gen = _gen(tmp_path)
    gen.prepare(ctx)
    fluent, shuffled = gen.lm_scorer(["i love this song so much", "much song so this love i"])
    assert fluent < shuffled


def test_end_marker_and_order_checks() -> None:
    lm, v = _model()
    assert lm.prob(EOS, [0, 0] + v.encode(["so", "happy", "today"], grow=False)[-2:]) > 0.3
    with pytest.raises(ValueError, match="generator.order"):
        NgramGenerator(corpus=None, order=1)


def test_generate_stage_with_ngram(compose_cfg, tiny_data_dir, tmp_path) -> None:
    """`generate.py generator=ngram` in-process on the tiny dataset: the exact count per class, provenance on
    every post, and an anchor that is a seed post."""
    import json

    from sentisynth.data import load_data
    from sentisynth.generation import run_generate_stage

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(CORPUS * 5) + "\n")
    cfg = compose_cfg(
        "generate",
        f"paths.data_dir={tiny_data_dir}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        "generator=ngram",
        f"generator.corpus={corpus}",
        "generator.budget.n_per_class=4",
        "data.seed_size=20",
        "guidance=shap",
        "filters=none",
        "logger=none",
    )
    run_generate_stage(cfg)
    rows = [json.loads(x) for x in (tmp_path / "run" / "synthetic.jsonl").read_text().splitlines()]
    labels = [r["label"] for r in rows]
    assert sorted(set(labels)) == [0, 1, 2, 3] and all(labels.count(c) == 4 for c in range(4))
    seed = load_data("tweet_eval", seed_size=20, seed=0, task="emotion", data_dir=str(tiny_data_dir)).seed
    for r in rows:
        prov = r["provenance"]
        assert prov["anchor_index"] in set(seed.index.tolist()) and "<text>" in prov["prompt"]


def test_attributes_steer_topic_and_length(tmp_path) -> None:
    """guidance.attributes on: each request records its drawn topic and length; the length caps the post."""
    from sentisynth.generation.attributes import AttributeSpace

    ctx = _ctx(tmp_path, GuidanceStrategy(name="naive"))
    ctx.attributes = AttributeSpace({"topic": ["song", "dog"], "length": ["short"]}, {"short": 4}, (4, 8))
    gen = _gen(tmp_path, anchor_words=0)
    gen.prepare(ctx)
    reqs = gen.make_requests(ctx, 1, 40, np.random.default_rng(0))
    assert {r.attributes["topic"] for r in reqs} == {"song", "dog"} and all(
        "<topic>" in r.prompt for r in reqs
    )
    posts, _ = gen.run_batch(ctx, reqs, list(range(40)))
    assert all(len(tokenize(p[0])) <= 6 for p in posts if p)  # 1.5 x the drawn 4 words
    on_topic = sum(r.attributes["topic"] in p[0].split() for r, p in zip(reqs, posts) if p)
    assert on_topic >= 20  # best of 8 by topic use (the corpus has both words)
