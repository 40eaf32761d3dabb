"""Lightning DDP (`trainer=ddp`): two gloo ranks on the CPU give the single-process result, one set of files.

Dropout is off in the tiny BERT, so DDP (each rank a slice of the same global batches, gradients averaged)
and one process take the same optimisation steps: the metrics agree up to floating-point noise.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from sentisynth.distributed import RankSlices, ShuffledBatches, eval_batches
from tests.conftest import run_cli
from tests.test_transformer import ROOT, make_tiny_bert, toy_data


def test_rank_slices_cover_the_single_process_batches() -> None:
    one = list(RankSlices(ShuffledBatches(21, 4, seed=3), 0, 1))
    per_rank = [list(RankSlices(ShuffledBatches(21, 4, seed=3), r, 2)) for r in range(2)]
    assert (
        len(one) == 6 and len(per_rank[0]) == len(per_rank[1]) == 5
    )  # a 1-row batch is skipped on both ranks
    for b, a, c in zip(one, *per_rank):
        assert sorted(a + c) == sorted(b) and len(a) == len(c)
    rows = [r for rank in range(3) for batch in eval_batches(10, 2, rank, 3) for r in batch]
    assert sorted(rows) == list(range(10))


@pytest.mark.slow
def test_ddp_two_cpu_ranks_match_one_process(tmp_path: Path) -> None:
    from hydra import compose, initialize_config_dir

    from sentisynth.cli import register_resolvers
    from sentisynth.train import run

    bert = make_tiny_bert(tmp_path / "bert", dropout=0.0)
    texts, labels = toy_data(72)
    split = ["train"] * 40 + ["val"] * 16 + ["test"] * 16
    pd.DataFrame({"text": texts, "label": labels, "split": split}).to_csv(tmp_path / "d.csv", index=False)
    args = [
        "data=files",
        f"data.path={tmp_path / 'd.csv'}",
        "data.seed_size=full",
        "classifier=transformer",
        f"classifier.model_name_or_path={bert}",
        "classifier.epochs=3",
        "classifier.batch_size=8",
        "classifier.lr=3e-3",
        "classifier.progress=false",
        "trainer.enable_progress_bar=false",
        "logger=none",
        f"paths.root_dir={tmp_path}",
    ]
    ddp_dir = tmp_path / "ddp"
    done = run_cli(
        "train.py",
        *args,
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        f"hydra.run.dir={ddp_dir}",
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    register_resolvers()
    single_dir = tmp_path / "single"
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[*args, "trainer=cpu", f"paths.output_dir={single_dir}"])
    single = run(cfg)

    ddp = json.loads((ddp_dir / "metrics.json").read_text())
    assert set(ddp) == set(single)
    for k, v in single.items():
        assert ddp[k] == pytest.approx(v, abs=1e-6), k
    p_ddp, p_one = pd.read_csv(ddp_dir / "predictions.csv"), pd.read_csv(single_dir / "predictions.csv")
    probs = [c for c in p_one.columns if c.startswith("prob/")]
    assert (p_ddp[probs] - p_one[probs]).abs().to_numpy().max() < 1e-4
    # two processes trained; rank 1 restored the same best checkpoint and wrote nothing but its log
    rank1 = (ddp_dir / "train_ddp_process_1.log").read_text()
    rank0 = (ddp_dir / "train.log").read_text()
    best = [
        line.split("transformer fit: ")[1]
        for line in (rank0 + rank1).splitlines()
        if "transformer fit: " in line
    ]
    assert len(best) == 2 and best[0] == best[1] and "best_val_macro_f1" in best[0]
    assert not (ddp_dir / ".hydra" / "overrides.yaml").read_text().count("train_ddp_process")


def test_trainer_settings_resolve_auto_and_drop_unknown_keys() -> None:
    from sentisynth.distributed import trainer_settings

    one = trainer_settings(
        {
            "accelerator": "cpu",
            "devices": 1,
            "strategy": "ddp",
            "precision": "auto",
            "_x": 1,
            "not_a_trainer_arg": 2,
        }
    )
    assert one == {"accelerator": "cpu", "devices": 1, "precision": "32-true"}  # one device: no strategy
    two = trainer_settings({"accelerator": "cpu", "devices": 2, "strategy": "ddp"})
    assert two["strategy"] == "ddp" and two["devices"] == 2


def test_early_stopping_copy_holds_trainable_parameters_only() -> None:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from sentisynth.generation.lm_finetune import CausalLMModule, freeze_blocks, trainable_state

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=16, n_embd=16, n_layer=2, n_head=2))
    freeze_blocks(model, 1)  # the last block, the final norm and the embeddings train; block 0 is frozen
    module = CausalLMModule(model)
    module.best_state = trainable_state(model)
    trainable = {k for k, p in model.named_parameters() if p.requires_grad}
    assert set(module.best_state) == trainable and not any(
        k.startswith("transformer.h.0.") for k in trainable
    )
    best = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(1.0)
    module.restore_best()
    assert all(torch.equal(best[k], v) for k, v in model.state_dict().items())
