"""The offline `tiny` generator: a GPT-2-shaped model and BPE tokenizer trained from scratch on the
unlabelled tweet corpus, cached on disk keyed by its config and the corpus fingerprint.

Default size (~3.4M parameters, ~2.0M training tokens) pretrains in well under 20 minutes on 2 CPU
cores (about 3,700 tokens/s); the result is a normal `from_pretrained` directory that the label
fine-tuning of `LabelLMGenerator` loads like any Hub model.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from sentisynth.cache import is_sound, one_time_cost, publish_dir, refuse_if_cached_only
from sentisynth.data import read_corpus
from sentisynth.utils import content_key, entry_lock, file_fingerprint, is_rank_zero, write_json

log = logging.getLogger(__name__)


@dataclass
class TinyConfig:
    """Everything that changes the pretrained weights (and so the cache key)."""

    vocab_size: int = 8000
    n_embd: int = 192
    n_layer: int = 4
    n_head: int = 6  # head size 32: vLLM's CPU attention kernels have no 48 (192/4); same parameter count
    n_positions: int = 128
    seq_len: int = 128
    batch_size: int = 16
    max_steps: int = 1000
    lr: float = 1e-3
    warmup_steps: int = 100
    weight_decay: float = 0.01
    val_fraction: float = 0.01
    max_lines: int | None = None  # use only the first N corpus lines (tests)
    val_every: int = 250
    seed: int = 0
    ckpt_every: int = 50  # steps between resumable checkpoints; not in the cache key (same weights)


def cache_key(cfg: TinyConfig, corpus_fp: str) -> str:
    config = {k: v for k, v in asdict(cfg).items() if k != "ckpt_every"}
    return content_key({"config": config, "corpus": corpus_fp})


def pack_blocks(ids_per_line: list[list[int]], eos_id: int, seq_len: int) -> list[tuple[list[int], int]]:
    """Concatenate lines separated by EOS and cut into fixed-length blocks (no padding waste)."""
    flat: list[int] = []
    for ids in ids_per_line:
        flat.extend(ids)
        flat.append(eos_id)
    return [(flat[i : i + seq_len], 0) for i in range(0, len(flat) - seq_len + 1, seq_len)]


def split_corpus(lines: list[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Seeded shuffle, then (train lines, at least one validation line)."""
    order = list(range(len(lines)))
    random.Random(seed).shuffle(order)
    n_val = max(1, int(len(lines) * val_fraction))
    return [lines[i] for i in order[n_val:]], [lines[i] for i in order[:n_val]]


def save_model(model: Any, tok: Any, meta: dict, final: Path) -> None:
    """Save model, tokenizer and meta.json to a temp dir, seal it (content hashes) and rename it to `final`
    (atomic: a concurrent run that finished first wins; under DDP rank 0 writes); the resumable work dir goes."""

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        write_json(tmp / "meta.json", meta)

    publish_dir(final, write, {"n_params": meta.get("n_params"), "steps": meta.get("steps")})
    if is_rank_zero():
        shutil.rmtree(final.parent / f".{final.name}.work", ignore_errors=True)


def pretrain_tiny(
    cfg: TinyConfig, corpus: str | os.PathLike, cache_dir: str | os.PathLike, trainer_cfg: Any = None
) -> Path:
    """Return the cached pretrained model directory, training it first if it is not cached yet."""
    corpus_fp = file_fingerprint(corpus)
    return cached_pretraining(
        "tiny",
        cache_key(cfg, corpus_fp),
        cache_dir,
        lambda final: _pretrain(cfg, corpus, corpus_fp, final, trainer_cfg),
    )


def cached_pretraining(
    kind: str, key: str, cache_dir: str | os.PathLike, build: Callable[[Path], None]
) -> Path:
    """`cache_dir/<kind>/<key>`, built by `build(final)` unless a sound entry is there. Every model pretrained
    here (tiny, minilm_decoder) shares this: parallel jobs wait on the lock and reuse what the first built."""
    final = Path(cache_dir) / kind / key
    with entry_lock(final):
        if is_sound(final, f"{kind} generator"):
            log.info("%s generator: reusing pretrained model %s", kind, final)
        else:
            refuse_if_cached_only(f"the {kind} generator's pretrained model")
            build(final)
    return final


def _new_model(cfg: TinyConfig, tok: Any) -> Any:
    """A randomly initialised GPT-2 of the config's shape over the trained tokenizer (seeded)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(cfg.seed)
    shape = GPT2Config(
        vocab_size=len(tok),
        n_positions=cfg.n_positions,
        n_embd=cfg.n_embd,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    return GPT2LMHeadModel(shape)


def _meta(
    cfg: TinyConfig,
    corpus: Any,
    corpus_fp: str,
    key: str,
    n_params: int,
    summary: dict,
    resumed_from: int,
    train_s: float,
) -> dict[str, Any]:
    """What the cache entry records about its training (meta.json)."""
    tokens_per_step = cfg.batch_size * cfg.seq_len
    return {
        "config": asdict(cfg),
        "corpus": str(corpus),
        "corpus_fingerprint": corpus_fp,
        "key": key,
        "n_params": n_params,
        "tokens_seen": summary["steps"] * tokens_per_step,
        "steps": summary["steps"],
        "val_ppl_history": summary["val_ppl_history"],
        "train_s": train_s,
        # a resumed run trained only the steps after its checkpoint: throughput and time cover those
        "resumed_from_step": resumed_from,
        "tokens_per_s": (summary["steps"] - resumed_from) * tokens_per_step / max(train_s, 1e-9),
        "torch_threads": torch.get_num_threads(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _pretrain(
    cfg: TinyConfig, corpus: str | os.PathLike, corpus_fp: str, final: Path, trainer_cfg: Any
) -> None:
    """Train the BPE tokenizer and the model from scratch; publish them under `final`."""
    from sentisynth.generation.tokenizer import train_bpe_tokenizer

    t0 = time.perf_counter()
    train_lines, val_lines = split_corpus(read_corpus(corpus, cfg.max_lines), cfg.val_fraction, cfg.seed)
    tok = train_bpe_tokenizer(train_lines, vocab_size=cfg.vocab_size)
    extra = {"tokenizer_s": time.perf_counter() - t0}
    pretrain_causal(
        _new_model(cfg, tok),
        tok,
        train_lines,
        val_lines,
        cfg,
        corpus,
        corpus_fp,
        final,
        trainer_cfg,
        extra,
        t0,
    )


def pretrain_causal(
    model: Any,
    tok: Any,
    train_lines: list[str],
    val_lines: list[str],
    cfg: Any,
    corpus: str | os.PathLike,
    corpus_fp: str,
    final: Path,
    trainer_cfg: Any,
    extra: dict[str, Any],
    t0: float,
) -> None:
    """Train `model` causally on the corpus lines packed into `cfg.seq_len` blocks (resumable from the work
    dir's checkpoint), then publish model, tokenizer and meta.json under `final`. `cfg` is a `TinyConfig` or
    any dataclass with its training fields (`bert_decoder.DecoderConfig`)."""
    from sentisynth.generation.lm_finetune import perplexity

    key = final.name
    enc = lambda xs: tok(xs, add_special_tokens=False)["input_ids"]  # noqa: E731
    train_rows = pack_blocks(enc(train_lines), tok.eos_token_id, cfg.seq_len)
    val_rows = pack_blocks(enc(val_lines), tok.eos_token_id, cfg.seq_len)
    n_corpus_tokens = len(train_rows) * cfg.seq_len
    n_params = sum(p.numel() for p in model.parameters())
    msg = "%s: pretraining %.2fM params on %d blocks of %d tokens (%d steps) -> %s"
    log.info(msg, final.parent.name, n_params / 1e6, len(train_rows), cfg.seq_len, cfg.max_steps, final)
    resumed_from = _checkpoint_step(final.parent / f".{key}.work" / "last.ckpt")
    announce_pretraining(model, train_rows, cfg, resumed_from, final)
    t1 = time.perf_counter()
    summary = _fit_pretraining(model, tok, train_rows, val_rows, cfg, final, trainer_cfg)
    train_s = time.perf_counter() - t1
    val_ppl = perplexity(model, val_rows, tok.pad_token_id)
    meta = {
        **_meta(cfg, corpus, corpus_fp, key, n_params, summary, resumed_from, train_s),
        **extra,
        "n_train_lines": len(train_lines),
        "n_val_lines": len(val_lines),
        "corpus_train_tokens": n_corpus_tokens,
        "val_ppl": val_ppl,
        # per whitespace word: comparable across tokenizers (BPE vs WordPiece), unlike per-token perplexity
        "val_word_ppl": word_perplexity(model, tok, val_lines),
        "total_s": time.perf_counter() - t0,
    }
    save_model(model, tok, meta, final)
    log.info("%s: pretrained in %.0fs, val perplexity %.1f", final.parent.name, meta["total_s"], val_ppl)


def step_seconds(model: Any, rows: list, batch_size: int, n: int = 2) -> float:
    """Seconds per training step here and now: `n` forward+backward passes on one batch (grads cleared, no
    update, RNG state kept), so the one-time-cost message can give a time measured on this machine."""
    ids = torch.tensor([r[0] for r in rows[:batch_size]])
    state = torch.get_rng_state()
    model.train()
    t0 = time.perf_counter()
    for _ in range(n):
        model(input_ids=ids, labels=ids).loss.backward()
    dt = (time.perf_counter() - t0) / n
    model.zero_grad(set_to_none=True)
    torch.set_rng_state(state)
    return dt * 1.15  # the optimizer step, logging and checkpoints on top


def announce_pretraining(model: Any, rows: list, cfg: Any, resumed_from: int, final: Path) -> None:
    """The one-time-cost line: steps left x measured seconds per step."""
    left = max(int(cfg.max_steps) - resumed_from, 0)
    secs = left * step_seconds(model, rows, cfg.batch_size) if rows else 0.0
    resumed = f", resuming at step {resumed_from}" if resumed_from else ""
    one_time_cost(
        f"pretraining the {final.parent.name} generator ({left} of {cfg.max_steps} steps{resumed}, "
        f"checkpointed every {ckpt_every(cfg)} steps: Ctrl-C and rerun resumes)",
        f"about {secs / 60:.1f} min here at {secs / max(left, 1):.2f} s/step measured now",
        final,
    )


def ckpt_every(cfg: Any) -> int:
    """Steps between resumable checkpoints (`pretrain.ckpt_every`; 50 when the config has none)."""
    return max(1, int(getattr(cfg, "ckpt_every", 50) or 50))


def _fit_pretraining(
    model: Any, tok: Any, train_rows: list, val_rows: list, cfg: Any, final: Path, trainer_cfg: Any
) -> dict[str, Any]:
    """The pretraining run: a fixed step budget, no early stopping, a resumable checkpoint every
    `ckpt_every` steps (not in the cache key: it does not change the weights)."""
    from sentisynth.generation.lm_finetune import fit_causal_lm

    return fit_causal_lm(
        model,
        train_rows,
        val_rows,
        tok.pad_token_id,
        trainer_cfg=trainer_cfg,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        max_epochs=-1,
        max_steps=cfg.max_steps,
        patience=0,
        warmup_steps=cfg.warmup_steps,
        seed=cfg.seed,
        val_check_interval=min(cfg.val_every, cfg.max_steps),
        ckpt_dir=str(final.parent / f".{final.name}.work"),
        ckpt_every=ckpt_every(cfg),
        log_every=25,
        log_as="generator_pretrain",
    )


@torch.no_grad()
def word_perplexity(model: Any, tok: Any, lines: list[str], batch_size: int = 64) -> float:
    """exp(total NLL of the lines' tokens and their end-of-post token / number of words + posts): a
    per-word perplexity, so models with different tokenizers can be compared on the same held-out posts.
    Each line is scored on its own after an end-of-post token (as it follows one in the packed rows)."""
    from torch.utils.data import DataLoader

    from sentisynth.generation.lm_finetune import TokenRows, make_collate

    model.eval()
    eos = tok.eos_token_id
    rows = [([eos] + ids[:126] + [eos], 1) for ids in tok(lines, add_special_tokens=False)["input_ids"]]
    total = 0.0
    device = next(model.parameters()).device
    for batch in DataLoader(
        TokenRows(rows), batch_size=batch_size, collate_fn=make_collate(tok.pad_token_id)
    ):
        batch = {k: v.to(device) for k, v in batch.items()}
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
        labels = batch["labels"][:, 1:]
        nll = torch.nn.functional.cross_entropy(
            logits[:, :-1].transpose(1, 2), labels, reduction="sum", ignore_index=-100
        )
        total += float(nll)
    n_words = sum(len(s.split()) + 1 for s in lines)
    return float(torch.exp(torch.tensor(total / max(n_words, 1))))


def _checkpoint_step(path: Path) -> int:
    """Global step stored in a Lightning checkpoint (0 when there is none, or it is damaged: a fresh run).

    Loaded with `weights_only=True`: a checkpoint in a shared cache must not be able to run code."""
    if not path.is_file():
        return 0
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True).get("global_step", 0))
    except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is restarted, never trusted
        log.warning(
            "damaged cache: pretraining checkpoint %s (%s: %s); restarting pretraining",
            path,
            type(e).__name__,
            str(e).splitlines()[0] if str(e) else "",
        )
        path.unlink()
        return 0


def main() -> None:
    """`python -m sentisynth.generation.tiny CORPUS CACHE_DIR [key=value ...]`: pretrain (or report) the cache."""
    import sys

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    corpus, cache_dir, *overrides = sys.argv[1:]
    cfg = TinyConfig()
    for kv in overrides:
        k, v = kv.split("=", 1)
        setattr(cfg, k, type(getattr(cfg, k) if getattr(cfg, k) is not None else 0)(v))
    path = pretrain_tiny(cfg, corpus, cache_dir)
    print(
        json.dumps(
            {k: v for k, v in json.loads((path / "meta.json").read_text()).items() if k != "config"}, indent=1
        )
    )


if __name__ == "__main__":
    main()
