"""Every config option composes; the groups of the foundation also instantiate."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from sentisynth.cli import register_resolvers
from tests.conftest import CONF

register_resolvers()

# groups whose every option is fully instantiated here (cheap, no models); the others are checked
# for composition and an importable _target_ here, and constructed by their own module's tests
INSTANTIATED = {"data", "classifier", "augment", "logger"}
SKIP_GROUPS = {
    "hydra",
    "hydra/help",
    "paths",
    "local",
    "experiment",
    "hparams_search",
}  # hparams_search: test_cli_config


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml") if not p.stem.startswith("_"))


def _groups_of(root: str) -> list[str]:
    defaults = OmegaConf.load(CONF / f"{root}.yaml").get("defaults", [])
    groups = []
    for item in defaults:
        if isinstance(item, (dict, DictConfig)):
            key = next(iter(item)).replace("optional ", "").replace("override ", "")
            if key not in SKIP_GROUPS and (CONF / key).is_dir():
                groups.append(key)
    return groups


def _compose(root: str, overrides: list[str], tmp_path: Path) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(
            config_name=root,
            overrides=[f"paths.output_dir={tmp_path}", f"paths.root_dir={tmp_path}", *overrides],
        )


CASES = [
    (root, group, option)
    for root in ("train", "generate")
    for group in _groups_of(root)
    for option in _options(group)
]


@pytest.mark.parametrize(("root", "group", "option"), CASES, ids=[f"{r}:{g}={o}" for r, g, o in CASES])
def test_option_composes(root: str, group: str, option: str, tmp_path: Path, tiny_data_dir: Path) -> None:
    cfg = _compose(root, [f"{group}={option}", f"paths.data_dir={tiny_data_dir}"], tmp_path)
    node = cfg[group]
    plain = OmegaConf.to_container(node, resolve=True)  # every interpolation resolves
    if group == "keywords":  # settings of sentisynth.guidance.build_guidance: every key is known
        from sentisynth.guidance import KeywordConfig

        assert KeywordConfig.from_kwargs(**plain).top_k >= 1
    if "_target_" not in node:
        return
    if group not in INSTANTIATED:
        assert callable(instantiate(node, _partial_=True))  # the target imports
        return
    if group == "data" and option == "files":
        csv = tmp_path / "posts.csv"
        rows = [(f"happy fun {i}", "joy") for i in range(10)] + [
            (f"sad cry {i}", "sadness") for i in range(10)
        ]
        csv.write_text("text,label\n" + "\n".join(f"{t},{y}" for t, y in rows) + "\n")
        node.path, node.seed_size = str(csv), 4
    if group == "data" and option == "hub":
        import datasets

        from tests.conftest import make_posts

        rows = make_posts(10)
        part = datasets.Dataset.from_dict({"text": [t for t, _ in rows], "label": [y for _, y in rows]})
        datasets.DatasetDict({"train": part, "validation": part, "test": part}).save_to_disk(
            str(tmp_path / "hub")
        )
        node.hub_name = str(tmp_path / "hub")
    if group == "data" and option == "sst2":
        pytest.skip("sst2 needs its own local layout; loaded in test_data")
    if group == "data" and option == "tweet_eval_offensive":
        from tests.conftest import write_tweeteval

        write_tweeteval(tiny_data_dir, "offensive")
    if group == "data":
        node.seed_size = min(int(node.seed_size) if str(node.seed_size).isdigit() else 20, 20)
    extra = {"n_classes": 4} if group == "classifier" else {}
    obj = instantiate(node, **extra)
    assert obj is not None


def test_experiment_configs_compose(tmp_path: Path) -> None:
    for option in _options("experiment"):
        for root in ("train", "generate"):
            try:
                cfg = _compose(root, [f"experiment={option}"], tmp_path)
            except Exception as e:  # an experiment belongs to one root config
                if "Could not" in str(e) or "override" in str(e):
                    continue
                raise
            assert cfg.task_name


def test_root_defaults(tmp_path: Path) -> None:
    cfg = _compose("train", [], tmp_path)
    assert cfg.optimized_metric == "val/macro_f1"
    assert cfg.logger._target_.endswith("WandbTracker") and cfg.logger.mode in (
        "offline",
        "online",
        "disabled",
    )
    assert cfg.data.seed == cfg.seed == 0


def _strings(node: object, path: str = "") -> list[tuple[str, str]]:
    """(dotted key, value) of every string leaf under a plain config node."""
    if isinstance(node, dict):
        return [x for k, v in node.items() for x in _strings(v, f"{path}.{k}" if path else str(k))]
    if isinstance(node, list):
        return [x for i, v in enumerate(node) for x in _strings(v, f"{path}[{i}]")]
    return [(path, node)] if isinstance(node, str) else []


@pytest.mark.parametrize("group", ["experiment", "hparams_search"])
def test_sweeps_and_searches_never_optimise_a_test_metric(group: str, tmp_path: Path) -> None:
    """Tuning reads validation only: every experiment (and search config) composes with a `val/` objective, and
    nothing its sweeper or search reads (objective, direction, params) names a `test/` key."""
    options = _options(group) if (CONF / group).is_dir() else []
    if not options:
        pytest.skip(f"no conf/{group}/ configs")
    checked = 0
    for option in options:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            try:
                cfg = compose(
                    "train",
                    overrides=[
                        f"{group}={option}",
                        f"paths.root_dir={tmp_path}",
                        f"paths.output_dir={tmp_path}",
                    ],
                    return_hydra_config=True,
                )
            except Exception as e:  # an experiment of another root config (generate.yaml)
                if "Could not" in str(e) or "override" in str(e):
                    continue
                raise
        assert str(cfg.optimized_metric).startswith("val/"), (
            f"{group}={option}: optimized_metric {cfg.optimized_metric}"
        )
        sweeper = OmegaConf.to_container(cfg.hydra.sweeper, resolve=False)
        leaks = [
            (k, v)
            for k, v in _strings(sweeper)
            if "test/" in v or k.endswith(("monitor", "objective", "metric")) and not v.startswith("val/")
        ]
        assert not leaks, f"{group}={option}: the sweeper reads {leaks}"
        monitors = [
            (k, v) for k, v in _strings(OmegaConf.to_container(cfg, resolve=False)) if k.endswith("monitor")
        ]
        assert all("test/" not in v for _, v in monitors), f"{group}={option}: {monitors}"
        checked += 1
    assert checked >= (4 if group == "experiment" else 1)
