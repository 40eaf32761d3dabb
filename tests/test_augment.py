"""Augmentation arms: counts, class distributions, and no overlap with the seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentisynth.augment import NoAugment, RealAugment, resolve_count
from sentisynth.data import DataError, load_data, parse_count, target_class_counts


@settings(max_examples=80, deadline=None)
@given(
    ref=st.lists(st.integers(1, 50), min_size=2, max_size=5),
    avail_extra=st.lists(st.integers(0, 50), min_size=5, max_size=5),
    n=st.integers(0, 200),
    balance=st.booleans(),
)
def test_target_class_counts(ref: list[int], avail_extra: list[int], n: int, balance: bool) -> None:
    ref_a = np.array(ref)
    available = np.array(avail_extra[: len(ref)])
    extra = target_class_counts(n, ref_a, available, balance)
    assert extra.sum() == min(n, available.sum())
    assert (extra >= 0).all() and (extra <= available).all()
    if balance and n <= available.sum():
        totals = ref_a + extra
        # a class still below the largest total could not be topped up further
        for c in range(len(ref)):
            if totals[c] < totals.max() - 1:
                assert extra[c] == available[c] or extra.sum() == n


def test_counts_are_whole_numbers_or_full() -> None:
    assert resolve_count(1000, 250, available=5000) == 1000
    assert resolve_count("full", 250, available=5000) == 5000
    assert resolve_count(1000, 250, available=5000, seed_ratio=0.5) == 125  # a share only under its own name
    assert parse_count("250", "data.seed_size") == 250 and parse_count("FULL", "data.seed_size") == "full"
    for bad in (5.0, 0.5, -0.5, -3, True, "half", None):
        with pytest.raises(DataError, match=r"augment.n must be a whole number of posts >= 0 or 'full', got"):
            resolve_count(bad, 250, available=5000)
    with pytest.raises(DataError, match="augment.seed_ratio must be a number >= 0"):
        resolve_count(10, 250, available=5000, seed_ratio=-0.5)


def test_real_augment_draws_from_pool(tiny_data_dir: Path) -> None:
    data = load_data("tweet_eval", seed_size=20, seed=0, task="emotion", data_dir=str(tiny_data_dir))
    aug = RealAugment(n=40, seed=0)(data)
    assert len(aug.split) == 40 and aug.source == "real"
    assert set(aug.split.index.tolist()) <= set(data.pool.index.tolist())
    assert aug.split.class_counts(4).tolist() == [10, 10, 10, 10]
    assert RealAugment(n=40, seed=0)(data).split.index.tolist() == aug.split.index.tolist()
    too_many = RealAugment(n=10_000, seed=0)(data)
    assert len(too_many.split) == len(data.pool)
    assert len(NoAugment()(data).split) == 0


def test_real_augment_balance_tops_up_smallest(shared_data: Path) -> None:
    data = load_data("tweet_eval", seed_size=500, seed=0, task="emotion", data_dir=str(shared_data))
    seed_counts = data.seed.class_counts(4)
    aug = RealAugment(n=300, balance=True, seed=0)(data)
    totals = seed_counts + aug.split.class_counts(4)
    assert aug.split.class_counts(4)[0] == 0  # anger is the largest class: nothing added
    assert totals[2] > seed_counts[2] + 100  # optimism, the smallest, gets the most


def _write_synthetic(path: Path, per_class: int, with_probs: bool = False) -> Path:
    import json

    from tests.conftest import NAMES, make_posts

    rows = []
    for text, label in make_posts(per_class, seed=9):
        row = {"text": "syn " + text, "label": label, "label_name": NAMES[label]}
        if with_probs:
            row["teacher"] = {"probs": [0.7 if c == label else 0.1 for c in range(4)]}
        rows.append(row)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_synthetic_matches_real_counts(tmp_path: Path, tiny_data_dir: Path) -> None:
    from sentisynth.augment import SyntheticAugment

    data = load_data("tweet_eval", seed_size=20, seed=0, task="emotion", data_dir=str(tiny_data_dir))
    path = _write_synthetic(tmp_path / "synthetic.jsonl", per_class=50)
    real = RealAugment(n=40, seed=0)(data)
    syn = SyntheticAugment(path=str(path), n=40, seed=0)(data)
    assert syn.source == "synthetic" and len(syn.split) == 40
    assert syn.split.class_counts(4).tolist() == real.split.class_counts(4).tolist()
    assert all(t.startswith("syn ") for t in syn.split.texts)
    assert SyntheticAugment(path=str(path), n=40, seed=0)(data).split.texts == syn.split.texts  # seeded
    distilled = SyntheticAugment(
        path=str(_write_synthetic(tmp_path / "p.jsonl", 50, True)), n=40, distill=True, weight=0.3
    )(data)
    assert distilled.soft_labels.shape == (40, 4) and (distilled.sample_weight == 0.3).all()


def test_synthetic_bad_file_errors(tmp_path: Path, tiny_data_dir: Path) -> None:
    import pytest

    from sentisynth.augment import SyntheticAugment
    from sentisynth.data import DataError

    data = load_data("tweet_eval", seed_size=20, seed=0, task="emotion", data_dir=str(tiny_data_dir))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok", "label_name": "joy"}\n{"text": "x", "label_name": "fear"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl: line 2: unknown label 'fear'"):
        SyntheticAugment(path=str(bad))(data)
    with pytest.raises(DataError, match="needs the teacher's probabilities"):
        SyntheticAugment(path=str(_write_synthetic(tmp_path / "s.jsonl", 5)), n=8, distill=True)(data)
    with pytest.raises(DataError, match="augment.path"):
        SyntheticAugment()(data)


class _KeywordTeacher:
    """A stand-in teacher: confident when a class keyword occurs, unsure otherwise."""

    def score(self, texts):
        from tests.conftest import EMOTION_WORDS

        probs = np.full((len(texts), 4), 0.25)
        for i, t in enumerate(texts):
            for c, words in EMOTION_WORDS.items():
                if any(w in t.split() for w in words):
                    probs[i] = 0.02
                    probs[i, c] = 0.94
                    break
        return {"probs": probs, "label": probs.argmax(1), "confidence": probs.max(1)}


def test_pseudo_labels_corpus_through_filters(tmp_path: Path, tiny_data_dir: Path) -> None:
    from sentisynth.augment import PseudoAugment
    from tests.conftest import make_posts

    data = load_data("tweet_eval", seed_size=20, seed=0, task="emotion", data_dir=str(tiny_data_dir))
    corpus = tmp_path / "corpus.txt"
    unlabelled = [f"corpus {t}" for t, _ in make_posts(30, seed=11)] + ["nothing to see here at all"] * 3
    corpus.write_text("\n".join(unlabelled + [data.test.texts[0]]) + "\n")  # one leaked test post
    filters = {
        "heuristic": {"_target_": "sentisynth.filters.HeuristicFilter", "min_words": 3},
        "dedup": {"_target_": "sentisynth.filters.DedupFilter", "against": ["seed", "pool", "val", "test"]},
        "teacher": {"_target_": "sentisynth.filters.TeacherFilter", "tau": 0.8, "mode": "keep"},
    }
    aug = PseudoAugment(
        corpus=str(corpus), filters=filters, n=40, candidates=200, seed=0, teacher=_KeywordTeacher()
    )(data, run_dir=tmp_path / "run")
    assert aug.source == "pseudo" and len(aug.split) == 40
    assert (
        aug.split.class_counts(4).tolist() == RealAugment(n=40, seed=0)(data).split.class_counts(4).tolist()
    )
    assert data.test.texts[0] not in aug.split.texts  # leakage guard
    assert "nothing to see here at all" not in aug.split.texts  # unsure teacher: dropped
    assert (tmp_path / "run" / "filter_report.json").is_file()
