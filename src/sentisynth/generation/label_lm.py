"""Label-prefix generators (`gpt2`, `tiny`): a causal LM fine-tuned on `<label> [keywords] <text> post`.

Small LMs do not follow instructions, so guidance is conditioning: the label token, the SHAP keywords
a seed post contains (`shap`), exemplar posts of its class (`exemplar`/`shap`). At generation the
keywords are sampled from the class's list and exemplars from its exemplar set.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sentisynth.cache import is_sound, one_time_cost, publish_dir
from sentisynth.filters.perplexity import per_text_perplexity
from sentisynth.generation.attributes import MARKERS, attribute_tokens, draw_attributes, post_attributes
from sentisynth.generation.backends import Backend
from sentisynth.generation.base import GenContext, Request, bias_token_ids, pick_device
from sentisynth.generation.prompts import (
    class_exemplars,
    class_keywords,
    clean_text,
    conditioning_prefix,
    keywords_in_text,
    sample_exemplars,
    sample_keywords,
    special_tokens,
)
from sentisynth.generation.sampling import SamplingParams
from sentisynth.utils import content_key, entry_lock, file_fingerprint, read_json, write_json

log = logging.getLogger(__name__)

DEFAULT_FINETUNE = {
    "epochs": 8,
    "max_steps": None,
    "batch_size": 16,
    "lr": 5e-4,
    "weight_decay": 0.01,
    "patience": 2,
    "val_fraction": 0.1,
    "warmup_steps": 20,
}


def markers(ctx: GenContext) -> list[str]:
    """The attribute markers (`<topic>` ...) as special tokens when attributes are on; none otherwise."""
    return [MARKERS[k] for k in ctx.attributes.values] if ctx.attributes else []


class LabelLMGenerator:
    """A causal LM loaded with `from_pretrained` (Hub name or local dir) and label-fine-tuned on the seed."""

    kind = "gpt2"
    reads_instruction = False  # label-conditioned: never sees the instruction text

    def __init__(
        self,
        name: str = "gpt2",
        revision: str | None = None,
        train_blocks: int | None = None,
        finetune: dict | None = None,
        pretrain_corpus: str | None = None,
        pretrain_steps: int = 500,
        sampling: dict | None = None,
        budget: dict | None = None,
        batch_size: int = 64,
        device: str = "auto",
        trust_remote_code: bool = False,
        backend: str = "hf",
        vllm: dict | None = None,
        workers: int = 1,
        anchor_words: int = 0,
        **extra: Any,
    ) -> None:
        self.name, self.revision = str(name), revision
        self.anchor_words = int(anchor_words or 0)  # seed-anchored generation (see `anchor`); 0: off
        self.train_blocks = train_blocks
        self.finetune = {**DEFAULT_FINETUNE, **(dict(finetune) if finetune else {})}
        self.pretrain_corpus, self.pretrain_steps = pretrain_corpus, pretrain_steps
        self.sampling = SamplingParams(**(dict(sampling) if sampling else {}))
        self.budget = dict(budget) if budget else {}
        self.batch_size = int(batch_size)
        self.device = pick_device(device)
        self.trust_remote_code = bool(trust_remote_code)
        self.backend = Backend(backend, self.device, dict(vllm) if vllm else None)
        self.workers = int(workers)
        self.config: Any = None
        self.tokenizer: Any = None
        self.info: dict[str, Any] = {}

    # -- identity and caching ------------------------------------------------------------------

    def base_model(self, ctx: GenContext) -> tuple[str, dict]:
        """Where the base weights come from, and what identifies them."""
        return self.name, {"name": self.name, "revision": self.revision}

    def identity(self) -> dict[str, Any]:
        """Everything about the generator that changes its samples (cache keys, provenance)."""
        return {
            "kind": self.kind,
            **self.info.get("base", {"name": self.name, "revision": self.revision}),
            "finetuned": self.info.get("key"),
            "backend": self.backend.name,
            **({"anchor_words": self.anchor_words} if self.anchor_words else {}),
        }

    @property
    def model(self) -> Any:
        """The fine-tuned HF model (loaded on first use with `backend=vllm`: only the perplexity filter needs it)."""
        return self.backend.hf_model()

    # -- preparation -----------------------------------------------------------------------------

    def prepare(self, ctx: GenContext) -> None:
        source, base_id = self.base_model(ctx)
        finetune = {
            k: v for k, v in self.finetune.items() if v is not None
        }  # unset options keep earlier keys
        key = content_key(
            {
                "base": base_id,
                "train_blocks": self.train_blocks,
                "finetune": finetune,
                "pretrain_corpus": self._corpus_id(),
                "pretrain_steps": self.pretrain_steps,
                "format": ctx.strategy.finetune_format(),
                "labels": ctx.label_names,
                "seed_data": ctx.seed_fingerprint,
                "guidance": ctx.guidance_fingerprint
                if ctx.strategy.finetune_format()["n_keywords"]
                or ctx.strategy.finetune_format()["n_exemplars"]
                else None,
                "seed": ctx.seed,
                **({"attributes": ctx.attributes.to_dict()} if ctx.attributes else {}),  # off: key unchanged
            }
        )
        out = Path(ctx.cache_dir) / "generators" / key
        self.info = {"base": base_id, "key": key, "path": str(out)}
        with entry_lock(out):  # parallel jobs: one fine-tunes, the others load it
            if not is_sound(out, "fine-tuned generator"):
                one_time_cost(
                    f"label fine-tuning the {self.kind} generator on the seed",
                    f"at most {self.finetune.get('epochs')} epochs over {len(ctx.seed_texts)} posts "
                    "(early stopping)",
                    out,
                )
                self._finetune(source, ctx, out)
        self.backend.seed = ctx.seed
        self._load(out)
        tok = self.tokenizer
        ids = {
            tok.eos_token_id,
            tok.pad_token_id,
            *tok.convert_tokens_to_ids(special_tokens(ctx.label_names, markers(ctx))),
        }
        self._stop = sorted(i for i in ids if i is not None)
        self.info["finetune"] = read_json(out / "meta.json")

    def _corpus_id(self) -> str | None:
        if not self.pretrain_corpus:
            return None
        return file_fingerprint(self.pretrain_corpus)

    def _load(self, path: Path) -> None:
        from transformers import AutoConfig, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.config = AutoConfig.from_pretrained(path)
        self.backend.attach(path)

    def _load_base(self, source: str) -> tuple[Any, Any]:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        kw = {"revision": self.revision, "trust_remote_code": self.trust_remote_code}
        tok = AutoTokenizer.from_pretrained(source, **kw)
        model = AutoModelForCausalLM.from_pretrained(source, **kw)
        if tok.pad_token_id is None:  # GPT-2 has no pad token; padding is masked out anyway
            tok.pad_token = tok.eos_token
        return tok, model

    def _finetune(self, source: str, ctx: GenContext, out: Path) -> None:
        from sentisynth.generation.lm_finetune import fit_causal_lm, freeze_blocks

        t0 = time.perf_counter()
        tok, model = self._load_base(source)
        tok.add_tokens(special_tokens(ctx.label_names, markers(ctx)), special_tokens=True)
        model.resize_token_embeddings(len(tok))
        summary: dict[str, Any] = {}
        if self.pretrain_corpus:
            summary["domain_pretrain"] = self._domain_pretrain(model, tok, ctx)
        max_len = getattr(model.config, "n_positions", None) or getattr(
            model.config, "max_position_embeddings", 1024
        )
        rows = self.training_rows(tok, ctx, max_len)
        rng = np.random.default_rng(ctx.seed)
        order = rng.permutation(len(rows))
        n_val = max(1, int(len(rows) * self.finetune["val_fraction"]))
        val = [rows[i] for i in order[:n_val]]
        train = [rows[i] for i in order[n_val:]]
        n_trainable = freeze_blocks(model, self.train_blocks)
        ft = self.finetune
        log.info(
            "label fine-tuning %s (%d trainable params) on %d seed posts", self.name, n_trainable, len(train)
        )
        summary.update(
            fit_causal_lm(
                model,
                train,
                val,
                tok.pad_token_id,
                trainer_cfg=ctx.trainer_cfg,
                batch_size=ft["batch_size"],
                lr=ft["lr"],
                weight_decay=ft["weight_decay"],
                max_epochs=ft["epochs"],
                max_steps=int(ft.get("max_steps") or -1),
                patience=ft["patience"],
                warmup_steps=ft["warmup_steps"],
                seed=ctx.seed,
            )
        )
        for p in model.parameters():
            p.requires_grad_(True)
        meta = {
            **summary,
            "n_train": len(train),
            "n_val": len(val),
            "trainable_params": n_trainable,
            "seconds": time.perf_counter() - t0,
            "base": self.info["base"],
        }

        def write(tmp: Path) -> None:
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            write_json(tmp / "meta.json", meta)

        publish_dir(out, write)

    def _domain_pretrain(self, model: Any, tok: Any, ctx: GenContext) -> dict:
        """Optional continued pretraining on unlabelled in-domain text before label fine-tuning."""
        from sentisynth.data import read_corpus
        from sentisynth.generation.lm_finetune import fit_causal_lm
        from sentisynth.generation.tiny import pack_blocks

        lines = read_corpus(self.pretrain_corpus)
        rng = np.random.default_rng(ctx.seed)
        lines = [lines[i] for i in rng.permutation(len(lines))[: self.pretrain_steps * 16 * 4]]
        n_val = max(1, len(lines) // 100)
        enc = lambda xs: tok(xs, add_special_tokens=False)["input_ids"]  # noqa: E731
        width = min(
            128,
            getattr(model.config, "n_positions", None)
            or getattr(model.config, "max_position_embeddings", 128),
        )
        train = pack_blocks(enc(lines[n_val:]), tok.eos_token_id, width)
        val = pack_blocks(enc(lines[:n_val]), tok.eos_token_id, width) or train[:1]
        return fit_causal_lm(
            model,
            train,
            val,
            tok.pad_token_id,
            trainer_cfg=ctx.trainer_cfg,
            batch_size=16,
            lr=self.finetune["lr"],
            max_epochs=-1,
            max_steps=self.pretrain_steps,
            patience=0,
            seed=ctx.seed,
        )

    def training_rows(self, tok: Any, ctx: GenContext, max_len: int = 1024) -> list[tuple[list[int], int]]:
        """Each seed post as (prefix + post + EOS token ids, prefix length): loss on the post only."""
        s = ctx.strategy
        rng = np.random.default_rng(ctx.seed + 1)
        rows = []
        for text, label, idx in zip(ctx.seed_texts, ctx.seed_labels.tolist(), ctx.seed_index.tolist()):
            name = ctx.label_names[label]
            keywords = None
            if s.keyword_conditioning:
                terms, _ = class_keywords(ctx.guidance, name, s.keyword_pool)
                keywords = keywords_in_text(text, terms, s.n_keywords)
            exemplars = [
                t for t, _ in sample_exemplars(rng, class_exemplars(ctx.guidance, name), s.n_exemplars, idx)
            ]
            attrs = attribute_tokens(post_attributes(text, ctx.attributes))
            prefix = tok(
                conditioning_prefix(name, keywords, exemplars, s.max_exemplar_words, attrs),
                add_special_tokens=False,
            )["input_ids"]
            body = tok(text, add_special_tokens=False)["input_ids"]
            ids = (prefix + body + [tok.eos_token_id])[:max_len]
            rows.append((ids, len(prefix)))
        return rows

    # -- generation ------------------------------------------------------------------------------

    def make_requests(self, ctx: GenContext, label: int, n: int, rng: np.random.Generator) -> list[Request]:
        s = ctx.strategy
        name = ctx.label_names[label]
        terms, weights = class_keywords(ctx.guidance, name, s.keyword_pool)
        exemplars = class_exemplars(ctx.guidance, name)
        out = []
        for _ in range(n):
            kws = sample_keywords(rng, terms, weights, s.n_keywords) if s.keyword_conditioning else None
            exs = sample_exemplars(rng, exemplars, s.n_exemplars)
            attrs = draw_attributes(
                rng, ctx.attributes
            )  # after the others: off leaves the rng stream as it was
            exs_text = [t for t, _ in exs]
            prompt = conditioning_prefix(name, kws, exs_text, s.max_exemplar_words, attribute_tokens(attrs))
            ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
            req = Request(label, name, prompt, ids, list(kws or []), [i for _, i in exs], attributes=attrs)
            out.append(self.anchor(req, ctx, rng) if self.anchor_words else req)
        return out

    def anchor(self, req: Request, ctx: GenContext, rng: np.random.Generator) -> Request:
        """Seed-anchored generation: the post opens with the first `anchor_words` words (at most half) of a
        random seed post of the class and the model writes the rest. A 3.4M-parameter LM follows its label
        token weakly; a real opening carries the class (and real phrasing) into the continuation. The dedup
        filter (bigram Jaccard against the seed) drops continuations that echo the anchoring post."""
        pool = np.flatnonzero(np.asarray(ctx.seed_labels) == req.label)
        if pool.size == 0:
            return req
        j = int(pool[rng.integers(pool.size)])
        words = ctx.seed_texts[j].split()
        opening = " ".join(words[: min(self.anchor_words, max(1, len(words) // 2))])
        body = self.tokenizer(opening, add_special_tokens=False)["input_ids"]
        return dataclasses.replace(
            req,
            prompt=f"{req.prompt} {opening}",
            prompt_ids=req.prompt_ids + body,
            n_anchor=len(body),
            anchor_index=int(ctx.seed_index[j]),
        )

    def bias_ids(self, ctx: GenContext, label: int) -> list[int]:
        """`shap_bias`: first tokens of the class's top keywords (the backend adds `guidance.bias` to them)."""
        return bias_token_ids(self.tokenizer, ctx, label)

    def stop_ids(self) -> list[int]:
        """EOS, padding and our own markers: a post ends where any of them appears."""
        return self._stop

    def run_batch(
        self, ctx: GenContext, requests: Sequence[Request], seeds: Sequence[int]
    ) -> tuple[list[list[str]], int]:
        """Generate for a batch of requests of one class, one seed each; returns cleaned posts per request
        and the new-token count."""
        params = self.sampling
        limit = getattr(self.config, "n_positions", None) or getattr(
            self.config, "max_position_embeddings", None
        )
        longest = max(len(r.prompt_ids) for r in requests)
        if limit and longest + params.max_new_tokens > limit:  # stay inside the position embeddings
            if longest >= limit - 4:
                raise ValueError(
                    f"conditioning prefix of {longest} tokens leaves no room in the model's {limit} "
                    "positions; lower guidance.n_exemplars or guidance.max_exemplar_words"
                )
            params = dataclasses.replace(params, max_new_tokens=limit - longest)
        rows = self.backend.sample(
            [r.prompt_ids for r in requests],
            params,
            seeds,
            self.tokenizer.pad_token_id,
            self.stop_ids(),
            self.bias_ids(ctx, requests[0].label),
            ctx.strategy.bias,
        )
        texts = [self.decode(req, row) for req, row in zip(requests, rows)]
        return [[t] if t else [] for t in texts], sum(len(r) for r in rows)

    def decode(self, req: Request, row: Sequence[int]) -> str:
        """The post: new tokens, after the anchoring opening when there is one (decoded together, so a
        continuation that starts mid-word joins it). An anchored request that wrote nothing gives no post."""
        new = clean_text(self.tokenizer.decode(row, skip_special_tokens=True))
        if not req.n_anchor or not new:
            return new
        opening = list(req.prompt_ids[-req.n_anchor :])
        return clean_text(self.tokenizer.decode(opening + list(row), skip_special_tokens=True))

    def lm_scorer(self, texts: Sequence[str]) -> np.ndarray:
        return per_text_perplexity(self.model, self.tokenizer, list(texts))


class CorpusModelGenerator(LabelLMGenerator):
    """A base model pretrained here on the unlabelled corpus (cached under `cache_dir/<kind>/<key>`), then
    label-tuned like a Hub model. Subclasses say how to pretrain it (`pretrained`)."""

    kind = "corpus_model"

    def __init__(self, corpus: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("name", self.kind)
        super().__init__(**kwargs)
        self.corpus = corpus

    def pretrained(self, ctx: GenContext) -> Path:
        """The pretrained model's directory, `cache_dir/<kind>/<key>`: its name is the base model's revision."""
        raise NotImplementedError

    def base_model(self, ctx: GenContext) -> tuple[str, dict]:
        if not self.corpus:
            raise FileNotFoundError(
                f"{self.kind} generator: generator.corpus is not set (path to the unlabelled corpus)"
            )
        path = self.pretrained(ctx)
        return str(path), {"name": self.kind, "revision": path.name}


class TinyGenerator(CorpusModelGenerator):
    """`tiny`: the base model is pretrained here (cached by config + corpus fingerprint), then label-tuned."""

    kind = "tiny"

    def __init__(self, corpus: str | None = None, pretrain: dict | None = None, **kwargs: Any) -> None:
        super().__init__(corpus=corpus, **kwargs)
        self.pretrain = dict(pretrain) if pretrain else {}

    def pretrained(self, ctx: GenContext) -> Path:
        from sentisynth.generation.tiny import TinyConfig, pretrain_tiny

        return pretrain_tiny(TinyConfig(**self.pretrain), self.corpus, ctx.cache_dir, ctx.trainer_cfg)


class MiniLMDecoderGenerator(CorpusModelGenerator):
    """`minilm_decoder`: the offline MiniLM-L6 encoder warm-started as a causal decoder, trained on the corpus
    (cached by config + corpus + source weights; `generation.bert_decoder`), then label-tuned like `tiny`."""

    kind = "minilm_decoder"

    def __init__(
        self, corpus: str | None = None, decoder: dict | None = None, pretrain: None = None, **kwargs: Any
    ) -> None:
        if pretrain:
            raise ValueError(
                "generator=minilm_decoder is configured under generator.decoder, not generator.pretrain"
            )
        if kwargs.get("backend", "hf") == "vllm":
            raise ValueError(
                "generator=minilm_decoder: vLLM has no causal BERT (BertLMHeadModel) model; use generator.backend=hf"
            )
        super().__init__(corpus=corpus, **kwargs)
        self.decoder = dict(decoder) if decoder else {}

    def pretrained(self, ctx: GenContext) -> Path:
        from sentisynth.generation.bert_decoder import DecoderConfig, pretrain_decoder

        return pretrain_decoder(DecoderConfig(**self.decoder), self.corpus, ctx.cache_dir, ctx.trainer_cfg)

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "detokenizer": "wordpiece_tweet_v1"}

    def decode(self, req: Request, row: Sequence[int]) -> str:
        """The post as `tiny` decodes it, with WordPiece's spacing undone (`bert_decoder.detokenize`)."""
        from sentisynth.generation.bert_decoder import detokenize

        return detokenize(super().decode(req, row))
