"""Generators end to end with tiny local models: a random GPT-2 (`gpt2`) and a random Llama with LoRA
(`lora_llm`), each with a tokenizer trained here and loaded back through `from_pretrained`."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from sentisynth.generation.base import GenContext
from sentisynth.generation.instruct import InstructGenerator
from sentisynth.generation.label_lm import LabelLMGenerator
from sentisynth.generation.pipeline import generate_until
from sentisynth.generation.prompts import GuidanceStrategy
from sentisynth.generation.sampling import SamplingParams, generate_batch
from sentisynth.generation.shards import run_chunk, run_local
from sentisynth.generation.store import BatchStore
from sentisynth.generation.tokenizer import train_bpe_tokenizer

LABELS = ["anger", "joy"]
TEXTS = [
    "i hate this traffic so much",
    "so angry at the refs tonight",
    "this is furious stuff, hate it",
    "what a lovely sunny day",
    "so happy for you both",
    "joy joy joy at the beach today",
] * 4
GUIDANCE = {
    "classes": {
        "anger": {
            "keywords": [
                {"term": "hate", "shap": 1, "tfidf_diff": 1, "score": 2.0},
                {"term": "angry", "shap": 1, "tfidf_diff": 1, "score": 1.0},
            ],
            "exemplars": [{"text": TEXTS[0], "index": 0}, {"text": TEXTS[1], "index": 1}],
        },
        "joy": {
            "keywords": [
                {"term": "happy", "shap": 1, "tfidf_diff": 1, "score": 2.0},
                {"term": "lovely", "shap": 1, "tfidf_diff": 1, "score": 1.0},
            ],
            "exemplars": [{"text": TEXTS[3], "index": 3}, {"text": TEXTS[4], "index": 4}],
        },
    }
}
FAST = {"epochs": 1, "batch_size": 8, "lr": 1e-3, "patience": 1, "val_fraction": 0.2, "warmup_steps": 0}


def ctx_for(strategy: GuidanceStrategy, cache: Path, guidance: dict | None = GUIDANCE) -> GenContext:
    labels = np.array([0, 0, 0, 1, 1, 1] * 4)
    return GenContext(
        TEXTS,
        labels,
        np.arange(len(TEXTS)),
        LABELS,
        strategy,
        guidance,
        cache,
        {"accelerator": "cpu", "enable_progress_bar": False},
        0,
        "seedfp",
        "guidfp",
    )


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory) -> Path:
    from transformers import GPT2Config, GPT2LMHeadModel

    d = tmp_path_factory.mktemp("gpt2")
    tok = train_bpe_tokenizer(TEXTS * 5, vocab_size=300)
    torch.manual_seed(0)
    GPT2LMHeadModel(
        GPT2Config(
            vocab_size=len(tok),
            n_positions=64,
            n_embd=32,
            n_layer=2,
            n_head=2,
            eos_token_id=tok.eos_token_id,
            bos_token_id=tok.bos_token_id,
        )
    ).save_pretrained(d)
    tok.save_pretrained(d)
    return d


def test_left_padded_batch_matches_single_prompts(gpt2_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(gpt2_dir).eval()
    tok = AutoTokenizer.from_pretrained(gpt2_dir)
    prompts = [
        tok("so happy", add_special_tokens=False)["input_ids"],
        tok("i hate this traffic so much today", add_special_tokens=False)["input_ids"],
    ]
    greedy = SamplingParams(do_sample=False, max_new_tokens=6, repetition_penalty=1.0)
    batched = generate_batch(model, prompts, greedy, 0, tok.pad_token_id, [tok.eos_token_id])
    single = [generate_batch(model, [p], greedy, 0, tok.pad_token_id, [tok.eos_token_id])[0] for p in prompts]
    assert batched == single


@pytest.mark.slow  # > 5 s: end to end
def test_gpt2_generator_keyword_conditioning_and_same_seed_same_samples(
    gpt2_dir: Path, tmp_path: Path
) -> None:
    strategy = GuidanceStrategy(name="shap", n_keywords=2, n_exemplars=1, max_exemplar_words=5)
    gen = LabelLMGenerator(
        name=str(gpt2_dir), train_blocks=1, finetune=FAST, batch_size=4, sampling={"max_new_tokens": 12}
    )
    ctx = ctx_for(strategy, tmp_path / "cache")
    gen.prepare(ctx)
    saved = Path(gen.info["path"])
    assert (saved / "meta.json").is_file() and "<anger>" in gen.tokenizer.get_vocab()
    # fine-tuning rows: the post's own keywords after <kw>, loss only on the post
    rows = gen.training_rows(gen.tokenizer, ctx)
    first = gen.tokenizer.decode(rows[0][0][: rows[0][1]])
    assert first.startswith("<anger> <kw> hate <ex> ") and first.endswith("<text>"), first
    reqs = gen.make_requests(ctx, 1, 3, np.random.default_rng(0))
    assert all(r.prompt.startswith("<joy> <kw> ") and set(r.keywords) <= {"happy", "lovely"} for r in reqs)
    assert all(len(r.exemplar_indices) == 1 and r.exemplar_indices[0] in (3, 4) for r in reqs)

    def run(store_dir: Path, batch_size: int) -> list[list[str]]:
        gen.batch_size = batch_size
        store = BatchStore(store_dir / "b.jsonl")
        acc, stats = generate_until(
            gen, ctx, store.batches, [5, 5], lambda chunks: run_local(gen, ctx, store, chunks, "k", {}), 20
        )
        assert stats["batches"] >= 2
        return [[r["text"] for r in a] for a in acc]

    # one seed per request: the same samples whatever the batch size (the store key leaves it out)
    a, b = run(tmp_path / "s1", 4), run(tmp_path / "s2", 3)
    assert a == b and all(len(x) == 5 for x in a)
    assert all("<" not in t.split()[0] for x in a for t in x if t)  # no leftover prefix tags
    ppl = gen.lm_scorer(["so happy today", "hate hate"])
    assert len(ppl) == 2 and all(math.isfinite(p) and p > 1 for p in ppl)
    # cached fine-tuned model is reused, not retrained
    mtime = (saved / "meta.json").stat().st_mtime
    gen2 = LabelLMGenerator(name=str(gpt2_dir), train_blocks=1, finetune=FAST, batch_size=4)
    gen2.prepare(ctx)
    assert gen2.info["path"] == str(saved) and (saved / "meta.json").stat().st_mtime == mtime


@pytest.mark.slow  # > 5 s: end to end
def test_shap_bias_raises_keyword_frequency(gpt2_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sentisynth.generation.sampling import KeywordBiasProcessor, keyword_token_ids

    model = AutoModelForCausalLM.from_pretrained(gpt2_dir).eval()
    tok = AutoTokenizer.from_pretrained(gpt2_dir)
    ids = keyword_token_ids(tok, ["hate", "happy"])
    prompts = [tok("so", add_special_tokens=False)["input_ids"]] * 8
    params = SamplingParams(max_new_tokens=8, repetition_penalty=1.0)

    def share(procs) -> float:
        rows = generate_batch(model, prompts, params, 3, tok.pad_token_id, [tok.eos_token_id], procs)
        toks = [t for r in rows for t in r]
        return sum(t in ids for t in toks) / max(len(toks), 1)

    assert share([KeywordBiasProcessor(ids, 8.0)]) > 0.5 > share([])


@pytest.mark.slow  # > 5 s: end to end
def test_lora_llm_tiny_llama_with_chat_template(tmp_path: Path) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    d = tmp_path / "llama"
    tok = train_bpe_tokenizer(TEXTS * 5 + ["Write posts that express anger joy"] * 5, vocab_size=300)
    tok.add_tokens(["<|user|>", "<|assistant|>", "<|system|>", "<|end|>"], special_tokens=True)
    tok.eos_token = "<|end|>"
    tok.chat_template = (
        "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    torch.manual_seed(0)
    LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tok),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=512,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )
    ).save_pretrained(d)
    tok.save_pretrained(d)
    strategy = GuidanceStrategy(name="shap", n_keywords=2, n_exemplars=1)
    gen = InstructGenerator(
        name=str(d),
        posts_per_prompt=3,
        batch_size=2,
        sampling={"max_new_tokens": 24},
        lora={
            "enabled": True,
            "epochs": 1,
            "batch_size": 8,
            "r": 4,
            "alpha": 8,
            "target_modules": ["q_proj", "v_proj"],
            "val_fraction": 0.2,
        },
    )
    ctx = ctx_for(strategy, tmp_path / "cache")
    gen.prepare(ctx)
    adapter = tmp_path / "cache" / "adapters" / gen.info["adapter_key"]
    assert (adapter / "adapter_config.json").is_file() and (adapter / "meta.json").is_file()
    assert type(gen.model).__name__.startswith("Peft")
    reqs = gen.make_requests(ctx, 0, 5, np.random.default_rng(0))
    assert len(reqs) == 2 and all("anger" in r.prompt and "Examples" in r.prompt for r in reqs)
    assert all(tok.decode(r.prompt_ids).endswith("<|assistant|>") for r in reqs)
    posts, n_tokens = gen.run_batch(ctx, reqs, [1, 2])
    assert len(posts) == 2 and n_tokens > 0 and all(len(p) <= 3 for p in posts)
    again, _ = gen.run_batch(ctx, reqs[::-1], [2, 1])
    assert again[::-1] == posts
    # the adapter is cached: a second generator loads it instead of training
    gen2 = InstructGenerator(name=str(d), posts_per_prompt=3, lora=dict(gen.lora))
    gen2.prepare(ctx)
    assert gen2.info["adapter_key"] == gen.info["adapter_key"] and type(gen2.model).__name__.startswith(
        "Peft"
    )


@pytest.mark.slow  # > 5 s: end to end
def test_gpt2_domain_adaptive_pretraining_runs_on_a_corpus(gpt2_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(TEXTS * 10) + "\n")
    gen = LabelLMGenerator(name=str(gpt2_dir), pretrain_corpus=str(corpus), pretrain_steps=3, finetune=FAST)
    tok = AutoTokenizer.from_pretrained(gpt2_dir)
    model = AutoModelForCausalLM.from_pretrained(gpt2_dir)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    summary = gen._domain_pretrain(model, tok, ctx_for(GuidanceStrategy(), tmp_path / "cache"))
    assert summary["steps"] == 3 and math.isfinite(summary["best_val_ppl"])
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_finetune_step_cap_shorter_than_an_epoch_still_validates(gpt2_dir: Path) -> None:
    """`finetune.max_steps` below one epoch (a 2,000-post seed with an 80-step cap): early stopping on
    validation perplexity needs at least one validation, so it runs at the cap instead of failing."""
    from transformers import GPT2LMHeadModel

    from sentisynth.generation.lm_finetune import fit_causal_lm

    model = GPT2LMHeadModel.from_pretrained(gpt2_dir)
    rng = np.random.default_rng(0)
    rows = [(rng.integers(5, 60, size=12).tolist(), 2) for _ in range(40)]
    out = fit_causal_lm(
        model,
        rows[:36],
        rows[36:],
        pad_id=0,
        trainer_cfg={"accelerator": "cpu"},
        batch_size=4,
        max_epochs=3,
        max_steps=3,
        patience=2,
    )  # 9 steps per epoch, capped at 3
    assert out["steps"] == 3 and len(out["val_ppl_history"]) >= 1 and math.isfinite(out["best_val_ppl"])


def test_seed_anchored_posts_open_with_a_seed_post_of_the_class(gpt2_dir: Path, tmp_path: Path) -> None:
    """`anchor_words`: each post starts with the first words (at most half) of a seed post of the intended
    class, recorded in provenance; the same seed gives the same posts; anchoring off leaves requests as
    they were (same rng draws, same prompts)."""
    strategy = GuidanceStrategy(name="naive")
    ctx = ctx_for(strategy, tmp_path / "cache")
    gen = LabelLMGenerator(
        name=str(gpt2_dir), finetune={**FAST, "max_steps": 2}, anchor_words=3, sampling={"max_new_tokens": 6}
    )
    gen.prepare(ctx)
    assert gen.identity()["anchor_words"] == 3
    plain = LabelLMGenerator(name=str(gpt2_dir), finetune={**FAST, "max_steps": 2})
    plain.prepare(ctx)
    assert "anchor_words" not in plain.identity()
    for label in (0, 1):
        reqs = gen.make_requests(ctx, label, 6, np.random.default_rng(label))
        base = plain.make_requests(ctx, label, 6, np.random.default_rng(label))
        assert [r.prompt for r in base] == [r.prompt.split(" <text> ")[0] + " <text>" for r in reqs]
        for r in reqs:
            seed_post = TEXTS[r.anchor_index]
            opening = r.prompt.split("<text> ", 1)[1]
            assert ctx.seed_labels[r.anchor_index] == label and seed_post.startswith(opening)
            assert 1 <= len(opening.split()) <= min(3, len(seed_post.split()) // 2) and r.n_anchor > 0
        posts, _ = gen.run_batch(ctx, reqs, list(range(6)))
        again, _ = gen.run_batch(ctx, reqs, list(range(6)))
        assert posts == again and sum(map(len, posts)) >= 3
        for r, texts in zip(reqs, posts):
            for t in texts:  # the opening, then what the model wrote
                assert t.startswith(r.prompt.split("<text> ", 1)[1]) and len(t) > len(
                    r.prompt.split("<text> ")[1]
                )
    rows, _, _ = run_chunk(gen, ctx, (0, 0, 2), "k", {})
    assert all(isinstance(r["provenance"]["anchor_index"], int) for r in rows)


def test_label_lm_fine_tunes_and_generates_with_attributes(gpt2_dir: Path, tmp_path: Path) -> None:
    """Attributes on (docs/diversity.md): the markers are special tokens of the fine-tuned model, its training
    prefixes carry each post's mined length, its requests the drawn attributes; the model key changes."""
    from sentisynth.generation.attributes import AttributeConfig, build_space

    gen = LabelLMGenerator(name=str(gpt2_dir), train_blocks=1, finetune=FAST, sampling={"max_new_tokens": 8})
    ctx = ctx_for(GuidanceStrategy(name="naive"), tmp_path / "cache", None)
    ctx.attributes = build_space(AttributeConfig(enabled=True, kinds=["topic", "length"]), TEXTS)
    gen.prepare(ctx)
    assert {"<topic>", "<length>"} <= set(gen.tokenizer.get_vocab())
    rows = gen.training_rows(gen.tokenizer, ctx)
    assert "<length> " in gen.tokenizer.decode(rows[0][0][: rows[0][1]])
    reqs = gen.make_requests(ctx, 0, 2, np.random.default_rng(0))
    posts, _ = gen.run_batch(ctx, reqs, [1, 2])
    assert len(posts) == 2 and all(set(r.attributes) == {"topic", "length"} for r in reqs)
    plain = LabelLMGenerator(name=str(gpt2_dir), train_blocks=1, finetune=FAST)
    plain.prepare(ctx_for(GuidanceStrategy(name="naive"), tmp_path / "cache", None))
    assert plain.info["key"] != gen.info["key"] and "<topic>" not in plain.tokenizer.get_vocab()
