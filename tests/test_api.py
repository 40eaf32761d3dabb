"""`sentisynth.api`: compose a config without a Hydra run, run an arm, build guidance, load a run's results."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from sentisynth import api
from tests.conftest import NAMES


def test_compose_without_a_hydra_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    a = api.compose(["augment=real", "augment.n=10"])
    b = api.compose(["augment=real"])
    plain = OmegaConf.to_container(a, resolve=True)  # no "HydraConfig was not set"
    assert plain["augment"]["n"] == 10 and plain["paths"]["root_dir"] == str(tmp_path)
    assert Path(plain["paths"]["output_dir"]).resolve().parent == tmp_path / "outputs" / "train" / "runs"
    assert a.paths.output_dir != b.paths.output_dir  # unique run dirs, as Hydra's
    gen = api.compose(["generator=tiny"], config_name="generate", output_dir=tmp_path / "g")
    assert gen.generator._target_.endswith("TinyGenerator") and gen.paths.output_dir == str(tmp_path / "g")


def test_compose_leaves_hydra_state_as_it_found_it(tmp_path: Path) -> None:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    api.compose([], output_dir=tmp_path)
    assert not GlobalHydra.instance().is_initialized()
    with initialize_config_dir(str(api.config_dir()), version_base="1.3"):  # e.g. inside a Hydra app
        api.compose(["augment=real"], output_dir=tmp_path)
        assert GlobalHydra.instance().is_initialized()
        assert compose("train", overrides=["augment=none"]).augment._target_.endswith("NoAugment")


def test_run_arm_is_deterministic_and_load_run_reads_it_back(tmp_path: Path, tiny_data_dir: Path) -> None:
    cfg = api.compose(
        [
            f"paths.data_dir={tiny_data_dir}",
            "data.seed_size=16",
            "augment=real",
            "augment.n=12",
            "logger=none",
        ],
        output_dir=tmp_path / "a",
    )
    first = api.run_arm(cfg)
    second = api.run_arm(
        [
            f"paths.data_dir={tiny_data_dir}",
            "data.seed_size=16",
            "augment=real",
            "augment.n=12",
            "logger=none",
        ],
        output_dir=tmp_path / "b",
    )
    assert first.metrics == second.metrics and first.metrics["train/n_real"] == 12
    again = api.load_run(tmp_path / "a")
    assert again.metrics == first.metrics and again.config.augment.n == 12 and "time/total_s" in again.timings
    assert set(again.predictions().gold) <= set(NAMES)
    with pytest.raises(FileNotFoundError, match="run directory not found"):
        api.load_run(tmp_path / "missing")


def test_guidance(tmp_path: Path, tiny_data_dir: Path) -> None:
    run = api.guidance(
        [f"paths.data_dir={tiny_data_dir}", "data.seed_size=40", "logger=none"], output_dir=tmp_path / "g"
    )
    classes = run.guidance()["classes"]
    assert list(classes) == NAMES
    assert "happy" in [k["term"] for k in classes["joy"]["keywords"][:6]]  # a joy word ranks high for joy
    assert run.metrics["guidance/n_seed"] == 40
