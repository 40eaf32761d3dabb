"""`lora_llm`: an instruction-tuned causal LM prompted with templates (guidance in the prompt), with
optional LoRA fine-tuning (peft) on the seed as instruction -> post pairs."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sentisynth.cache import is_sound, publish_dir
from sentisynth.filters.perplexity import per_text_perplexity
from sentisynth.generation.backends import Backend
from sentisynth.generation.base import GenContext, Request, bias_token_ids, guided_instruction, pick_device
from sentisynth.generation.prompts import (
    class_exemplars,
    class_keywords,
    keywords_in_text,
    parse_posts,
    render_instruction,
    sample_exemplars,
)
from sentisynth.generation.sampling import SamplingParams
from sentisynth.utils import content_key, entry_lock, read_json, write_json

log = logging.getLogger(__name__)

DEFAULT_LORA = {
    "enabled": False,
    "r": 8,
    "alpha": 16,
    "dropout": 0.05,
    "target_modules": "all-linear",
    "epochs": 2,
    "batch_size": 8,
    "lr": 2e-4,
    "patience": 1,
    "val_fraction": 0.1,
}


class InstructGenerator:
    """Chat-template prompting of an instruction LM; each completion may hold several posts."""

    kind = "lora_llm"
    reads_instruction = True  # the strategy instruction is the prompt

    def __init__(
        self,
        name: str = "Qwen/Qwen2.5-0.5B-Instruct",
        revision: str | None = None,
        system_prompt: str = "You write realistic social media posts.",
        posts_per_prompt: int = 5,
        lora: dict | None = None,
        sampling: dict | None = None,
        budget: dict | None = None,
        batch_size: int = 16,
        device: str = "auto",
        dtype: str = "auto",
        trust_remote_code: bool = False,
        backend: str = "hf",
        vllm: dict | None = None,
        workers: int = 1,
        **extra: Any,
    ) -> None:
        self.name, self.revision = str(name), revision
        self.system_prompt, self.posts_per_prompt = system_prompt, int(posts_per_prompt)
        self.lora = {**DEFAULT_LORA, **(dict(lora) if lora else {})}
        self.sampling = SamplingParams(**(dict(sampling) if sampling else {}))
        self.budget = dict(budget) if budget else {}
        self.batch_size = int(batch_size)
        self.device = pick_device(device)
        self.dtype, self.trust_remote_code = dtype, bool(trust_remote_code)
        self.backend = Backend(backend, self.device, dict(vllm) if vllm else None)
        self.workers = int(workers)
        self.tokenizer: Any = None
        self.info: dict[str, Any] = {}

    def identity(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "revision": self.revision,
            "adapter": self.info.get("adapter_key"),
            "system_prompt": self.system_prompt,
            "posts_per_prompt": self.posts_per_prompt,
            "backend": self.backend.name,
        }

    # -- preparation -----------------------------------------------------------------------------

    def prepare(self, ctx: GenContext) -> None:
        from transformers import AutoTokenizer

        kw = {"revision": self.revision, "trust_remote_code": self.trust_remote_code}
        self.tokenizer = AutoTokenizer.from_pretrained(self.name, **kw)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if getattr(self.tokenizer, "chat_template", None) is None:
            raise ValueError(
                f"lora_llm: tokenizer of {self.name!r} has no chat template; use an instruction model"
            )
        adapter, model = self._adapter(ctx) if self.lora["enabled"] else (None, None)
        self.backend.seed = ctx.seed
        self.backend.attach(self.name, adapter, int(self.lora["r"]), model, dtype=self.dtype, **kw)

    @property
    def model(self) -> Any:
        """The HF model (+ adapter), loaded on first use: with `backend=vllm` only the perplexity filter needs it."""
        return self.backend.hf_model()

    def _adapter(self, ctx: GenContext) -> tuple[Path, Any]:
        """The cached LoRA adapter directory, trained first if missing (then also the trained model)."""
        key = content_key(
            {
                "base": [self.name, self.revision],
                "lora": self.lora,
                "system": self.system_prompt,
                "instruction": ctx.strategy.instruction,
                "format": ctx.strategy.finetune_format(),
                "seed_data": ctx.seed_fingerprint,
                "guidance": ctx.guidance_fingerprint,
                "seed": ctx.seed,
            }
        )
        out = Path(ctx.cache_dir) / "adapters" / key
        self.info["adapter_key"] = key
        model = None
        with entry_lock(out):  # parallel jobs: one trains the adapter, the others load it
            if not is_sound(out, "LoRA adapter"):
                model = self._train_adapter(ctx, out)
        self.info["adapter"] = read_json(out / "meta.json")
        return out, model

    def _train_adapter(self, ctx: GenContext, out: Path) -> Any:
        """Fine-tune a LoRA adapter on the seed set and publish it to `out` (under DDP rank 0 writes)."""
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM

        from sentisynth.generation.lm_finetune import fit_causal_lm

        t0 = time.perf_counter()
        base = AutoModelForCausalLM.from_pretrained(
            self.name, dtype=self.dtype, revision=self.revision, trust_remote_code=self.trust_remote_code
        )
        cfg = LoraConfig(
            r=self.lora["r"],
            lora_alpha=self.lora["alpha"],
            lora_dropout=self.lora["dropout"],
            target_modules=self.lora["target_modules"],
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(base, cfg)
        rows = self.training_rows(ctx)
        order = np.random.default_rng(ctx.seed).permutation(len(rows))
        n_val = max(1, int(len(rows) * self.lora["val_fraction"]))
        summary = fit_causal_lm(
            model,
            [rows[i] for i in order[n_val:]],
            [rows[i] for i in order[:n_val]],
            self.tokenizer.pad_token_id,
            trainer_cfg=ctx.trainer_cfg,
            batch_size=self.lora["batch_size"],
            lr=self.lora["lr"],
            max_epochs=self.lora["epochs"],
            patience=self.lora["patience"],
            seed=ctx.seed,
        )
        meta = {**summary, "n_rows": len(rows), "seconds": time.perf_counter() - t0}

        def write(tmp: Path) -> None:
            model.save_pretrained(tmp)  # the adapter only (best weights by validation perplexity)
            write_json(tmp / "meta.json", meta)

        publish_dir(out, write)
        return model

    def messages(self, instruction: str) -> list[dict]:
        msgs = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return msgs + [{"role": "user", "content": instruction}]

    def _chat_ids(self, messages: list[dict], generation_prompt: bool) -> tuple[str, list[int]]:
        text = self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=generation_prompt
        )
        return text, self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def training_rows(self, ctx: GenContext) -> list[tuple[list[int], int]]:
        """Instruction (n=1, the keywords the post contains, sampled exemplars) -> the seed post."""
        s, rng = ctx.strategy, np.random.default_rng(ctx.seed + 1)
        rows = []
        for text, label, idx in zip(ctx.seed_texts, ctx.seed_labels.tolist(), ctx.seed_index.tolist()):
            name = ctx.label_names[label]
            terms, _ = class_keywords(ctx.guidance, name, s.keyword_pool)
            kws = keywords_in_text(text, terms, s.n_keywords) if s.keyword_conditioning else []
            exs = [
                t for t, _ in sample_exemplars(rng, class_exemplars(ctx.guidance, name), s.n_exemplars, idx)
            ]
            msgs = self.messages(render_instruction(s.instruction, name, 1, kws, exs))
            _, prefix = self._chat_ids(msgs, True)
            _, full = self._chat_ids(msgs + [{"role": "assistant", "content": f"1. {text}"}], False)
            rows.append((full[:1024], min(len(prefix), len(full) - 1)))
        return rows

    # -- generation ------------------------------------------------------------------------------

    def make_requests(self, ctx: GenContext, label: int, n: int, rng: np.random.Generator) -> list[Request]:
        """Enough prompts for `n` posts (each prompt asks for `posts_per_prompt`)."""
        out = []
        for _ in range(max(1, -(-n // self.posts_per_prompt))):
            instruction, kws, exs, attrs = guided_instruction(ctx, label, self.posts_per_prompt, rng)
            _, ids = self._chat_ids(self.messages(instruction), True)
            name = ctx.label_names[label]
            out.append(
                Request(label, name, instruction, ids, kws, exs, self.posts_per_prompt, attributes=attrs)
            )
        return out

    def run_batch(
        self, ctx: GenContext, requests: Sequence[Request], seeds: Sequence[int]
    ) -> tuple[list[list[str]], int]:
        """One completion per request (one seed each), parsed into up to `n_posts` posts."""
        stop = sorted(
            {i for i in (self.tokenizer.eos_token_id, self.tokenizer.pad_token_id) if i is not None}
        )
        rows = self.backend.sample(
            [r.prompt_ids for r in requests],
            self.sampling,
            seeds,
            self.tokenizer.pad_token_id,
            stop,
            bias_token_ids(self.tokenizer, ctx, requests[0].label),
            ctx.strategy.bias,
        )
        posts = [
            parse_posts(self.tokenizer.decode(r, skip_special_tokens=True), q.n_posts)
            for r, q in zip(rows, requests)
        ]
        return posts, sum(len(r) for r in rows)

    def lm_scorer(self, texts: Sequence[str]) -> np.ndarray:
        return per_text_perplexity(self.model, self.tokenizer, list(texts))
