"""Linguistic measures on hand-checked texts."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from sentisynth.analysis import compare_sets, distinct_n, self_bleu, text_measures, write_analysis


def test_measures_on_hand_checked_texts() -> None:
    texts = ["I was so happy yesterday #joy", "We will win tomorrow @bob 😀"]
    m = text_measures(texts, seed_vocab={"i", "was", "so", "happy"})
    # tokens: [i, was, so, happy, yesterday, #joy] + [we, will, win, tomorrow, @user, 😀] = 12
    assert m["mean_tokens"] == 6.0
    assert m["pron_1sg"] == pytest.approx(100 / 12)  # "i"
    assert m["pron_1pl"] == pytest.approx(100 / 12)  # "we"
    assert m["pron_2"] == 0.0 and m["pron_3"] == 0.0
    assert m["time_words"] == pytest.approx(200 / 12)  # yesterday, tomorrow
    assert m["past_markers"] == pytest.approx(100 / 12)  # was
    assert m["future_markers"] == pytest.approx(200 / 12)  # will, tomorrow
    assert m["hashtags_per_text"] == 0.5 and m["mentions_per_text"] == 0.5 and m["emoji_per_text"] == 0.5
    # words (no hashtag/mention/emoji): i was so happy yesterday we will win tomorrow -> 9 types, 9 tokens
    assert m["ttr"] == 1.0
    assert m["unseen_vocab_share"] == pytest.approx(5 / 9)
    assert math.isnan(m["mtld"])  # too short for MTLD


def test_distinct_and_self_bleu() -> None:
    toks = [["a", "b", "a"], ["a", "b"]]
    assert distinct_n(toks, 1) == pytest.approx(2 / 5)
    assert distinct_n(toks, 2) == pytest.approx(2 / 3)  # (a,b) (b,a) (a,b)
    same = ["the cat sat on the mat today"] * 5
    varied = [
        "the cat sat on the mat",
        "a dog ran in the park",
        "rain falls on green hills",
        "my phone battery died again",
        "coffee first then emails",
    ]
    assert self_bleu(same) == pytest.approx(1.0)
    assert self_bleu(varied) < 0.2


def test_self_bleu_equals_sacrebleu_sentence_bleu() -> None:
    """The fast self-BLEU gives sacrebleu's number: repeated words, shared n-grams, ties in length."""
    import random

    import numpy as np
    import sacrebleu

    rng = random.Random(3)
    vocab = "i love hate this so much the day is great sad angry why @user #happy !! :) not today".split()
    texts = [" ".join(rng.choice(vocab) for _ in range(rng.randint(1, 14))) for _ in range(60)]
    texts += ["the day is great", "the day is great", "so so so much"]  # exact copies, a repeated word
    picked = random.Random(0).sample(texts, 50)
    expected = np.mean(
        [
            sacrebleu.sentence_bleu(h, picked[:i] + picked[i + 1 :], tokenize="13a").score
            for i, h in enumerate(picked)
        ]
    )
    assert self_bleu(texts, sample=50, seed=0) == pytest.approx(expected / 100, abs=1e-12)


def test_mtld_is_length_robust() -> None:
    import random

    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(60)]
    short = " ".join(rng.choice(vocab) for _ in range(200))
    long = " ".join(rng.choice(vocab) for _ in range(2000))
    m_short, m_long = text_measures([short])["mtld"], text_measures([long])["mtld"]
    t_short, t_long = text_measures([short])["ttr"], text_measures([long])["ttr"]
    assert t_long < t_short / 2  # TTR collapses with length
    assert abs(m_long - m_short) / m_short < 0.35  # MTLD stays put


def test_compare_sets_per_class_and_files(tmp_path: Path) -> None:
    sets = {
        "seed": (["i love this", "so sad today", "i cry"], [0, 1, 1]),
        "synthetic": (["we love it", "sad sad sad"], [0, 1]),
    }
    frame = compare_sets(sets, ["joy", "sadness"])
    assert set(zip(frame["set"], frame["class"])) == {
        ("seed", "all"),
        ("seed", "joy"),
        ("seed", "sadness"),
        ("synthetic", "all"),
        ("synthetic", "joy"),
        ("synthetic", "sadness"),
    }
    syn_all = frame[(frame["set"] == "synthetic") & (frame["class"] == "all")].iloc[0]
    assert syn_all["unseen_vocab_share"] == pytest.approx(2 / 4)  # we, it unseen; love, sad seen
    paths = write_analysis(frame, tmp_path)
    assert paths["png"].stat().st_size > 1000 and "| set | class |" in paths["md"].read_text()


def test_compare_sets_memo_gives_the_same_frame_and_skips_recomputation(tmp_path: Path, monkeypatch) -> None:
    import sentisynth.analysis as analysis

    sets = {
        "seed": (["i love this", "so sad today", "i cry"], [0, 1, 1]),
        "synthetic": (["we love it", "sad sad sad"], [0, 1]),
    }
    fresh = compare_sets(sets, ["joy", "sadness"])
    first = compare_sets(sets, ["joy", "sadness"], cache_dir=tmp_path)
    assert (
        len(list((tmp_path / "analysis").glob("*/measures.json"))) == 6
    )  # sealed entries (sentisynth.cache)

    def fail(*_a, **_k):
        raise AssertionError("recomputed a memoised group")

    monkeypatch.setattr(analysis, "text_measures", fail)
    second = compare_sets(sets, ["joy", "sadness"], cache_dir=tmp_path)
    assert fresh.equals(first) and first.equals(second)
    # another synthetic set changes its groups' keys (recomputed, here: the patched function raises)
    with pytest.raises(AssertionError, match="recomputed"):
        compare_sets(
            {**sets, "synthetic": (["we love it!", "sad sad sad"], [0, 1])},
            ["joy", "sadness"],
            cache_dir=tmp_path,
        )
