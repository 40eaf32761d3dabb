"""Prompt construction, completion parsing, keyword conditioning, shap_bias, budget and the store."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sentisynth.generation.pipeline import accepted, plan_budget
from sentisynth.generation.prompts import (
    GuidanceStrategy,
    class_keywords,
    clean_text,
    conditioning_prefix,
    keywords_in_text,
    parse_posts,
    render_instruction,
    sample_keywords,
)
from sentisynth.generation.sampling import KeywordBiasProcessor, keyword_token_ids
from sentisynth.generation.shards import done_requests, missing_chunks
from sentisynth.generation.store import BatchStore
from sentisynth.generation.tokenizer import train_bpe_tokenizer
from sentisynth.utils import content_key

GUIDANCE = {
    "classes": {
        "anger": {
            "keywords": [
                {"term": "hate", "shap": 0.5, "tfidf_diff": 0.1, "score": 2.0},
                {"term": "angry", "shap": 0.4, "tfidf_diff": 0.1, "score": 1.0},
                {"term": "fuming mad", "shap": 0.1, "tfidf_diff": 0.0, "score": 0.5},
            ],
            "exemplars": [{"text": "I hate mondays", "index": 7}],
        }
    }
}


def test_conditioning_prefix_format() -> None:
    assert conditioning_prefix("anger") == "<anger> <text>"
    assert conditioning_prefix("anger", ["hate", "angry"]) == "<anger> <kw> hate angry <text>"
    assert conditioning_prefix("anger", []) == "<anger> <kw> <text>"  # empty slot: post had no keyword
    long = " ".join(f"w{i}" for i in range(50))
    assert (
        conditioning_prefix("very angry", None, [long], max_exemplar_words=3)
        == "<very_angry> <ex> w0 w1 w2 <text>"
    )


def test_keywords_in_text_whole_words_in_ranking_order() -> None:
    terms, weights = class_keywords(GUIDANCE, "anger", 20)
    assert terms == ["hate", "angry", "fuming mad"] and weights.tolist() == [2.0, 1.0, 0.5]
    assert keywords_in_text("So ANGRY, I hate this, fuming mad", terms, 5) == ["hate", "angry", "fuming mad"]
    assert keywords_in_text("whatever hated", terms, 5) == []  # no partial-word matches
    assert keywords_in_text("hate angry", terms, 1) == ["hate"]
    rng = np.random.default_rng(0)
    picks = sample_keywords(rng, terms, weights, 2)
    assert len(picks) == 2 and len(set(picks)) == 2 and all(p in terms for p in picks)
    assert class_keywords(GUIDANCE, "joy", 5)[0] == [] and class_keywords(None, "anger", 5)[0] == []


def test_render_instruction_includes_guidance() -> None:
    s = GuidanceStrategy(name="shap")
    text = render_instruction(s.instruction, "anger", 3, ["hate", "angry"], ["I hate mondays"])
    assert "3" in text and "anger" in text and "hate, angry" in text and "- I hate mondays" in text
    naive = render_instruction(s.instruction, "joy", 2)
    assert "Examples" not in naive and "Words typical" not in naive
    with pytest.raises(ValueError, match="guidance.name"):
        GuidanceStrategy(name="magic")


@pytest.mark.parametrize(
    "completion,expected",
    [
        (
            'Here are 3 posts:\n1. First post!\n2) "Second post"\n3 - third one',
            ["First post!", "Second post", "third one"],
        ),
        ("- a bullet\n* another   one\n\n", ["a bullet", "another one"]),
        ("Sure! Here you go:\nPost 1: hello world\nPost 2: bye", ["hello world", "bye"]),
        ("just one post without numbering", ["just one post without numbering"]),
        ("1. one\n2. two\n3. three\n4. four", ["one", "two"]),
        ("", []),
    ],
)
def test_parse_posts(completion: str, expected: list[str]) -> None:
    assert parse_posts(completion, 2 if "four" in completion else 5) == expected


def test_clean_text_strips_prefix_tags_and_space() -> None:
    assert clean_text("<anger> <text>  so   mad \n today ") == "so mad today"
    assert clean_text("   ") == ""
    assert clean_text("I <3 you") == "I <3 you"


def test_keyword_bias_changes_exactly_keyword_logits() -> None:
    tok = train_bpe_tokenizer(
        ["i hate this so much", "angry angry people", "love and joy"] * 20, vocab_size=300
    )
    ids = keyword_token_ids(tok, ["hate", "angry"])
    assert ids and all(i not in tok.all_special_ids for i in ids)
    scores = torch.randn(3, len(tok))
    out = KeywordBiasProcessor(ids, 2.5)(torch.zeros(3, 4, dtype=torch.long), scores.clone())
    changed = torch.nonzero(out != scores)
    assert set(changed[:, 1].tolist()) == set(ids) and changed.shape[0] == 3 * len(ids)
    assert torch.allclose((out - scores)[:, ids], torch.full((3, len(ids)), 2.5))
    per_row = KeywordBiasProcessor([[ids[0]], []], 1.0)(
        torch.zeros(2, 1, dtype=torch.long), scores[:2].clone()
    )
    assert torch.nonzero(per_row != scores[:2]).tolist() == [[0, ids[0]]]


def test_plan_budget() -> None:
    counts = np.array([10, 5, 1, 4])
    assert plan_budget({"n_per_class": 7}, counts) == [7, 7, 7, 7]
    assert plan_budget({"total": 10, "distribution": "uniform"}, counts) == [3, 3, 2, 2]
    bal = plan_budget({"total": 12, "distribution": "balance"}, counts)
    assert sum(bal) == 12 and bal[0] == 0 and bal[2] > bal[1]  # the smallest class gets the most
    assert sum(plan_budget({"total": 9, "distribution": "seed"}, counts)) == 9
    with pytest.raises(ValueError, match="distribution"):
        plan_budget({"total": 3, "distribution": "nope"}, counts)


def test_store_drops_torn_batches_and_dedups(tmp_path) -> None:
    def row(i: str, text: str, label: int, k: int) -> dict:
        return {"id": i, "text": text, "label": label, "provenance": {"request": k}}

    path = tmp_path / "batches.jsonl"
    store = BatchStore(path)
    store.append("0-0-2", [row("a", "x", 0, 0), row("b", "X ", 0, 1)])
    store.append("1-0-1", [])  # a batch that produced nothing still counts as done
    store.append("1-1-3", [row("c", "x", 1, 1), row("d", "y", 1, 2)])
    with open(path, "a") as f:  # a killed writer: half a batch, then half a line
        f.write(json.dumps({**row("e", "z", 0, 2), "batch": "0-2-5", "batch_n": 3}) + "\n")
        f.write('{"id": "f", "te')
    again = BatchStore(path)
    assert sorted(again.batches) == ["0-0-2", "1-0-1", "1-1-3"] and "0-2-5" not in again
    assert path.read_text().endswith("\n") and len(path.read_text().splitlines()) == 5
    acc = accepted(again.batches, 2)
    # "x" appears under both labels -> dropped from both; "X " duplicates "x" within class 0
    assert [r["id"] for r in acc[0]] == [] and [r["id"] for r in acc[1]] == ["d"]
    # only requests below each class's limit count: class 1's "x" (request 1) is outside limit 1
    assert [r["id"] for r in accepted(again.batches, 2, [2, 1])[0]] == ["a"]
    assert done_requests(again.batches, 2) == [{0, 1}, {0, 1, 2}]
    assert missing_chunks([{0, 1}, {0, 3}], [0, 0], [6, 7], 2) == [
        (0, 2, 4),
        (0, 4, 6),
        (1, 1, 3),
        (1, 4, 6),
        (1, 6, 7),
    ]
    assert content_key({"a": 1, "b": [1, 2]}) == content_key({"b": [1, 2], "a": 1})


def test_top_k_sampler_draws_from_hf_warped_distribution() -> None:
    """`RowSeededTopKSampler` (top-k, then top-p, then Gumbel-max on the k best) samples what HF's
    temperature/top-k/top-p warpers define: nothing outside their support, and total variation within
    sampling noise over 20,000 rows; a row's draw depends only on its seed."""
    import torch
    from transformers import TopKLogitsWarper, TopPLogitsWarper

    from sentisynth.generation.sampling import RowSeededTopKSampler, SamplingParams

    torch.manual_seed(0)
    logits = torch.randn(1, 300)
    params = SamplingParams(temperature=0.7, top_k=50, top_p=0.9)
    ref = TopPLogitsWarper(0.9)(None, TopKLogitsWarper(50)(None, logits / 0.7)).softmax(-1)[0]
    n = 20000
    out = RowSeededTopKSampler(params, list(range(n)), torch.device("cpu"))(
        None, logits.expand(n, -1).clone()
    )
    drawn = out.argmax(-1)
    assert torch.isfinite(out).sum(-1).eq(1).all()  # exactly one token left per row
    freq = torch.bincount(drawn, minlength=300).float() / n
    assert float(freq[ref == 0].sum()) == 0.0
    assert 0.5 * float((freq - ref).abs().sum()) < 0.04  # 36 tokens in the support: noise is about 0.02
    assert 10 < int((freq > 0).sum()) <= int((ref > 0).sum())
    again = RowSeededTopKSampler(params, [7, 3], torch.device("cpu"))(None, logits.expand(2, -1).clone())
    alone = RowSeededTopKSampler(params, [3], torch.device("cpu"))(None, logits.clone())
    assert again[1].argmax() == alone[0].argmax()
