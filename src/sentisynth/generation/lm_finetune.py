"""Causal-LM training in Lightning: pretraining the tiny model and label-prefix fine-tuning alike.

Loss is computed on the post only (conditioning prefixes are masked with -100), so validation
perplexity measures how well the model writes posts given their label/keywords. The best weights by
validation perplexity (trainable parameters only) are kept in memory and restored at the end on every
rank (early stopping without checkpoints).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from sentisynth.distributed import (
    RankSlices,
    ShuffledBatches,
    eval_batches,
    loader,
    rank_and_world,
    trainer_settings,
)
from sentisynth.tracking import stage_logger

log = logging.getLogger(__name__)

# Defaults when the config has no `trainer` group (a config composed without conf/trainer, e.g. in a test).
DEFAULT_TRAINER: dict[str, Any] = {
    "accelerator": "auto",
    "devices": 1,
    "precision": "32-true",
    "gradient_clip_val": 1.0,
}


class TokenRows(Dataset):
    """Pre-tokenised rows: (input ids, number of leading prefix tokens that carry no loss)."""

    def __init__(self, rows: Sequence[tuple[list[int], int]]) -> None:
        self.rows = list(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[list[int], int]:
        return self.rows[i]


def make_collate(pad_id: int):
    """Right-pad for training; labels are -100 on padding and on the conditioning prefix."""

    def collate(batch: list[tuple[list[int], int]]) -> dict[str, torch.Tensor]:
        width = max(len(ids) for ids, _ in batch)
        input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        for r, (ids, n_prefix) in enumerate(batch):
            input_ids[r, : len(ids)] = torch.tensor(ids)
            attention[r, : len(ids)] = 1
            labels[r, n_prefix : len(ids)] = torch.tensor(ids[n_prefix:])
        return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}

    return collate


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the trainable parameters only: for LoRA or a few unfrozen blocks of an 8B model, copying the
    frozen base too would double the memory for weights that never change."""
    return {k: p.detach().clone() for k, p in model.named_parameters() if p.requires_grad}


class CausalLMModule(pl.LightningModule):
    """Wraps any transformers causal LM; logs token-weighted validation perplexity (`val_ppl`)."""

    def __init__(
        self,
        model: torch.nn.Module,
        lr: float = 5e-4,
        weight_decay: float = 0.01,
        warmup_steps: int = 0,
        total_steps: int | None = None,
        data: tuple[Sequence, Sequence, int, int, int] = ((), (), 0, 16, 0),
    ) -> None:
        super().__init__()
        self.model = model
        self.train_rows, self.val_rows, pad_id, self.batch_size, self.seed = data
        self.collate = make_collate(pad_id)
        self.lr, self.weight_decay = lr, weight_decay
        self.warmup_steps, self.total_steps = warmup_steps, total_steps
        self._val_sum, self._val_n = 0.0, 0
        self.best_ppl = math.inf
        self.best_state: dict[str, torch.Tensor] | None = None
        self.history: list[float] = []

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.model(**batch).loss
        self.log("train_loss", loss, prog_bar=True, batch_size=batch["input_ids"].shape[0])
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        loss = self.model(**batch).loss
        n = int((batch["labels"][:, 1:] != -100).sum())
        self._val_sum += float(loss) * n
        self._val_n += n

    def on_validation_epoch_end(self) -> None:
        total = self.trainer.strategy.reduce(
            torch.tensor([self._val_sum, float(self._val_n)], device=self.device), reduce_op="sum"
        )  # DDP: every rank's share of val, each row once
        ppl = math.exp(float(total[0]) / max(float(total[1]), 1.0))
        self._val_sum, self._val_n = 0.0, 0
        self.log("val_ppl", ppl, prog_bar=True)
        if self.trainer.sanity_checking:
            return
        self.history.append(ppl)
        if ppl < self.best_ppl:
            self.best_ppl = ppl
            self.best_state = trainable_state(self.model)

    def configure_optimizers(self) -> Any:
        params = [p for p in self.model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        if not self.total_steps:
            return opt
        warm, total = max(self.warmup_steps, 1), self.total_steps

        def schedule(step: int) -> float:  # linear warm-up, cosine decay to 10%
            if step < warm:
                return (step + 1) / warm
            frac = min(1.0, (step - warm) / max(1, total - warm))
            return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def restore_best(self) -> None:
        if self.best_state is not None:
            params = dict(self.model.named_parameters())
            with torch.no_grad():
                for k, v in self.best_state.items():
                    params[k].copy_(v)

    def train_dataloader(self) -> DataLoader:
        rank, world = rank_and_world(self.trainer)
        # a resumed run continues the data where the checkpoint left it (one optimizer step per batch)
        done = int(self.trainer.global_step) * int(self.trainer.accumulate_grad_batches)
        batches = ShuffledBatches(len(self.train_rows), self.batch_size, self.seed, done)
        return loader(TokenRows(self.train_rows), RankSlices(batches, rank, world), self.collate)

    def val_dataloader(self) -> DataLoader:
        rank, world = rank_and_world(self.trainer)
        rows = eval_batches(len(self.val_rows), max(self.batch_size, 32), rank, world)
        return loader(TokenRows(self.val_rows), rows, self.collate)


class StepLogger(pl.Callback):
    """A plain log line every `every` steps (Lightning's bar does not show in redirected logs)."""

    def __init__(self, every: int = 50) -> None:
        self.every, self.t0, self.start_step = every, 0.0, 0

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        import time

        self.t0, self.start_step = time.perf_counter(), trainer.global_step

    def on_train_batch_end(
        self, trainer: pl.Trainer, module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        import time

        step = trainer.global_step
        if step % self.every == 0:
            dt = time.perf_counter() - self.t0
            rate = (step - self.start_step) / max(dt, 1e-9)
            loss = float(outputs["loss"]) if isinstance(outputs, dict) else float(outputs)
            log.info("step %d/%s  %.2f steps/s  loss %.3f  %.0fs", step, trainer.max_steps, rate, loss, dt)


def step_progress_bar(desc: str) -> pl.Callback:
    """A bar over the whole step budget with its ETA: Lightning's per-epoch bar reads "Epoch 0/-2 22/1267"
    when only `max_steps` bounds the run (pretraining). Starts at the resumed step after a restart."""
    from pytorch_lightning.callbacks import TQDMProgressBar

    class StepBar(TQDMProgressBar):
        def on_train_epoch_start(self, trainer: pl.Trainer, *_: Any) -> None:
            bar = self.train_progress_bar
            if bar.total != trainer.max_steps:
                bar.reset(total=trainer.max_steps)
                bar.initial = bar.n = trainer.global_step
                bar.unit = "step"
            bar.set_description(desc)

        def on_train_batch_end(self, trainer: pl.Trainer, module: Any, outputs: Any, *_: Any) -> None:
            bar = self.train_progress_bar
            if self._should_update(trainer.global_step, bar.total):
                bar.n = trainer.global_step
                bar.set_postfix(self.get_metrics(trainer, module))
                bar.refresh()

    return StepBar()


def freeze_blocks(model: torch.nn.Module, train_blocks: int | None) -> int:
    """Train only the last `train_blocks` transformer blocks (+ final norm, input embeddings, which
    hold the new label tokens); None or a negative value trains everything. Returns trainable params."""
    if train_blocks is None or train_blocks < 0:
        for p in model.parameters():
            p.requires_grad_(True)
    else:
        n_layers = getattr(model.config, "num_hidden_layers", None) or model.config.n_layer
        blocks = next(m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) == n_layers)
        for p in model.parameters():
            p.requires_grad_(False)
        for block in list(blocks)[len(blocks) - train_blocks :] if train_blocks else []:
            for p in block.parameters():
                p.requires_grad_(True)
        model.get_input_embeddings().weight.requires_grad_(True)
        for name, module in model.named_modules():  # final layer norm (ln_f / norm) sits outside the blocks
            if name.endswith(("ln_f", "model.norm", "final_layernorm")):
                for p in module.parameters():
                    p.requires_grad_(True)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def build_trainer(
    trainer_cfg: Any,
    *,
    max_epochs: int = -1,
    max_steps: int = -1,
    callbacks: list | None = None,
    root_dir: str | None = None,
    val_check_interval: Any = None,
    checkpointing: bool = False,
    log_as: str = "generator",
) -> pl.Trainer:
    """A Trainer from `cfg.trainer` (if the config has one) with this stage's own limits on top."""
    settings = trainer_settings(trainer_cfg, DEFAULT_TRAINER)
    settings.update(
        max_epochs=max_epochs,
        max_steps=max_steps,
        callbacks=callbacks or [],
        logger=stage_logger(log_as, settings),  # False under a spawning strategy; a no-op on DDP ranks > 0
        enable_checkpointing=checkpointing,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=root_dir,
        use_distributed_sampler=False,
    )  # the module shards its batches
    if val_check_interval is not None:
        settings["val_check_interval"] = val_check_interval
    if max_steps and max_steps > 0 and max_epochs < 0 and settings.get("enable_progress_bar", True):
        settings["callbacks"] = [*settings["callbacks"], step_progress_bar(log_as.replace("_", " "))]
    return pl.Trainer(**settings)


def _callbacks(
    patience: int, log_every: int, ckpt_dir: str | None, ckpt_every: int
) -> tuple[list, str | None]:
    """Early stopping, step logging and resumable checkpoints; returns (callbacks, checkpoint to resume)."""
    from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

    callbacks: list = [EarlyStopping(monitor="val_ppl", mode="min", patience=patience)] if patience else []
    if log_every:
        callbacks.append(StepLogger(log_every))
    if not ckpt_dir:
        return callbacks, None
    callbacks.append(
        ModelCheckpoint(dirpath=ckpt_dir, save_last=True, save_top_k=0, every_n_train_steps=ckpt_every)
    )
    last = os.path.join(ckpt_dir, "last.ckpt")
    resume = last if os.path.isfile(last) else None
    if resume:
        log.info("resuming training from %s", resume)
    return callbacks, resume


def fit_causal_lm(
    model: torch.nn.Module,
    train_rows: Sequence[tuple[list[int], int]],
    val_rows: Sequence[tuple[list[int], int]],
    pad_id: int,
    *,
    trainer_cfg: Any = None,
    batch_size: int = 16,
    lr: float = 5e-4,
    weight_decay: float = 0.01,
    max_epochs: int = 10,
    max_steps: int = -1,
    patience: int = 2,
    warmup_steps: int = 0,
    seed: int = 0,
    val_check_interval: Any = None,
    ckpt_dir: str | None = None,
    ckpt_every: int = 100,
    log_every: int = 0,
    log_as: str = "generator",
) -> dict[str, Any]:
    """Fit with early stopping on validation perplexity; restores the best weights. Returns a summary.

    With `ckpt_dir`, a `last.ckpt` is saved every `ckpt_every` steps and a re-run resumes from it (long
    pretraining survives interruption; the data continue where the checkpoint left them, only the dropout
    RNG stream differs, so the result is close to, not identical with, an uninterrupted run).
    """
    pl.seed_everything(seed, workers=True, verbose=False)
    model.train()  # from_pretrained returns eval mode; dropout belongs in training
    per_epoch = math.ceil(len(train_rows) / batch_size)
    steps = max_steps if max_steps and max_steps > 0 else max_epochs * per_epoch
    if val_check_interval is None and max_steps and 0 < max_steps < per_epoch:
        val_check_interval = int(max_steps)  # a step cap shorter than an epoch: still validate
    module = CausalLMModule(
        model,
        lr=lr,
        weight_decay=weight_decay,
        warmup_steps=warmup_steps,
        total_steps=steps,
        data=(train_rows, val_rows, pad_id, batch_size, seed),
    )
    callbacks, resume = _callbacks(patience, log_every, ckpt_dir, ckpt_every)
    trainer = build_trainer(
        trainer_cfg,
        max_epochs=max_epochs,
        max_steps=max_steps,
        callbacks=callbacks,
        val_check_interval=val_check_interval,
        checkpointing=bool(ckpt_dir),
        log_as=log_as,
    )
    trainer.fit(module, ckpt_path=resume)
    module.restore_best()
    model.eval()
    return {
        "best_val_ppl": module.best_ppl,
        "val_ppl_history": module.history,
        "steps": int(trainer.global_step),
    }


@torch.no_grad()
def perplexity(
    model: torch.nn.Module, rows: Sequence[tuple[list[int], int]], pad_id: int, batch_size: int = 64
) -> float:
    """Token-weighted perplexity of `rows` (prefix tokens excluded)."""
    model.eval()
    total, n = 0.0, 0
    dl = DataLoader(TokenRows(rows), batch_size=batch_size, collate_fn=make_collate(pad_id))
    device = next(model.parameters()).device
    for batch in dl:
        batch = {k: v.to(device) for k, v in batch.items()}
        k = int((batch["labels"][:, 1:] != -100).sum())
        total += float(model(**batch).loss) * k
        n += k
    return math.exp(total / max(n, 1))
