"""Config and CLI: top-level generation groups in train.py, no silently ignored choice, one-line errors,
help templates listing each script's own groups, W&B groups, and the Optuna search configs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from sentisynth.cli import (
    ConfigError,
    check_generation_choices,
    precheck_overrides,
    register_resolvers,
    sweep_group,
)
from tests.conftest import CONF, ROOT

register_resolvers()


def _compose(root: str, overrides: list[str], tmp_path: Path, hydra_cfg: bool = False):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(
            root,
            overrides=[f"paths.output_dir={tmp_path}", f"paths.root_dir={tmp_path}", *overrides],
            return_hydra_config=hydra_cfg,
        )


def test_train_takes_generation_groups_at_the_top_level(tmp_path: Path) -> None:
    cfg = _compose(
        "train",
        [
            "augment=synthetic_shap",
            "generator=gpt2",
            "guidance=shap_bias",
            "filters=none",
            "generator.sampling.temperature=0.9",
        ],
        tmp_path,
    )
    block = OmegaConf.to_container(cfg.augment.generate, resolve=True)
    assert (
        block["generator"]["_target_"].endswith("LabelLMGenerator") and block["generator"]["name"] == "gpt2"
    )
    assert block["generator"]["sampling"]["temperature"] == 0.9
    assert block["guidance"]["name"] == "shap_bias" and block["filters"] == {}
    assert cfg.augment.guidance == "shap_bias"  # the strategy name recorded in reports follows the choice
    # the named arms pick their guidance, which a command-line choice still overrides
    assert _compose("train", ["augment=synthetic_naive"], tmp_path).augment.generate.guidance.name == "naive"
    assert _compose("train", ["augment=synthetic_shap"], tmp_path).augment.generate.guidance.name == "shap"
    tiny = _compose("train", ["augment=synthetic"], tmp_path)
    assert (
        tiny.augment.generate.filters.teacher.tau == 0.5
    )  # the tiny generator's threshold still reaches the teacher


def _hydra_job(cfg) -> None:
    HydraConfig.instance().set_config(cfg)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["augment=none", "generator=gpt2"], "generator=gpt2 has no effect: augment=none does not generate"),
        (
            ["augment=real", "guidance.bias=3"],
            "guidance.bias=3 has no effect: augment=real does not generate",
        ),
        (["augment=synthetic", "augment.path=x.jsonl", "filters=none"], "augment.path reads a finished set"),
        (
            ["augment=synthetic", "augment.generate.generator=gpt2"],
            "is not a generator config: choose one with generator=gpt2",
        ),
    ],
)
def test_generation_choices_are_never_silently_ignored(overrides, message, tmp_path: Path) -> None:
    cfg = _compose("train", overrides, tmp_path, hydra_cfg=True)
    cfg.hydra.overrides.task = overrides
    _hydra_job(cfg)
    try:
        with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
            check_generation_choices(cfg)
    finally:
        HydraConfig.instance().cfg = None
    ok = _compose("train", ["augment=synthetic_shap", "generator=tiny", "guidance=shap_bias"], tmp_path)
    check_generation_choices(ok)  # a generating arm: no complaint


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["generator=gpt3"],
            "error: generator=gpt3: no such option; choose from api, gpt2, lora_llm, minilm_decoder, ngram, quick, tiny, tiny_anchored, tiny_long (conf/generator/)",
        ),
        (["-m", "augment=none,reel"], "error: augment=reel: no such option"),
        (
            ["+generator=gpt2"],
            "error: +generator=gpt2: generator is already a group of train.py; select it with "
            "generator=gpt2 (no +)",
        ),
    ],
)
def test_wrong_group_or_value_is_one_line(argv, message, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        precheck_overrides(CONF, "train", argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and err[0].startswith(message)
    precheck_overrides(
        CONF, "train", ["generator=gpt2", "augment=synthetic", "hydra/launcher=joblib", "seed=1"]
    )


@pytest.mark.parametrize("script", ["train", "generate"])
def test_help_lists_only_the_scripts_groups(script: str, tmp_path: Path) -> None:
    cfg = _compose(script, [], tmp_path, hydra_cfg=True)
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        text = OmegaConf.to_container(cfg.hydra.help, resolve=True)["template"]
    listed = {
        line.split()[0]
        for line in text.split("Config groups")[1].split("Examples")[0].splitlines()[1:]
        if line.strip()
    }
    defaults = yaml.safe_load((CONF / f"{script}.yaml").read_text())["defaults"]
    own = {k.split()[-1] for d in defaults if isinstance(d, dict) for k in d} - {
        "hydra",
        "paths",
        "local",
        "hydra/help",
    }
    assert listed == own
    assert text.startswith(f"{script}.py: ") and "powered by Hydra" not in text
    for group in own:  # every option on the search path is listed
        options = sorted(p.stem for p in (CONF / group).glob("*.yaml"))
        assert " | ".join(options) in text, group


def test_runs_are_grouped_per_multirun_and_study(tmp_path: Path) -> None:
    from sentisynth.study import in_group

    cfg = _compose(
        "train", ["hydra.mode=MULTIRUN", f"hydra.sweep.dir={tmp_path / 'my_sweep'}"], tmp_path, True
    )
    _hydra_job(cfg)
    try:
        assert sweep_group() == "my_sweep" and cfg.logger.group == "my_sweep"
    finally:
        HydraConfig.instance().cfg = None
    single = _compose("train", [], tmp_path)
    assert single.logger.group is None
    cell = _compose("train", ["logger=wandb"], tmp_path)
    assert in_group(cell.logger, "offline_tweeteval").group == "offline_tweeteval"
    mine = _compose("train", ["logger.group=mine"], tmp_path)
    assert in_group(mine.logger, "offline_tweeteval").group == "mine"  # the user's group wins
    assert (
        in_group(_compose("train", ["logger=csv"], tmp_path).logger, "x") is not None
    )  # no group key: unchanged


SEARCHES = sorted(p.stem for p in (CONF / "hparams_search").glob("*.yaml"))


@pytest.mark.parametrize("name", SEARCHES)
def test_search_configs_tune_existing_knobs_on_validation(name: str, tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    cfg = _compose("train", [f"hparams_search={name}"], tmp_path, hydra_cfg=True)
    assert cfg.optimized_metric.startswith("val/")  # never tuned on test
    assert cfg.hydra.sweeper.direction == "maximize"
    for key in cfg.hydra.sweeper.params:
        assert OmegaConf.select(cfg, key, default="MISSING") != "MISSING", (
            f"{name}: {key} is not a config key"
        )


@pytest.mark.slow
def test_optuna_search_runs_three_trials_on_val(tmp_path: Path, tiny_data_dir: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    sweep = tmp_path / "sweep"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "-m",
            "hparams_search=tfidf_lr_optuna",
            "hydra.sweeper.n_trials=3",
            f"paths.data_dir={tiny_data_dir}",
            "data.seed_size=20",
            "logger=none",
            "save_predictions=false",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/metrics.json"))]
    assert len(trials) == 3
    result = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert result["best_value"] == pytest.approx(max(t["val/macro_f1"] for t in trials))
    assert set(result["best_params"]) == {
        "classifier.C",
        "classifier.min_df",
        "classifier.sublinear_tf",
        "classifier.max_df",
    }
