"""Lightning pieces behind `TransformerClassifier`: a data module and a sequence-classification module.

The module wraps any `AutoModelForSequenceClassification`. Its loss covers the three training modes
of the study in one definition (see `distillation_loss`): plain (weighted) cross-entropy, class
weights for imbalance, and SentiSynth-style distillation on synthetic rows that carry teacher soft
labels.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler
from torchmetrics.classification import MulticlassF1Score
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase, get_linear_schedule_with_warmup

from sentisynth.distributed import RankSlices, ShuffledBatches, eval_batches, loader, rank_and_world

log = logging.getLogger(__name__)


class EpochLog(pl.Callback):
    """One log line per epoch (loss, val macro-F1, seconds): readable in Hydra logs without a TTY."""

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        m = {k: float(v) for k, v in trainer.callback_metrics.items() if k in ("train_loss", "val_macro_f1")}
        log.info(
            "epoch %d/%d: %s (%.1fs)",
            trainer.current_epoch + 1,
            trainer.max_epochs,
            ", ".join(f"{k} {v:.4f}" for k, v in m.items()),
            time.perf_counter() - self._t0,
        )


def temper(probs: torch.Tensor, T: float) -> torch.Tensor:
    """Probabilities at temperature T: softmax(log p / T), i.e. p^(1/T) renormalised (T=1: unchanged)."""
    return torch.softmax(torch.log(probs.clamp_min(1e-12)) / T, dim=-1)


def distillation_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    soft: torch.Tensor | None = None,
    is_synthetic: torch.Tensor | None = None,
    sample_weight: torch.Tensor | None = None,
    class_weight: torch.Tensor | None = None,
    alpha: float = 0.5,
    T: float = 2.0,
    beta: float = 1.0,
) -> torch.Tensor:
    """Weighted mean over rows of the per-row loss.

    Real rows: l_i = cw[y_i] * CE(z_i, y_i). Synthetic rows with soft labels q_i (teacher probs):
    l_i = alpha * T^2 * KL(temper(q_i, T) || softmax(z_i / T)) + (1 - alpha) * cw[y_i] * CE(z_i, y_i).
    Row weights w_i = sample_weight_i * (beta if synthetic else 1); loss = sum(w_i l_i) / sum(w_i).
    """
    ce = F.cross_entropy(logits, labels, reduction="none")
    if class_weight is not None:
        ce = ce * class_weight[labels]
    w = torch.ones_like(ce) if sample_weight is None else sample_weight.to(ce.dtype)
    per_row = ce
    if soft is not None and is_synthetic is not None and bool(is_synthetic.any()):
        syn = is_synthetic.bool()
        q = temper(soft.to(logits.dtype), T)
        log_p = torch.log_softmax(logits / T, dim=-1)
        kl = (q * (torch.log(q.clamp_min(1e-12)) - log_p)).sum(-1) * (T * T)
        per_row = torch.where(syn, alpha * kl + (1.0 - alpha) * ce, ce)
        w = torch.where(syn, w * beta, w)
    return (w * per_row).sum() / w.sum().clamp_min(1e-12)


class EncodedTexts(Dataset):
    """Tokenised once up front (no padding); the collator pads each batch to its longest row."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        texts: Sequence[str],
        max_length: int,
        labels: np.ndarray | None = None,
        sample_weight: np.ndarray | None = None,
        soft: np.ndarray | None = None,
        is_synthetic: np.ndarray | None = None,
    ) -> None:
        enc = tokenizer(list(texts), truncation=True, max_length=max_length)
        self.input_ids = enc["input_ids"]
        self.extra: dict[str, Any] = {}
        n = len(self.input_ids)
        if labels is not None:
            self.extra["labels"] = torch.as_tensor(np.asarray(labels), dtype=torch.long)
            self.extra["sample_weight"] = torch.as_tensor(
                np.ones(n) if sample_weight is None else np.asarray(sample_weight), dtype=torch.float32
            )
            if soft is not None:
                self.extra["soft"] = torch.as_tensor(np.asarray(soft), dtype=torch.float32)
                self.extra["is_synthetic"] = torch.as_tensor(np.asarray(is_synthetic), dtype=torch.bool)

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        row: dict[str, Any] = {"input_ids": self.input_ids[i]}
        for k, v in self.extra.items():
            row[k] = v[i]
        return row


class Collator:
    """Dynamic padding for token ids; stacks the per-row tensors (labels, weights, soft labels)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self.pad = DataCollatorWithPadding(tokenizer, return_tensors="pt")

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = self.pad([{"input_ids": r["input_ids"]} for r in rows])
        for k in rows[0]:
            if k != "input_ids":
                batch[k] = torch.stack([r[k] for r in rows])
        return dict(batch)


class LengthGroupedBatches(Sampler[list[int]]):
    """Shuffled batches of similar length (HF `group_by_length` idea): less padding, faster CPU epochs.

    Each epoch: shuffle, cut into chunks of `mega` batches, sort each chunk by length, batch it, and
    shuffle the batch order. Seeded by (seed, epoch) so runs repeat exactly.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, mega: int = 50) -> None:
        self.lengths = np.asarray(lengths)
        self.batch_size, self.seed, self.mega, self.epoch = batch_size, seed, mega, 0

    def __len__(self) -> int:
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        order = rng.permutation(len(self.lengths))
        chunk = self.batch_size * self.mega
        batches = []
        for s in range(0, len(order), chunk):
            part = order[s : s + chunk]
            part = part[np.argsort(-self.lengths[part], kind="stable")]
            batches += [part[i : i + self.batch_size].tolist() for i in range(0, len(part), self.batch_size)]
        for b in rng.permutation(len(batches)):
            yield batches[b]


class TextDataModule(pl.LightningDataModule):
    """Train/val loaders over pre-tokenised texts (seeded shuffling; length-grouped batches by default).

    Under DDP each rank takes its slice of the same global batches (`RankSlices`) and its share of the
    validation rows: the Trainer runs with `use_distributed_sampler=False`."""

    def __init__(
        self,
        train: EncodedTexts,
        val: EncodedTexts | None,
        tokenizer: PreTrainedTokenizerBase,
        batch_size: int,
        eval_batch_size: int,
        seed: int,
        num_workers: int = 0,
        group_by_length: bool = True,
    ) -> None:
        super().__init__()
        self.group_by_length = group_by_length
        self.sampler = LengthGroupedBatches([len(x) for x in train.input_ids], batch_size, seed)
        self.train, self.val = train, val
        self.collate = Collator(tokenizer)
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.seed, self.num_workers = seed, num_workers

    def train_dataloader(self) -> DataLoader:
        rank, world = rank_and_world(self.trainer)
        batches = (
            self.sampler
            if self.group_by_length
            else ShuffledBatches(len(self.train), self.batch_size, self.seed)
        )
        return loader(self.train, RankSlices(batches, rank, world), self.collate, self.num_workers)

    def val_dataloader(self) -> DataLoader | list:
        if self.val is None:
            return []
        rank, world = rank_and_world(self.trainer)
        return loader(
            self.val,
            eval_batches(len(self.val), self.eval_batch_size, rank, world),
            self.collate,
            self.num_workers,
        )


class SequenceClassifierModule(pl.LightningModule):
    """Fine-tunes a sequence classifier with AdamW + linear warm-up/decay; logs val macro-F1."""

    def __init__(
        self,
        model: torch.nn.Module,
        n_classes: int,
        lr: float = 5e-5,
        weight_decay: float = 0.01,
        warmup: float = 0.1,
        total_steps: int = 1,
        class_weight: np.ndarray | None = None,
        alpha: float = 0.5,
        T: float = 2.0,
        beta: float = 1.0,
    ) -> None:
        super().__init__()
        self.model = model
        self.n_classes = n_classes
        self.lr, self.weight_decay, self.warmup, self.total_steps = lr, weight_decay, warmup, total_steps
        self.alpha, self.T, self.beta = alpha, T, beta
        cw = None if class_weight is None else torch.as_tensor(class_weight, dtype=torch.float32)
        self.register_buffer("class_weight", cw, persistent=False)
        self.val_f1 = MulticlassF1Score(num_classes=n_classes, average="macro")

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kw: Any) -> torch.Tensor:
        extra = {k: v for k, v in kw.items() if k == "token_type_ids"}
        return self.model(input_ids=input_ids, attention_mask=attention_mask, **extra).logits

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        logits = self(**batch)
        loss = distillation_loss(
            logits,
            batch["labels"],
            batch.get("soft"),
            batch.get("is_synthetic"),
            batch.get("sample_weight"),
            self.class_weight,
            self.alpha,
            self.T,
            self.beta,
        )
        self.log("train_loss", loss, prog_bar=True, batch_size=len(logits))
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        logits = self(**batch)
        self.val_f1.update(logits.argmax(-1), batch["labels"])
        self.log("val_loss", F.cross_entropy(logits, batch["labels"]), batch_size=len(logits), sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        self.log(
            "val_macro_f1", self.val_f1.compute(), prog_bar=True, sync_dist=True
        )  # compute() syncs ranks
        self.val_f1.reset()

    def configure_optimizers(self) -> dict[str, Any]:
        no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
        params = [
            {
                "params": [p for n, p in self.model.named_parameters() if not n.endswith(no_decay)],
                "weight_decay": self.weight_decay,
            },
            {
                "params": [p for n, p in self.model.named_parameters() if n.endswith(no_decay)],
                "weight_decay": 0.0,
            },
        ]
        opt = torch.optim.AdamW(params, lr=self.lr)
        warm = int(self.warmup * self.total_steps) if self.warmup < 1 else int(self.warmup)
        sched = get_linear_schedule_with_warmup(opt, warm, max(self.total_steps, 1))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
