"""Diversity at generation time (docs/diversity.md): attributes drawn per request (reproducible, in the
instruction text, in the label LMs' conditioning prefix and fine-tuning rows, in provenance, in the cache key
only when on), the embedding near-duplicate filter and the embedding-spread measure. Embeddings come from a
fake embedder (bag of words) except in one small test with the real MiniLM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sentisynth.analysis import compare_sets, embedding_measures, embedding_spread
from sentisynth.filters import EmbedDedupFilter, FilterContext, build_filter_chain
from sentisynth.generation.attributes import (
    AttributeConfig,
    attribute_config,
    build_space,
    draw_attributes,
    post_attributes,
)
from sentisynth.generation.base import GenContext, Posts
from sentisynth.generation.label_lm import LabelLMGenerator
from sentisynth.generation.openai_compat import ApiGenerator
from sentisynth.generation.prompts import GuidanceStrategy
from sentisynth.generation.shards import run_chunk
from sentisynth.generation.tokenizer import train_bpe_tokenizer

LABELS = ["anger", "joy"]
SEED = [
    "i hate this #traffic so much",
    "so angry at the refs tonight #football",
    "stuck in #traffic again, furious",
    "what a lovely sunny day at the beach",
    "so happy for you both, what a day at the beach",
    "the #football win made my whole week",
]
LISTS = {"style": ["sarcastic", "excited"], "persona": ["a nurse", "a student"]}


def space():
    return build_space(AttributeConfig(enabled=True, lists=LISTS, min_topic_count=2), SEED)


def ctx(attrs=None, strategy: str = "naive") -> GenContext:
    return GenContext(
        SEED,
        np.array([0, 0, 0, 1, 1, 1]),
        np.arange(6),
        LABELS,
        GuidanceStrategy(name=strategy),
        None,
        Path("."),
        attributes=attrs,
    )


def bag_embedder(texts):
    """Fake sentence embedding: bag of lowercased words hashed into 64 dims (same words -> cosine 1)."""
    out = np.zeros((len(texts), 64))
    for i, t in enumerate(texts):
        for w in t.lower().replace(",", " ").replace("!", " ").split():
            out[i, sum(map(ord, w)) % 64] += 1.0
    return out


def test_attribute_space_mines_topics_and_lengths_and_off_draws_nothing() -> None:
    sp = space()
    assert sp.values["topic"] == ["#football", "#traffic", "beach"]  # in 2+ posts, by frequency; not "day"
    labels = [0, 0, 0, 1, 1, 1]  # with labels, a class's own words (#traffic: anger only) are no topic
    neutral = AttributeConfig(enabled=True, max_topic_lift=1.5)
    assert build_space(neutral, SEED, labels).values["topic"] == ["#football"]
    assert "beach" in sp.values["topic"] and sp.values["length"] == ["short", "medium", "long"]
    assert sp.values["style"] == LISTS["style"] and sp.length_words["short"] < sp.length_words["long"]
    assert attribute_config(None) is None and attribute_config({"enabled": False}) is None
    assert draw_attributes(np.random.default_rng(0), None) == {}
    assert post_attributes("stuck in #traffic", sp) == {"topic": "#traffic", "length": "short"}
    with pytest.raises(ValueError, match="unknown"):
        AttributeConfig(kinds=["mood"])


def test_attributes_are_drawn_reproducibly_and_reach_the_instruction() -> None:
    gen = ApiGenerator("http://h/v1", "m")
    on, off = ctx(space()), ctx(None)
    a = gen.make_requests(on, 0, 8, np.random.default_rng(3))
    b = gen.make_requests(on, 0, 8, np.random.default_rng(3))
    assert [r.attributes for r in a] == [r.attributes for r in b]
    assert len({r.attributes["topic"] for r in a}) > 1 and set(a[0].attributes) == {
        "topic",
        "style",
        "length",
        "persona",
    }
    r = a[0]
    assert (
        f"Topic: {r.attributes['topic']}." in r.prompt
        and f"Written by: {r.attributes['persona']}." in r.prompt
    )
    assert "Length: about " in r.prompt and f"Style: {r.attributes['style']}." in r.prompt
    plain = gen.make_requests(off, 0, 1, np.random.default_rng(3))[0]
    assert plain.attributes == {} and "Topic:" not in plain.prompt


def test_label_lm_takes_attributes_as_conditioning_tokens_and_trains_on_mined_ones() -> None:
    gen = LabelLMGenerator()
    gen.tokenizer = train_bpe_tokenizer(SEED * 5, vocab_size=300)
    on = ctx(space())
    req = gen.make_requests(on, 1, 3, np.random.default_rng(0))[0]
    assert f"<topic> {req.attributes['topic']}" in req.prompt and req.prompt.endswith("<text>")
    assert req.prompt.startswith("<joy>") and f"<persona> {req.attributes['persona']}" in req.prompt
    off = gen.make_requests(ctx(None), 1, 1, np.random.default_rng(0))[0]
    assert off.prompt == "<joy> <text>"
    rows = gen.training_rows(gen.tokenizer, on)
    first = gen.tokenizer.decode(rows[0][0][: rows[0][1]])
    assert "<topic> #traffic" in first and "<length>" in first  # the seed post's own topic and length


def test_attributes_in_provenance() -> None:
    class Echo(ApiGenerator):
        def run_batch(self, ctx, requests, seeds):
            return [Posts([f"post {i}"]) for i in range(len(requests))], 0

    rows, _, _ = run_chunk(Echo("http://h/v1", "m"), ctx(space()), (0, 0, 3), "key", {"guidance": "naive"})
    assert all(set(r["provenance"]["attributes"]) == {"topic", "style", "length", "persona"} for r in rows)
    rows, _, _ = run_chunk(Echo("http://h/v1", "m"), ctx(None), (0, 0, 1), "key", {"guidance": "naive"})
    assert "attributes" not in rows[0]["provenance"]


def test_attribute_config_keys_the_generation_cache_only_when_on(compose_cfg, tiny_data_dir) -> None:
    from sentisynth.cli import build
    from sentisynth.generation.pipeline import plan_generation, request_attributes

    base = ("generate", f"paths.data_dir={tiny_data_dir}", "data.seed_size=20", "generator=api",
            "generator.model=m", "guidance=naive", "logger=none")  # fmt: skip
    keys = []
    for extra in (
        [],
        ["guidance.attributes.enabled=true"],
        ["guidance.attributes.enabled=true", "guidance.attributes.lists.style=[terse]"],
    ):
        cfg = compose_cfg(*base, *extra)
        data = build(cfg.data)
        space_ = request_attributes(cfg, data)
        assert (space_ is None) == (not extra)
        c = ctx(space_)
        c.seed_fingerprint = data.seed.fingerprint()
        keys.append(plan_generation(cfg, data, build(cfg.generator), c).raw_key)
    assert len(set(keys)) == 3
    cfg = compose_cfg(*base)
    data = build(cfg.data)
    c = ctx(None)
    c.seed_fingerprint = data.seed.fingerprint()
    assert plan_generation(cfg, data, build(cfg.generator), c).raw_key == keys[0]


def samples(texts):
    return [{"id": f"s{i}", "text": t, "label": 0, "label_name": "anger"} for i, t in enumerate(texts)]


def test_embedding_filter_drops_paraphrases_of_seed_and_of_kept_posts_naming_them() -> None:
    from types import SimpleNamespace

    from sentisynth.data import Split

    f = EmbedDedupFilter(threshold=0.92, embedder=bag_embedder)
    seed = Split(["i hate this traffic so much"], np.array([0]), np.array([17]))
    data = SimpleNamespace(seed=seed)  # the filter reads only the splits it compares with
    texts = [
        "so much I hate this traffic",  # the seed post's words in another order
        "what a lovely sunny day",
        "a lovely day, what a sunny",  # the kept post above, reordered
        "the refs were awful tonight",
    ]
    kept, dropped = f.apply(samples(texts), FilterContext(data=data, label_names=["anger"]))
    assert [s["id"] for s in kept] == ["s1", "s3"]
    assert (
        dropped[0]["reject_reason"] == "embedding_near_duplicate:seed"
        and "seed post #17" in dropped[0]["reject_detail"]
    )
    assert dropped[1]["duplicate_of"]["id"] == "s1" and "sample s1" in dropped[1]["reject_detail"]


def test_embedding_filter_in_the_chain_config(compose_cfg, tiny_data_dir) -> None:
    cfg = compose_cfg("generate", f"paths.data_dir={tiny_data_dir}", "filters=default_embed")
    assert list(cfg.filters)[:3] == ["heuristic", "dedup", "embed_dedup"]
    assert compose_cfg("generate", f"paths.data_dir={tiny_data_dir}").filters.embed_dedup is None
    chain = build_filter_chain(
        {"embed_dedup": dict(cfg.filters.embed_dedup)}, FilterContext(), leak_guard=False
    )
    assert chain.filters[0].threshold == 0.92 and chain.filters[0].against == ("seed",)


def test_embedding_spread_higher_for_diverse_texts(tmp_path) -> None:
    diverse = [
        "i hate traffic",
        "lovely sunny beach",
        "refs were awful",
        "new phone who dis",
        "cats sleep all day",
    ]
    repeated = ["i hate traffic"] * 4 + ["i hate traffic!"]
    assert embedding_spread(diverse, embedder=bag_embedder) > 0.5
    assert embedding_spread(repeated, embedder=bag_embedder) == pytest.approx(0.0, abs=1e-9)
    paired = diverse + [
        t + "!" for t in diverse
    ]  # every post has a near copy: spread stays, nn distance drops
    assert embedding_measures(paired, embedder=bag_embedder)["embed_nn"] == pytest.approx(0.0, abs=1e-9)
    assert embedding_measures(diverse, embedder=bag_embedder)["embed_nn"] > 0.5
    frame = compare_sets({"seed": (diverse, [0] * 5)}, ["anger"], embed_sample=5, embedder=bag_embedder)
    assert frame.set_index("class").loc["all", "embed_spread"] > 0.5


def test_real_minilm_separates_paraphrase_from_distinct_posts() -> None:
    f = EmbedDedupFilter(threshold=0.9)
    texts = ["I am so happy today!", "Today I am so happy!", "The train was late again this morning."]
    kept, dropped = f.apply(samples(texts), FilterContext())
    assert [s["id"] for s in kept] == ["s0", "s2"] and dropped[0]["duplicate_of"]["id"] == "s0"


@pytest.mark.slow  # > 5 s: end to end (MiniLM for the filter and the card)
def test_generate_with_attributes_and_embedding_filter_end_to_end(compose_cfg, tiny_data_dir) -> None:
    """generator=api against the fake server, attributes on and filters=default_embed (no teacher, perplexity
    or diversity step): every prompt carries its attributes, provenance records them, the card reports
    embed_spread."""
    import json

    from sentisynth.generation import run_generate_stage
    from tests.fake_openai_server import FakeOpenAI

    with FakeOpenAI() as srv:
        cfg = compose_cfg(
            "generate", f"paths.data_dir={tiny_data_dir}", "data.seed_size=20", "generator=api",
            f"generator.base_url={srv.url}", "generator.model=fake-model", "generator.api_key_env=SENTISYNTH_TEST_KEY",
            "generator.posts_per_request=2", "generator.budget.n_per_class=3", "generator.timeout_s=5",
            "guidance=naive", "guidance.attributes.enabled=true", "filters=default_embed", "~filters.teacher",
            "~filters.perplexity", "~filters.diversity", "filters.embed_dedup.threshold=0.99", "logger=none",
        )  # fmt: skip
        run_generate_stage(cfg)
    out = Path(cfg.paths.output_dir)
    rows = [json.loads(x) for x in (out / "synthetic.jsonl").read_text().splitlines()]
    assert rows and all(set(r["provenance"]["attributes"]) >= {"style", "persona"} for r in rows)
    assert all(f"Style: {r['provenance']['attributes']['style']}." in r["provenance"]["prompt"] for r in rows)
    report = json.loads((out / "filter_report.json").read_text())
    assert "embed_dedup" in json.dumps(report) and "embed_spread" in (out / "README.md").read_text()


def test_attributes_fill_a_template_slot_or_end_the_prompt() -> None:
    from sentisynth.generation.prompts import render_instruction

    slot = render_instruction(
        "Write {n} posts of {label}.\n{attributes}One per line.", "joy", 2, attributes="Topic: x."
    )
    assert slot == "Write 2 posts of joy.\nTopic: x.\nOne per line."
    assert render_instruction("Write {n} posts of {label}.", "joy", 2, attributes="Topic: x.").endswith(
        "\nTopic: x."
    )
    assert (
        render_instruction("Write {n} posts of {label}.\n{attributes}One.", "joy", 2)
        == "Write 2 posts of joy.\nOne."
    )
