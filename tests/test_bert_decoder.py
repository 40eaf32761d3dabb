"""`generator=minilm_decoder` in miniature: the offline MiniLM encoder (its real weights, cut to one layer and a
few hundred WordPiece tokens) warm-started as a causal decoder, trained a few steps on a toy corpus, cached,
loaded back through `from_pretrained`, label-fine-tuned and sampled like `tiny`."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from sentisynth.generation.bert_decoder import (
    DecoderConfig,
    cut_tokenizer,
    detokenize,
    kept_token_ids,
    pretrain_decoder,
    warm_decoder,
)
from sentisynth.generation.label_lm import MiniLMDecoderGenerator
from sentisynth.generation.prompts import GuidanceStrategy
from sentisynth.generation.sampling import SamplingParams, generate_batch
from tests.test_generation_models import FAST, TEXTS, ctx_for

CORPUS = [
    "so happy with the new album, love it",
    "traffic again... i hate mondays",
    "can't wait for tomorrow, feeling hopeful",
    "miss you so much, crying tonight",
    "what a game!! the refs were awful",
    "sunday afternoon walking through venice in the sun",
    "@user #sad can't stop crying",
] * 40
MINI = {
    "num_layers": 1,
    "vocab_size": 90,
    "val_fraction": 0.05,
    "max_steps": 4,
    "seq_len": 32,
    "batch_size": 4,
    "val_every": 2,
}


def source_tokenizer():
    from transformers import AutoTokenizer

    from sentisynth.classifiers.transformer import resolve_model_path

    return AutoTokenizer.from_pretrained(resolve_model_path("minilm"))


def test_cut_vocabulary_spells_every_corpus_word_with_the_sources_pieces() -> None:
    """The cut vocabulary keeps the specials and the corpus's character pieces, so every corpus post tokenizes to
    the same pieces as with the full 30,522-token vocabulary (no [UNK] the source would not give)."""
    src = source_tokenizer()
    used = {i for line in CORPUS for i in src(line, add_special_tokens=False)["input_ids"]}
    keep = kept_token_ids(src, CORPUS, 90)
    assert len(keep) == 90 and keep == sorted(keep) and set(src.all_special_ids) <= set(keep)
    assert not used <= set(keep)  # cut below what the corpus uses: the rarest pieces go
    assert set(kept_token_ids(src, CORPUS, 1000)) >= used  # room for all: a smaller vocabulary, nothing lost
    tok = cut_tokenizer(src, keep)
    assert len(tok) == 90 and tok.eos_token == tok.bos_token == "[SEP]" and tok.pad_token_id == 0
    for line in set(CORPUS):  # spelt with smaller pieces, never lost to [UNK]
        assert tok.unk_token not in tok.tokenize(line)
        assert tok.decode(tok(line)["input_ids"], skip_special_tokens=True) == src.decode(
            src(line)["input_ids"], skip_special_tokens=True
        )
    rare = "sunshine overwhelming"  # out-of-corpus words of the corpus's characters
    assert (
        tok.unk_token not in tok.tokenize(rare)
        and tok.decode(tok(rare)["input_ids"], skip_special_tokens=True) == rare
    )
    with pytest.raises(ValueError, match="vocab_size 10 is below"):
        kept_token_ids(src, CORPUS, 10)


def test_warm_decoder_keeps_the_minilm_rows_ties_the_head_and_is_causal() -> None:
    from transformers import AutoModel

    from sentisynth.classifiers.transformer import resolve_model_path

    keep = kept_token_ids(source_tokenizer(), CORPUS, 90)
    model = warm_decoder(DecoderConfig(num_layers=2), keep).eval()
    enc = AutoModel.from_pretrained(resolve_model_path("minilm"))
    assert torch.equal(model.get_input_embeddings().weight, enc.get_input_embeddings().weight[keep])
    assert torch.equal(  # the first layer's attention is MiniLM's
        model.bert.encoder.layer[0].attention.self.query.weight,
        enc.encoder.layer[0].attention.self.query.weight,
    )
    assert len(model.bert.encoder.layer) == 2 and model.config.vocab_size == 90 and model.config.is_decoder
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    ids = torch.tensor([[5, 17, 40, 60, 70, 7]])
    other = ids.clone()
    other[0, 4:] = torch.tensor([33, 80])
    with torch.no_grad():
        a, b = model(input_ids=ids).logits, model(input_ids=other).logits
    assert torch.allclose(a[0, :4], b[0, :4], atol=1e-5) and not torch.allclose(a[0, 4:], b[0, 4:])


@pytest.fixture(scope="module")
def decoder_dir(tmp_path_factory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("dec")
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(CORPUS) + "\n")
    cache = root / "cache"
    return pretrain_decoder(DecoderConfig(**MINI), corpus, cache, {"accelerator": "cpu"}), corpus, cache


def test_pretrained_decoder_is_cached_and_loads_back_through_from_pretrained(decoder_dir) -> None:
    import json

    from transformers import AutoModelForCausalLM, AutoTokenizer

    path, corpus, cache = decoder_dir
    meta = json.loads((path / "meta.json").read_text())
    assert meta["steps"] == 4 and meta["kept_tokens"] == 90 and meta["source"]["weights"]
    assert math.isfinite(meta["val_word_ppl"]) and meta["val_word_ppl"] > 1
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert pretrain_decoder(DecoderConfig(**MINI), corpus, cache) == path  # reused, not retrained
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp
    assert pretrain_decoder(DecoderConfig(**{**MINI, "max_steps": 3}), corpus, cache) != path  # new key

    model = AutoModelForCausalLM.from_pretrained(path).eval()
    tok = AutoTokenizer.from_pretrained(path)
    assert type(model).__name__ == "BertLMHeadModel" and model.config.is_decoder and len(tok) == 90
    # absolute positions: a left-padded prompt must be sampled as if it stood alone
    prompts = [
        tok(t, add_special_tokens=False)["input_ids"] for t in ("so happy", "i hate mondays traffic again")
    ]
    greedy = SamplingParams(do_sample=False, max_new_tokens=6, repetition_penalty=1.0)
    batched = generate_batch(model, prompts, greedy, 0, tok.pad_token_id, [])
    single = [generate_batch(model, [p], greedy, 0, tok.pad_token_id, [])[0] for p in prompts]
    assert batched == single and all(len(r) == 6 for r in batched)


def test_minilm_decoder_generator_label_tunes_anchors_and_samples_reproducibly(decoder_dir, tmp_path) -> None:
    path, corpus, cache = decoder_dir
    ctx = ctx_for(GuidanceStrategy(name="naive"), cache)
    gen = MiniLMDecoderGenerator(
        corpus=str(corpus),
        decoder=MINI,
        finetune={**FAST, "max_steps": 2},
        anchor_words=3,
        sampling={"max_new_tokens": 8},
    )
    gen.prepare(ctx)
    ident = gen.identity()
    assert (
        ident["kind"] == "minilm_decoder" and ident["name"] == "minilm_decoder" and ident["anchor_words"] == 3
    )
    assert ident["detokenizer"]  # a change to the post-processing must change the generated sets' cache keys
    reqs = gen.make_requests(ctx, 1, 4, np.random.default_rng(0))
    assert all(TEXTS[r.anchor_index].startswith(r.prompt.split("<text> ", 1)[1]) for r in reqs)
    row = gen.tokenizer("# sad @ user can't stop", add_special_tokens=False)["input_ids"]
    assert gen.decode(dataclasses.replace(reqs[0], n_anchor=0), row) == "#sad @user can't stop"
    posts, n_new = gen.run_batch(ctx, reqs, [0, 1, 2, 3])
    again, _ = gen.run_batch(ctx, reqs, [0, 1, 2, 3])
    assert posts == again and n_new > 0 and any(posts)
    assert np.isfinite(gen.lm_scorer(["so happy today"])).all()


def test_minilm_decoder_refuses_vllm_and_tiny_shaped_settings() -> None:
    with pytest.raises(ValueError, match="vLLM has no causal BERT"):
        MiniLMDecoderGenerator(corpus="c.txt", backend="vllm")
    with pytest.raises(ValueError, match="generator.decoder"):
        MiniLMDecoderGenerator(corpus="c.txt", pretrain={"n_layer": 2})


@pytest.mark.parametrize(
    ("decoded", "post"),
    [
        ("@ user @ user hell ' s fuming and i ' m not.", "@user @user hell's fuming and i'm not."),
        ("doesn ' t even care # depression ! !", "doesn't even care #depression!!"),
        ("she said ' hi ' , then left", "she said ' hi ', then left"),  # quotes are not clitics
    ],
)
def test_detokenize_gives_the_tweet_tokenizer_real_hashtags_mentions_and_contractions(decoded, post) -> None:
    from sentisynth.text import tweet_tokenize

    assert detokenize(decoded) == post
    assert tweet_tokenize(detokenize("# sad @ user can ' t")) == ["#sad", "@user", "can't"]
