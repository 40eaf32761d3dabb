"""The leak guard: no training row copies a val/test post, whatever the arm, path or filter settings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from sentisynth.cli import register_resolvers
from sentisynth.data import DataError, Split, load_data
from sentisynth.filters import FilterContext, build_filter_chain
from sentisynth.filters.leak import guard_training_set
from tests.conftest import CONF

register_resolvers()


def _compose(overrides: list[str], tmp: Path) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(
            config_name="train",
            overrides=[
                f"paths.output_dir={tmp / 'run'}",
                f"paths.root_dir={tmp}",
                f"paths.cache_dir={tmp / 'cache'}",
                "logger=none",
                *overrides,
            ],
        )


def _test_posts(data_dir: Path) -> tuple[list[str], list[int]]:
    folder = data_dir / "tweeteval" / "emotion"
    return (folder / "test_text.txt").read_text().splitlines(), [
        int(x) for x in (folder / "test_labels.txt").read_text().split()
    ]


def test_synthetic_file_of_test_posts_adds_none(tmp_path: Path, tiny_data_dir: Path) -> None:
    """The issue's attack: augment.path = the test posts. None are trained on; all are counted."""
    from sentisynth.train import run

    texts, labels = _test_posts(tiny_data_dir)
    path = tmp_path / "leak.jsonl"
    path.write_text(
        "".join(json.dumps({"text": t.upper() + " !!", "label": y}) + "\n" for t, y in zip(texts, labels))
    )
    metrics = run(
        _compose(
            [
                f"paths.data_dir={tiny_data_dir}",
                "data.seed_size=20",
                "augment=synthetic",
                f"augment.path={path}",
                "augment.n=20",
                "augment.analysis=false",
            ],
            tmp_path,
        )
    )
    assert metrics["train/n_synthetic"] == 0 and metrics["train/n_total"] == 20
    assert metrics["leak/dropped_from_file"] == len(texts) == 48
    assert metrics["leak/dropped"] == 0  # nothing was left for the final check to catch


def test_guard_drops_exact_and_near_copies_from_every_source(
    tiny_data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = load_data("tweet_eval", seed_size=20, seed=0, task="emotion", data_dir=str(tiny_data_dir))
    t0, t1 = data.test.texts[0], data.val.texts[3]
    near = " ".join(
        t0.split()[:-1] + ["zzz"]
    )  # one word of six changed: bigram Jaccard 4/6 ... checked below
    extra = Split(
        [t0, "brand new words here only", t1.replace(" ", "  "), near], np.array([0, 1, 2, 3]), np.arange(4)
    )
    train = Split.concat(data.seed, extra)
    sources = ["seed"] * len(data.seed) + ["synthetic"] * 4
    with caplog.at_level("WARNING"):
        keep, counts = guard_training_set(train, sources, data, "drop", threshold=0.5)
    kept_texts = {train.texts[i] for i in keep}
    assert t0 not in kept_texts and "brand new words here only" in kept_texts and near not in kept_texts
    assert (
        counts["leak/dropped/synthetic"] == 3
        and counts["leak/dropped_exact"] == 2
        and counts["leak/dropped_near"] == 1
    )
    assert counts["leak/dropped/seed"] == 0 and "leak guard: dropped 3 training row(s)" in caplog.text
    with pytest.raises(DataError, match="leak guard: 3 training row"):
        guard_training_set(train, sources, data, "error", threshold=0.5)


def test_guard_context_is_shared_across_cells_and_still_catches_new_copies(tiny_data_dir: Path) -> None:
    """Cells of one process share the guard's index (same val/test): a later training set with new rows is
    still checked in full, and a second draw of the same seed (new objects, same val/test) reuses it."""
    from sentisynth.filters import leak

    data = load_data("tweet_eval", seed_size=20, seed=0, task="emotion", data_dir=str(tiny_data_dir))
    clean = Split(["brand new words here only"], np.array([1]), np.arange(1))
    keep, _ = guard_training_set(Split.concat(data.seed, clean), ["seed"] * 21, data)
    contexts = dict(leak._CONTEXTS)
    copy = Split([data.test.texts[2], "another fresh post about lunch"], np.array([0, 1]), np.arange(2))
    again = load_data("tweet_eval", seed_size=20, seed=0, task="emotion", data_dir=str(tiny_data_dir))
    keep2, counts = guard_training_set(
        Split.concat(again.seed, copy), ["seed"] * 20 + ["synthetic"] * 2, again
    )
    assert len(leak._CONTEXTS) == len(contexts)  # the same context objects, no new one
    assert all(leak._CONTEXTS[k] is ctx for k, ctx in contexts.items())
    assert counts["leak/dropped/synthetic"] == 1 and len(keep2) == len(keep) == 21


def test_seed_rows_copying_test_are_dropped_and_weights_stay_aligned(tiny_data_dir: Path) -> None:
    """A real data set can repeat test posts in train: the guard covers the seed too, and per-row weights
    and soft labels of the augmentation follow the rows that survive."""
    from sentisynth.augment import Augmentation
    from sentisynth.train import training_set

    data = load_data("tweet_eval", seed_size=20, seed=0, task="emotion", data_dir=str(tiny_data_dir))
    seed = Split([data.test.texts[5], *data.seed.texts[1:]], data.seed.labels, data.seed.index)
    data = type(data)(data.dataset, seed, data.pool, data.val, data.test, data.seed_size, data.data_seed)
    extra = Split(
        ["fresh words one", data.val.texts[0], "fresh words two"], np.array([0, 1, 2]), np.arange(3)
    )
    aug = Augmentation(
        extra, "synthetic", sample_weight=np.array([0.1, 0.2, 0.3]), soft_labels=np.eye(4)[[0, 1, 2]]
    )
    train, n_seed, n_extra, weights, fit_kwargs, leak = training_set(data, aug, {"on_overlap": "drop"})
    assert (n_seed, n_extra, len(train)) == (19, 2, 21)
    assert weights.tolist() == [1.0] * 19 + [0.1, 0.3]
    assert fit_kwargs["soft_labels"].argmax(axis=1).tolist() == [0, 2] and fit_kwargs["n_seed"] == 19
    assert leak["leak/dropped/seed"] == 1 and leak["leak/dropped/synthetic"] == 1


def test_every_filter_chain_ends_with_the_guard_even_without_filters(tiny_data_dir: Path) -> None:
    """filters=none or a chain without dedup still cannot pass a copy of a val/test post."""
    data = load_data("tweet_eval", seed_size=20, seed=0, task="emotion", data_dir=str(tiny_data_dir))
    chain = build_filter_chain({}, FilterContext(data=data))
    samples = [
        {"id": "a", "text": data.test.texts[2], "label": 0},
        {"id": "b", "text": "new post entirely", "label": 1},
    ]
    result = chain.apply(samples)
    assert [s["id"] for s in result.kept] == ["b"] and result.rejected[0]["rejected_by"] == "leak_guard"
