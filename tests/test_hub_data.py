"""`data=hub`: Hugging Face datasets saved with `save_to_disk` (the Hub is not reachable here) load through
`datasets`, keep ClassLabel or string labels, give one-line errors, and train in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentisynth import api
from sentisynth.data import DataError
from sentisynth.hub_data import load_hub_data
from tests.conftest import NAMES, make_posts

datasets = pytest.importorskip("datasets")


def save_dict(root: Path, class_label: bool = True) -> Path:
    """A DatasetDict (train/validation/test) with a `tweet` column and a ClassLabel (or string) `emotion`."""
    features = datasets.Features(
        {
            "tweet": datasets.Value("string"),
            "emotion": datasets.ClassLabel(names=NAMES) if class_label else datasets.Value("string"),
        }
    )
    parts = {}
    for split, n, seed in (("train", 30, 0), ("validation", 6, 1), ("test", 8, 2)):
        rows = make_posts(n, seed)
        labels = [y if class_label else NAMES[y] for _, y in rows]
        parts[split] = datasets.Dataset.from_dict(
            {"tweet": [t for t, _ in rows], "emotion": labels}, features=features
        )
    datasets.DatasetDict(parts).save_to_disk(str(root))
    return root


def hub(path: Path, *extra: str) -> list[str]:
    return [
        "data=hub",
        f"data.hub_name={path}",
        "data.text_column=tweet",
        "data.label_column=emotion",
        *extra,
    ]


def test_saved_dataset_dict_loads_and_trains_in_process(tmp_path: Path) -> None:
    path = save_dict(tmp_path / "ds")
    run = api.run_arm(
        hub(path, "data.seed_size=20", "augment=real", "augment.n=24", "logger=none"),
        output_dir=tmp_path / "run",
    )
    assert run.metrics["train/n_seed"] == 20 and run.metrics["train/n_real"] == 24
    assert 0.5 < run.metrics["test/macro_f1"] <= 1.0  # separable toy posts
    preds = run.predictions()
    assert len(preds[preds.split == "test"]) == 32 and set(preds.gold) == set(NAMES)
    assert run.config.data.loader == "hub"


def test_string_labels_single_dataset_and_carved_splits(tmp_path: Path) -> None:
    rows = make_posts(25)
    datasets.Dataset.from_dict(
        {"text": [t for t, _ in rows], "label": [NAMES[y] for _, y in rows]}
    ).save_to_disk(str(tmp_path / "one"))
    data = load_hub_data(seed_size=8, seed=0, hub_name=str(tmp_path / "one"), val_split=None, test_split=None)
    assert data.label_names == sorted(NAMES)  # strings: sorted names
    assert (len(data.seed), len(data.pool) + len(data.seed), len(data.val), len(data.test)) == (8, 72, 8, 20)
    assert set(data.test.index).isdisjoint(data.val.index) and set(data.seed.index).isdisjoint(
        data.test.index
    )
    assert any("carved" in n for n in data.dataset.notes)


def test_same_seed_same_draw_as_other_loaders(tmp_path: Path) -> None:
    path = save_dict(tmp_path / "ds", class_label=False)
    a = load_hub_data(
        seed_size=12,
        seed=3,
        hub_name=str(path),
        text_column="tweet",
        label_column="emotion",
        label_names=NAMES,
    )
    b = load_hub_data(
        seed_size=12,
        seed=3,
        hub_name=str(path),
        text_column="tweet",
        label_column="emotion",
        label_names=NAMES,
    )
    assert a.label_names == NAMES and a.seed.texts == b.seed.texts
    assert a.seed.class_counts(4).tolist() == [3, 3, 3, 3]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"text_column": "body"}, "missing column 'body' (columns: tweet, emotion)"),
        ({"label_column": "y"}, "missing column 'y'"),
        ({"val_split": "dev"}, "unknown split 'dev' for data.val_split (available: train, validation, test)"),
        ({"hub_name": None}, "data=hub needs data.hub_name"),
    ],
)
def test_bad_input_is_one_clear_error(tmp_path: Path, kwargs: dict, message: str) -> None:
    path = save_dict(tmp_path / "ds")
    args = {"hub_name": str(path), "text_column": "tweet", "label_column": "emotion", **kwargs}
    with pytest.raises(DataError) as e:
        load_hub_data(seed_size=8, **args)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_unreachable_hub_dataset_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError) as e:
        load_hub_data(seed_size=8, hub_name="sentisynth-test/does-not-exist", hub_revision="abc")
    assert str(e.value).startswith("data=hub: could not load sentisynth-test/does-not-exist@abc: ")
    assert "\n" not in str(e.value)
