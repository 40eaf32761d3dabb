"""Loaders, bad-input errors and low-resource sampling."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentisynth.data import (
    DataError,
    carve_validation,
    load_data,
    load_files,
    load_sst2,
    load_tweet_eval,
    make_low_resource,
    stratified_sample,
)
from tests.conftest import NAMES, make_posts, write_tweeteval


# ---------------------------------------------------------------- TweetEval layout
def test_tweeteval_local_layout(tiny_data_dir: Path) -> None:
    ds = load_tweet_eval("emotion", data_dir=str(tiny_data_dir))
    assert ds.label_names == NAMES
    assert (len(ds.train), len(ds.val), len(ds.test)) == (160, 32, 48)
    assert ds.train.class_counts(4).tolist() == [40, 40, 40, 40]


def test_env_var_is_used(tiny_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTISYNTH_DATA_DIR", str(tiny_data_dir))
    assert len(load_tweet_eval("emotion", data_dir=None).train) == 160


def test_missing_local_and_hub_names_both_places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError) as e:
        load_tweet_eval("emotion", data_dir=str(tmp_path / "nowhere"))
    msg = str(e.value)
    assert str(tmp_path / "nowhere" / "tweeteval" / "emotion") in msg
    assert "cardiffnlp/tweet_eval" in msg


def test_length_mismatch_names_both_files(tiny_data_dir: Path) -> None:
    labels = tiny_data_dir / "tweeteval" / "emotion" / "train_labels.txt"
    labels.write_text("\n".join(labels.read_text().splitlines()[:-3]) + "\n")
    with pytest.raises(DataError, match="train_text.txt has 160 lines but .*train_labels.txt has 157"):
        load_tweet_eval("emotion", data_dir=str(tiny_data_dir))


def test_label_outside_mapping_names_line(tiny_data_dir: Path) -> None:
    labels = tiny_data_dir / "tweeteval" / "emotion" / "val_labels.txt"
    lines = labels.read_text().splitlines()
    lines[4] = "7"
    labels.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"val_labels.txt: line 5: label 7 is outside the label mapping"):
        load_tweet_eval("emotion", data_dir=str(tiny_data_dir))


def test_empty_texts_dropped_and_reported(tiny_data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    text = tiny_data_dir / "tweeteval" / "emotion" / "test_text.txt"
    lines = text.read_text().splitlines()
    lines[0] = "   "
    lines[3] = ""
    text.write_text("\n".join(lines) + "\n")
    ds = load_tweet_eval("emotion", data_dir=str(tiny_data_dir))
    assert len(ds.test) == 46
    assert ds.test.index[0] == 1  # provenance keeps the original line positions
    assert "dropped 2 empty text(s)" in caplog.text


# ---------------------------------------------------------------- SST-2 (two header spellings)
def _write_sst2(root: Path) -> Path:
    folder = root / "sst2"
    folder.mkdir(parents=True)
    rows = [("a fine film", 1), ("dull and long", 0), ("great acting", 1), ("bad plot", 0)] * 5
    pd.DataFrame({"label": [y for _, y in rows], "sentence": [t for t, _ in rows]}).to_csv(
        folder / "train.tsv", sep="\t", index=False
    )
    for name in ("dev.tsv", "test.tsv"):
        pd.DataFrame({"label": [1, 0, 1, 0], "content": ["good", "bad", "nice one", "awful"]}).to_csv(
            folder / name, sep="\t", index=False
        )
    return root


def test_sst2_local(tmp_path: Path) -> None:
    ds = load_sst2(data_dir=str(_write_sst2(tmp_path)))
    assert ds.label_names == ["negative", "positive"]
    assert (len(ds.train), len(ds.val), len(ds.test)) == (20, 4, 4)


# ---------------------------------------------------------------- generic files
@pytest.mark.parametrize("ext", ["csv", "tsv", "jsonl", "parquet"])
def test_files_one_file_with_split_column(tmp_path: Path, ext: str) -> None:
    rows = make_posts(10)
    df = pd.DataFrame({"body": [t for t, _ in rows], "emotion": [NAMES[y] for _, y in rows]})
    df["split"] = ["train"] * 24 + ["validation"] * 8 + ["test"] * 8
    path = tmp_path / f"posts.{ext}"
    if ext == "csv":
        df.to_csv(path, index=False)
    elif ext == "tsv":
        df.to_csv(path, sep="\t", index=False)
    elif ext == "jsonl":
        df.to_json(path, orient="records", lines=True)
    else:
        df.to_parquet(path)
    ds = load_files(path=str(path), text_column="body", label_column="emotion")
    assert ds.label_names == sorted(NAMES)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (24, 8, 8)
    assert ds.train.texts[0] == " ".join(df.body[0].split())


def test_files_stratified_fractions_disjoint(tmp_path: Path) -> None:
    rows = make_posts(25)
    path = tmp_path / "p.csv"
    pd.DataFrame({"text": [t for t, _ in rows], "label": [y for _, y in rows]}).to_csv(path, index=False)
    ds = load_files(path=str(path), fractions=[0.6, 0.2, 0.2], label_names=NAMES)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (60, 20, 20)
    idx = [set(s.index.tolist()) for s in (ds.train, ds.val, ds.test)]
    assert not (idx[0] & idx[1] or idx[0] & idx[2] or idx[1] & idx[2])
    assert ds.test.class_counts(4).tolist() == [5, 5, 5, 5]


def test_files_separate_paths_and_unknown_label(tmp_path: Path) -> None:
    for split, n in (("train", 10), ("test", 3)):
        rows = make_posts(n, seed=n)
        pd.DataFrame({"text": [t for t, _ in rows], "label": [NAMES[y] for _, y in rows]}).to_json(
            tmp_path / f"{split}.jsonl", orient="records", lines=True
        )
    ds = load_files(
        train_path=str(tmp_path / "train.jsonl"),
        test_path=str(tmp_path / "test.jsonl"),
        label_names=NAMES,
        fractions=[0.8, 0.1, 0.1],
    )
    assert len(ds.val) == 4 and len(ds.train) == 36  # carved from train: 10% of 40
    with pytest.raises(DataError, match=r"train.jsonl: row \d+, column 'label': unknown label 'joy'"):
        load_files(
            train_path=str(tmp_path / "train.jsonl"),
            test_path=str(tmp_path / "test.jsonl"),
            label_names=["anger", "optimism", "sadness"],
        )


def test_files_missing_column_names_file_and_column(tmp_path: Path) -> None:
    path = tmp_path / "nolabel.csv"
    pd.DataFrame({"text": ["a", "b"], "sentiment": [0, 1]}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"nolabel.csv: missing column 'label'"):
        load_files(path=str(path))


def test_files_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"missing file: .*absent.csv"):
        load_files(path=str(tmp_path / "absent.csv"))


# ---------------------------------------------------------------- low-resource sampling
@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(1, 40), min_size=2, max_size=6),
    frac=st.floats(0.0, 1.0),
    seed=st.integers(0, 10_000),
)
def test_stratified_sample_properties(counts: list[int], frac: float, seed: int) -> None:
    labels = np.repeat(np.arange(len(counts)), counts)
    n = len(counts) + int(frac * (len(labels) - len(counts)))
    rows = stratified_sample(labels, n, len(counts), np.random.default_rng(seed))
    got = np.bincount(labels[rows], minlength=len(counts))
    assert len(rows) == n and len(set(rows.tolist())) == n  # exact size, no repeats
    assert (got >= 1).all() and (got <= counts).all()  # every class, never more than exists
    # proportional: each class within 1 of its share (after the one-per-class floor)
    share = np.array(counts) / sum(counts) * n
    assert (np.abs(got - share) <= np.maximum(1.0, 1 + (share < 1))).all() or (got == 1).any()
    again = stratified_sample(labels, n, len(counts), np.random.default_rng(seed))
    assert np.array_equal(rows, again)  # seeded


def test_stratified_sample_errors() -> None:
    labels = np.array([0, 0, 1, 1, 1])
    with pytest.raises(DataError, match="smaller than the number of classes"):
        stratified_sample(labels, 1, 2, np.random.default_rng(0))
    with pytest.raises(DataError, match=r"the training split: class id 2 has no examples"):
        stratified_sample(labels, 3, 3, np.random.default_rng(0))
    with pytest.raises(DataError, match=r"f.csv \(train\): class 'c' has no examples"):
        stratified_sample(labels, 3, 3, np.random.default_rng(0), ["a", "b", "c"], "f.csv (train)")


def test_seed_and_pool_partition_train(tiny_data_dir: Path) -> None:
    ds = load_tweet_eval("emotion", data_dir=str(tiny_data_dir))
    lr = make_low_resource(ds, 20, seed=3)
    assert len(lr.seed) == 20 and len(lr.pool) == 140
    assert set(lr.seed.index.tolist()).isdisjoint(lr.pool.index.tolist())
    assert lr.seed.class_counts(4).tolist() == [5, 5, 5, 5]
    assert make_low_resource(ds, 20, seed=3).seed.index.tolist() == lr.seed.index.tolist()
    assert make_low_resource(ds, 20, seed=4).seed.index.tolist() != lr.seed.index.tolist()
    full = make_low_resource(ds, "full", seed=0)
    assert len(full.seed) == 160 and len(full.pool) == 0
    for bad in ("lots", -5, 0.5, 20.0, True):
        with pytest.raises(DataError, match=r"data.seed_size must be a whole number of posts >= 0 or 'full'"):
            make_low_resource(ds, bad, seed=0)


def test_carve_validation_disjoint() -> None:
    from sentisynth.data import Split

    split = Split([f"t{i}" for i in range(100)], np.arange(100) % 4, np.arange(100))
    rest, val = carve_validation(split, 0.2, 0, 4)
    assert len(val) == 20 and len(rest) == 80
    assert set(rest.index.tolist()).isdisjoint(val.index.tolist())


# ---------------------------------------------------------------- the shared real data
def test_shared_tweeteval_emotion(shared_data: Path) -> None:
    data = load_data("tweet_eval", seed_size=1000, seed=0, task="emotion", data_dir=str(shared_data))
    assert data.label_names == ["anger", "joy", "optimism", "sadness"]
    assert len(data.dataset.train) == 3257 and len(data.val) == 374 and len(data.test) == 1421
    assert data.dataset.train.class_counts(4).tolist() == [1400, 708, 294, 855]
    assert len(data.seed) == 1000 and len(data.seed) + len(data.pool) == 3257


def test_shared_offensive_and_sst2(shared_data: Path) -> None:
    off = load_tweet_eval("offensive", data_dir=str(shared_data))
    assert off.label_names == ["not-offensive", "offensive"] and len(off.train) == 11916
    sst = load_sst2(data_dir=str(shared_data))
    assert (len(sst.train), len(sst.val), len(sst.test)) == (67349, 872, 1821)
    assert json.dumps(sst.label_names) == '["negative", "positive"]'


def test_write_tweeteval_helper_roundtrip(tmp_path: Path) -> None:
    write_tweeteval(tmp_path, "offensive", sizes=(3, 2, 2))
    assert (tmp_path / "tweeteval" / "offensive" / "mapping.txt").is_file()
