"""The config schema (`sentisynth.schema`): every numeric option of every config group and experiment has a
rule (a new numeric key without one fails here), every shipped config passes, and bad values are refused."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf, open_dict

from sentisynth.cli import register_resolvers
from sentisynth.errors import ConfigError
from sentisynth.schema import RULES, check_config, rule_for, uncovered
from tests.conftest import CONF

register_resolvers()

GROUPS = {
    "train": ["data", "classifier", "generator", "guidance", "filters", "augment", "trainer", "experiment"],
    "generate": ["keywords"],  # its other groups are train.py's, under the same keys: composed above
}


def _compose(root: str, overrides: list[str]) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name=root, overrides=["paths.output_dir=/x", "paths.root_dir=/x", *overrides])


def _every_config() -> list[tuple[str, str]]:
    return [
        (root, f"{group}={p.stem}")
        for root, groups in GROUPS.items()
        for group in groups
        for p in sorted((CONF / group).glob("*.yaml"))
    ]


def test_every_numeric_option_of_every_group_and_experiment_has_a_rule() -> None:
    missing, refused = {}, {}
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):  # once: composing is the cost
        for root, choice in _every_config():
            cfg = compose(config_name=root, overrides=["paths.output_dir=/x", "paths.root_dir=/x", choice])
            if uncovered(cfg):
                missing[f"{root} {choice}"] = uncovered(cfg)
            try:
                check_config(cfg)
            except ConfigError as e:
                refused[f"{root} {choice}"] = str(e)
    assert not missing, f"numeric keys without a rule in sentisynth/schema.py RULES: {missing}"
    assert not refused, f"shipped configs refused by the schema: {refused}"


def test_a_new_numeric_key_without_a_rule_is_reported() -> None:
    cfg = _compose("train", [])
    with open_dict(cfg):
        cfg.classifier.brand_new_knob = 3
        cfg.filters.dedup.another = 0.5
    assert uncovered(cfg) == ["classifier.brand_new_knob", "filters.dedup.another"]


@pytest.mark.parametrize(
    "key",
    [
        "generator.base_url",  # strings need no rule; the numeric and enumerated ones below do
        "generator.max_concurrency",
        "generator.requests_per_minute",
        "generator.tokens_per_minute",
        "generator.timeout_s",
        "generator.max_retries",
        "generator.pricing.input_per_mtok",
        "generator.pricing.output_per_mtok",
        "generator.limits.max_cost_usd",
        "generator.limits.max_total_tokens",
        "generator.limits.max_generated",
        "generator.posts_per_request",
        "generator.batch",
        "generator.dry_run",
        "generator.endpoint",
        "filters.judge.seed",
        "filters.judge.max_concurrency",
        "filters.judge.limits.max_cost_usd",
    ],
)
def test_keys_of_configs_being_added_elsewhere_are_covered(key: str) -> None:
    """The API generator's and the judge's numeric keys have rules (a string key like base_url has none)."""
    assert (rule_for(key) is None) == (key == "generator.base_url")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["seed=-1"], "seed must be an integer in [0, 4294967295], got -1"),
        (["seed=1.5"], "seed must be an integer in [0, 4294967295], got 1.5"),
        (["seed=abc"], "seed must be an integer in [0, 4294967295], got 'abc'"),
        (["seed=1e20"], "seed must be an integer in [0, 4294967295], got 1e+20"),
        (["data.seed_size=-3"], "data.seed_size must be a whole number of posts >= 0 or 'full', got -3"),
        (["classifier=transformer", "classifier.epochs=0"], "classifier.epochs must be an integer in [1, "),
        (
            ["classifier=transformer", "classifier.lr=nan"],
            "classifier.lr must be a number in (0, 1], got nan",
        ),
        (
            ["classifier=transformer", "classifier.max_length=0"],
            "classifier.max_length must be an integer in",
        ),
        (["generator.budget.n_per_class=-3"], "generator.budget.n_per_class must be an integer in [1, inf]"),
        (
            ["generator.sampling.temperature=-1"],
            "generator.sampling.temperature must be a number in (0, 100]",
        ),
        (["generator.sampling.temperature=0"], "generator.sampling.temperature must be a number in (0, 100]"),
        (["generator.sampling.top_p=2"], "generator.sampling.top_p must be a number in (0, 1], got 2"),
        (["generator.sampling.top_p=0"], "generator.sampling.top_p must be a number in (0, 1], got 0"),
        (["leak_guard.threshold=1.5"], "leak_guard.threshold must be a number in (0, 1], got 1.5"),
        (["filters.dedup.threshold=0"], "filters.dedup.threshold must be a number in (0, 1], got 0"),
        (["filters.perplexity.percentile=101"], "filters.perplexity.percentile must be a number in (0, 100]"),
        (["filters.teacher.tau=1.2"], "filters.teacher.tau must be a number in [0, 1] or 'auto', got 1.2"),
        (
            ["data=files", "data.fractions=[1.2,-0.1,-0.1]"],
            "data.fractions[i] must be a number in [0, 1], got 1.2",
        ),
        (
            ["augment=pseudo", "augment.filters.dedup.ngram=0"],
            "augment.filters.dedup.ngram must be an integer",
        ),
        (["trainer.devices=0.5"], "trainer.devices must be an integer in [-1, 4096] or 'auto', got 0.5"),
        (
            ["generator.budget.distribution=even"],
            "generator.budget.distribution must be one of uniform, balance",
        ),
    ],
)
def test_bad_values_name_key_value_and_range(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_config(_compose("train", overrides))
    assert str(info.value).startswith(message), str(info.value)


def test_interpolations_are_checked_where_they_are_set() -> None:
    cfg = _compose("train", ["seed=7"])
    check_config(cfg)
    assert OmegaConf.to_container(cfg.data, resolve=False)["seed"] == "${seed}"  # not checked twice


def test_rule_table_patterns_are_unique() -> None:
    patterns = [p for p, _ in RULES]
    assert len(patterns) == len(set(patterns))


def _scalar(text: str) -> object:
    """As Hydra's override grammar reads it: 1e-5 is a float (YAML 1.1 would keep it a string)."""
    import yaml

    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return yaml.safe_load(text)


def _search_values(expr: str) -> list[object]:
    """The end points (or choices) of an Optuna sweeper parameter: range(a, b), interval(a, b), choice(...)."""
    import re

    inner = re.search(r"(range|interval|choice)\(([^()]*)\)", expr)
    assert inner, expr
    values = [_scalar(v.strip()) for v in inner.group(2).split(",")]
    if inner.group(1) == "range":  # range(a, b): the integers a .. b-1
        return [int(values[0]), int(values[1]) - 1]
    return values


def test_search_spaces_lie_inside_the_schema() -> None:
    """An hparams_search trial must never be refused by the schema halfway through a sweep."""
    for path in sorted((CONF / "hparams_search").glob("*.yaml")):
        params = OmegaConf.load(path).hydra.sweeper.params
        for key, expr in params.items():
            rule = rule_for(key)
            assert rule is not None, f"{path.name}: {key} has no rule"
            for value in _search_values(str(expr)):
                assert rule.allows(value), f"{path.name}: {key}={value!r} outside {rule.describe()}"
