"""augment=synthetic says out loud when its set was made in another setting (seed size, data seed, dataset,
label names), and records the comparison in data_summary.json's augmentation info."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from sentisynth.augment import SyntheticAugment
from sentisynth.data import load_data
from sentisynth.provenance import SOURCE_FILE, set_origin, source_record
from tests.test_augment import _write_synthetic


def _data(tiny_data_dir: Path, seed_size: int = 20, seed: int = 0):
    return load_data(
        "tweet_eval", seed_size=seed_size, seed=seed, task="emotion", data_dir=str(tiny_data_dir)
    )


def test_set_from_another_seed_size_and_seed_warns_and_is_recorded(tmp_path, tiny_data_dir, caplog) -> None:
    made_from = _data(tiny_data_dir, seed_size=12, seed=3)
    run_dir = tmp_path / "gen"
    run_dir.mkdir()
    path = _write_synthetic(run_dir / "synthetic.jsonl", per_class=50)
    (run_dir / SOURCE_FILE).write_text(json.dumps(source_record(made_from)))
    with caplog.at_level(logging.WARNING, logger="sentisynth.provenance"):
        aug = SyntheticAugment(path=str(path), n=40, seed=0)(_data(tiny_data_dir))
    found = aug.info["set_origin"]["mismatches"]
    assert found == [
        "seed size 12 posts in total (set) vs 20 (run)",
        "data seed 3 (set) vs 0 (run)",
    ]
    assert "made in another setting" in caplog.text and "seed size 12" in caplog.text
    json.dumps(aug.info)  # recorded as is in data_summary.json


def test_same_setting_is_silent_and_old_sets_are_read_from_card_and_config(
    tmp_path, tiny_data_dir, caplog
) -> None:
    data = _data(tiny_data_dir)
    run_dir = tmp_path / "gen"
    (run_dir / ".hydra").mkdir(parents=True)
    path = _write_synthetic(run_dir / "synthetic.jsonl", per_class=50)
    (run_dir / "README.md").write_text(
        f"# card\n\n- dataset: {data.dataset.name} (somewhere); labelled seed: 20 posts, classes {{}}\n"
    )
    (run_dir / ".hydra" / "config.yaml").write_text("seed: 0\ndata:\n  seed_size: 20\n  seed: ${seed}\n")
    origin = set_origin(path, [{"label_name": n} for n in data.label_names])
    assert origin == {
        "dataset": data.dataset.name,
        "n_seed": 20,
        "data_seed": 0,
        "label_names": sorted(data.label_names),
    }
    with caplog.at_level(logging.WARNING, logger="sentisynth.provenance"):
        aug = SyntheticAugment(path=str(path), n=40, seed=0)(data)
    assert aug.info["set_origin"]["mismatches"] == [] and "another setting" not in caplog.text
    with caplog.at_level(logging.WARNING, logger="sentisynth.provenance"):
        SyntheticAugment(path=str(path), n=40, seed=0)(_data(tiny_data_dir, seed=5))
    assert "data seed 0 (set) vs 5 (run)" in caplog.text


def test_shortfall_message_says_in_total_and_per_class(tmp_path, tiny_data_dir, caplog) -> None:
    path = _write_synthetic(tmp_path / "s.jsonl", per_class=3)
    with caplog.at_level(logging.WARNING, logger="sentisynth.augment"):
        SyntheticAugment(path=str(path), n=40, seed=0)(_data(tiny_data_dir))
    assert "only 12 synthetic samples in total" in caplog.text and "per class: {'anger': 3" in caplog.text
