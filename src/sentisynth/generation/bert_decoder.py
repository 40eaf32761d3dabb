"""The `minilm_decoder` generator base: the offline MiniLM-L6 encoder warm-started as a causal decoder.

Rothe et al. (2020, "Leveraging Pre-trained Checkpoints for Sequence Generation Tasks") warm-start decoders
from BERT checkpoints: `BertLMHeadModel` with `is_decoder=True` (causal self-attention mask), the output
projection tied to the input embeddings, the MLM-head transform newly initialised (a sentence-transformers
checkpoint has none). MiniLM-L6 (22.7M parameters, trained on a billion sentence pairs) is the only
pretrained language knowledge on an offline machine; here it is trained causally on the tweet corpus, cached
on disk like `tiny`, and then label-fine-tuned by `LabelLMGenerator` through `from_pretrained`.

Speed on 2 CPU cores: 30,522 output rows would cost more than the six layers, so the WordPiece vocabulary
is cut to the corpus's most frequent tokens plus every single-character piece the corpus uses (WordPiece's
greedy longest match then still spells any word of those characters; `vocab_size` 8,000: 14.1M parameters).
Measured here at 2 threads: about 1,100 training tokens/s with 64-token blocks (tiny: about 2,600 with 128)
and 25 samples/s for 48 new tokens in batches of 128 (tiny: 86-129).
"""

from __future__ import annotations

import collections
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sentisynth.data import read_corpus
from sentisynth.generation.tiny import cached_pretraining, pretrain_causal, split_corpus
from sentisynth.utils import content_key, file_fingerprint

log = logging.getLogger(__name__)


@dataclass
class DecoderConfig:
    """Everything that changes the warm-started decoder's weights (and so its cache key)."""

    source: str = "minilm"  # the offline MiniLM directory, or any BERT-family Hub name or local path
    vocab_size: int = 8000  # kept WordPiece tokens (specials + the corpus's character pieces + most frequent)
    num_layers: int | None = None  # keep the first k encoder layers (None: all)
    seq_len: int = (
        64  # tweets average 20 WordPiece tokens; 64-token blocks train 30% faster per token than 128
    )
    batch_size: int = 16
    max_steps: int = 1300
    lr: float = 3e-4
    warmup_steps: int = 100
    weight_decay: float = 0.01
    val_fraction: float = 0.01
    max_lines: int | None = None  # use only the first N corpus lines (tests)
    val_every: int = 250
    seed: int = 0


_HANDLE = re.compile(r"(^|\s)([@#]) (?=\w)")
_CLITIC = re.compile(r"(\w) ' (?=(?:s|m|t|re|ve|ll|d)\b)")
_PUNCT = re.compile(r" ([.,!?;:])")


def detokenize(text: str) -> str:
    """Undo WordPiece's spacing in decoded text: `@ user` -> `@user`, `# sad` -> `#sad`, `i ' m` -> `i'm`,
    `yes !` -> `yes!`. Without it the tweet tokenizer (TF-IDF, keywords, text measures) would read the
    decoder's hashtags as plain words and its mentions as the word `user`, unlike every real post."""
    return _PUNCT.sub(r"\1", _CLITIC.sub(r"\1'", _HANDLE.sub(r"\1\2", text)))


def source_id(source: str) -> dict[str, Any]:
    """What identifies the warm-start weights: a local directory by its weights' hash, a Hub name by name."""
    from sentisynth.classifiers.transformer import resolve_model_path

    path = Path(resolve_model_path(source))
    weights = [p for p in (path / "model.safetensors", path / "pytorch_model.bin") if p.is_file()]
    return {"source": source, "weights": file_fingerprint(weights[0]) if weights else None}


def cache_key(cfg: DecoderConfig, corpus_fp: str) -> str:
    from dataclasses import asdict

    return content_key({"config": asdict(cfg), "corpus": corpus_fp, "base": source_id(cfg.source)})


def kept_token_ids(tok: Any, lines: list[str], size: int) -> list[int]:
    """Old ids to keep, ascending: the special tokens, both character pieces (`x` and `##x`) of every
    character the corpus's pieces contain, then the corpus's most frequent other tokens, up to `size`
    (fewer when the corpus uses fewer). With every character piece kept, WordPiece's greedy longest match
    still spells any word of the corpus's characters: a cut vocabulary gives longer spellings, not [UNK]."""
    counts = collections.Counter(i for ids in tok(lines, add_special_tokens=False)["input_ids"] for i in ids)
    chars = {c for piece in tok.convert_ids_to_tokens(list(counts)) for c in piece.removeprefix("##")}
    vocab = tok.get_vocab()
    keep = set(tok.all_special_ids) | {vocab[p] for c in chars for p in (c, f"##{c}") if p in vocab}
    if len(keep) > size:
        raise ValueError(
            f"minilm_decoder: vocab_size {size} is below the {len(keep)} special and character tokens the "
            "corpus needs; raise generator.decoder.vocab_size"
        )
    for i, _ in counts.most_common():
        if len(keep) >= size:
            break
        keep.add(i)
    return sorted(keep)


def cut_tokenizer(tok: Any, keep: list[int]) -> Any:
    """A WordPiece tokenizer over the kept tokens only, with the source's normalisation (lower-casing,
    accents, CJK). `[SEP]` ends a post and also opens one (bos = eos, as in the packed pretraining rows)."""
    pieces = tok.convert_ids_to_tokens(keep)
    kw = {
        k: tok.init_kwargs[k]
        for k in ("do_lower_case", "tokenize_chinese_chars", "strip_accents")
        if k in tok.init_kwargs
    }
    new = type(tok)(vocab={p: i for i, p in enumerate(pieces)}, model_max_length=tok.model_max_length, **kw)
    new.bos_token = new.eos_token = new.sep_token
    return new


def warm_decoder(cfg: DecoderConfig, keep: list[int]) -> Any:
    """`BertLMHeadModel(is_decoder=True)` from the source weights, cut to `num_layers` layers and to the
    kept vocabulary rows; the output projection is tied to the (cut) input embeddings."""
    from transformers import BertLMHeadModel
    from transformers.utils import logging as hf_logging

    from sentisynth.classifiers.transformer import resolve_model_path

    torch.manual_seed(cfg.seed)  # the MLM-head transform is newly initialised
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # its load report lists the (expected) missing MLM head as an error
    try:
        model = BertLMHeadModel.from_pretrained(resolve_model_path(cfg.source), is_decoder=True)
    finally:
        hf_logging.set_verbosity(level)
    if cfg.num_layers:
        model.bert.encoder.layer = model.bert.encoder.layer[: cfg.num_layers]
        model.config.num_hidden_layers = cfg.num_layers
    old = model.get_input_embeddings().weight.data
    emb = torch.nn.Embedding(len(keep), old.shape[1], padding_idx=0)
    emb.weight.data = old[torch.as_tensor(keep)].clone()
    model.set_input_embeddings(emb)
    head = model.cls.predictions
    head.decoder = torch.nn.Linear(old.shape[1], len(keep))
    head.decoder.bias.data.zero_()
    head.bias = head.decoder.bias
    model.config.vocab_size = len(keep)
    model.config.tie_word_embeddings = True
    model.tie_weights()
    return model


def pretrain_decoder(
    cfg: DecoderConfig, corpus: str | os.PathLike, cache_dir: str | os.PathLike, trainer_cfg: Any = None
) -> Path:
    """Return the cached decoder directory, building and training it first if it is not cached yet."""
    corpus_fp = file_fingerprint(corpus)
    return cached_pretraining(
        "minilm_decoder",
        cache_key(cfg, corpus_fp),
        cache_dir,
        lambda final: _build(cfg, corpus, corpus_fp, final, trainer_cfg),
    )


def _build(
    cfg: DecoderConfig, corpus: str | os.PathLike, corpus_fp: str, final: Path, trainer_cfg: Any
) -> None:
    """Cut the vocabulary, warm-start the decoder from the source weights, train it causally; publish."""
    from transformers import AutoTokenizer

    from sentisynth.classifiers.transformer import resolve_model_path

    t0 = time.perf_counter()
    train_lines, val_lines = split_corpus(read_corpus(corpus, cfg.max_lines), cfg.val_fraction, cfg.seed)
    source_tok = AutoTokenizer.from_pretrained(resolve_model_path(cfg.source))
    keep = kept_token_ids(source_tok, train_lines, cfg.vocab_size)
    tok = cut_tokenizer(source_tok, keep)
    model = warm_decoder(cfg, keep)
    extra = {"source": source_id(cfg.source), "kept_tokens": len(keep), "vocab_s": time.perf_counter() - t0}
    pretrain_causal(model, tok, train_lines, val_lines, cfg, corpus, corpus_fp, final, trainer_cfg, extra, t0)
