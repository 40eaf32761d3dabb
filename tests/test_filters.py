"""Quality filters on crafted samples: leakage, near duplicates, wrong labels, gibberish, report counts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sentisynth.data import LabelledDataset, Split, make_low_resource
from sentisynth.filters import (
    CausalLMScorer,
    DedupFilter,
    DiversityFilter,
    FilterChain,
    FilterContext,
    HeuristicFilter,
    PerplexityFilter,
    TeacherFilter,
    build_filter_chain,
    format_table,
    write_filter_report,
)
from sentisynth.filters.diversity import mmr_select
from tests.conftest import ROOT

NAMES = ["anger", "joy"]
TRAIN = [
    ("i am so angry at the traffic this morning honestly", 0),
    ("this makes me furious and i want to scream at someone", 0),
    ("rage mode on after that awful referee decision tonight", 0),
    ("what a lovely sunny day with my best friends at the beach", 1),
    ("so happy and grateful for all the birthday wishes today", 1),
    ("laughing all day long with my family this weekend", 1),
]
VAL = [("the service was terrible and i am livid about it", 0), ("pure joy watching the puppies play", 1)]
TEST = [
    ("my neighbour keeps parking in my spot and i am fuming", 0),
    ("best concert of my life, still smiling from ear to ear", 1),
]


def split(rows: list[tuple[str, int]]) -> Split:
    return Split([t for t, _ in rows], np.array([y for _, y in rows]), np.arange(len(rows)))


@pytest.fixture
def data():
    ds = LabelledDataset("toy", NAMES, split(TRAIN), split(VAL), split(TEST))
    return make_low_resource(ds, seed_size=4, seed=0)


def sample(i: int, text: str, label: int = 1) -> dict:
    return {
        "id": f"s{i}",
        "text": text,
        "label": label,
        "label_name": NAMES[label],
        "provenance": {"round": 0},
    }


class FakeTeacher:
    """Scores by keyword so the expected decisions are known: 'furious'/'angry' -> anger."""

    def score(self, texts: list[str]) -> dict[str, np.ndarray]:
        probs = np.array(
            [
                [0.9, 0.1]
                if ("furious" in t or "angry" in t)
                else [0.45, 0.55]
                if "meh" in t
                else [0.05, 0.95]
                for t in texts
            ]
        )
        return {"probs": probs, "label": probs.argmax(1), "confidence": probs.max(1)}


def test_heuristic_each_check() -> None:
    f = HeuristicFilter()
    cases = {
        "too_short": "so happy",
        "too_long": "happy " * 5 + "x" * 500,
        "non_printable": "so happy today \x00 yay friends",
        "repetition": "happy happy happy happy day for me",
        "repeated_ngrams": "i love it i love it i love it i love it",
        "placeholder_only": "@user #blessed https://t.co/abc <url>",
        "gibberish": "asdkjh qwrtp zxcvbnm fghjkl wow",
    }
    samples = [sample(i, t) for i, t in enumerate(cases.values())]
    samples.append(sample(99, "@user so happy for you, congrats on the new job! #proud"))
    kept, dropped = f.apply(samples, FilterContext())
    assert [s["id"] for s in kept] == ["s99"]
    assert [s["reject_reason"] for s in dropped] == list(cases)
    assert all(s.get("reject_detail") for s in dropped)


def test_dedup_leak_near_and_within(data) -> None:
    test_post = TEST[1][0]
    pool_text = data.pool.texts[0]
    near_pool = pool_text.split()
    near_pool[-1] = "now"  # one word changed in a 10-word post
    samples = [
        sample(0, test_post.upper() + "!!"),  # leaked test post (case/punctuation changed)
        sample(1, " ".join(near_pool)),  # near duplicate of a real pool post
        sample(2, "having the best time with my cousins at the lake house"),
        sample(3, "Having the best time with my cousins at the lake house!"),  # exact dup of s2
        sample(4, "having the best time with my cousins at the lake cabin"),  # near dup of s2
        sample(5, "cannot stop grinning after the surprise party last night"),
    ]
    kept, dropped = DedupFilter(against=["seed", "pool", "val"]).apply(samples, FilterContext(data=data))
    reasons = {s["id"]: s["reject_reason"] for s in dropped}
    assert reasons == {
        "s0": "exact_duplicate:test",
        "s1": "near_duplicate:pool",
        "s3": "exact_duplicate:synthetic",
        "s4": "near_duplicate:synthetic",
    }
    assert [s["id"] for s in kept] == ["s2", "s5"]
    assert dropped[0]["duplicate_of"] == {"split": "test", "index": 1, "jaccard": 1.0}
    assert dropped[1]["duplicate_of"]["jaccard"] >= 0.7


def test_dedup_reuses_its_reference_index_across_rounds(data) -> None:
    """Top-up rounds re-filter with one context: the reference LSH is built once, and a second round that
    re-filters the first round's samples plus new ones decides the old ones exactly as before."""
    ctx = FilterContext(data=data)
    f = DedupFilter(against=["seed", "pool", "val"])
    first = [sample(0, "having the best time with my cousins at the lake house"), sample(1, TEST[1][0])]
    kept1, dropped1 = f.apply([dict(s) for s in first], ctx)
    index = ctx._memo[("dedup_refs", f.against, f.ngram, f.num_perm, f.threshold)][3]
    more = first + [sample(2, "having the best time with my cousins at the lake cabin")]
    kept2, dropped2 = f.apply([dict(s) for s in more], ctx)
    assert ctx._memo[("dedup_refs", f.against, f.ngram, f.num_perm, f.threshold)][3] is index
    assert [s["id"] for s in kept1] == [s["id"] for s in kept2] == ["s0"]
    assert {s["id"]: s["reject_reason"] for s in dropped2} == {
        "s1": "exact_duplicate:test",
        "s2": "near_duplicate:synthetic",
    }
    assert [s["id"] for s in dropped1] == ["s1"]


def test_leaked_test_post_never_survives_any_chain(data) -> None:
    """With no dedup filter at all (filters=none), the chain's leak guard still drops test copies."""
    samples = [sample(0, TEST[0][0], 0), sample(1, "a brand new post about a happy morning walk")]
    result = build_filter_chain({}, FilterContext(data=data)).apply(samples)
    assert [s["id"] for s in result.kept] == ["s1"]
    assert result.rejected[0]["rejected_by"] == "leak_guard"
    assert result.rejected[0]["reject_reason"] == "exact_duplicate:test"


def test_perplexity_with_generator_scorer() -> None:
    ppl = {
        "fluent one here": 10.0,
        "fluent two here": 12.0,
        "fluent three here": 11.0,
        "zz qq xx": 900.0,
        "broken": float("nan"),
    }
    samples = [sample(i, t) for i, t in enumerate(ppl)]
    ctx = FilterContext(lm_scorer=lambda texts: np.array([ppl[t] for t in texts]))
    kept, dropped = PerplexityFilter(max_perplexity=100, percentile=None).apply(samples, ctx)
    assert [s["text"] for s in kept] == ["fluent one here", "fluent two here", "fluent three here"]
    assert {s["text"]: s["reject_reason"] for s in dropped} == {
        "zz qq xx": "perplexity_high",
        "broken": "perplexity_unscorable",
    }
    assert kept[0]["perplexity"] == 10.0
    kept, _ = PerplexityFilter(percentile=50).apply([sample(i, t) for i, t in enumerate(ppl)], ctx)
    assert sorted(s["perplexity"] for s in kept) == [10.0, 11.0]  # median of finite scores is 11.5
    kept, dropped = PerplexityFilter().apply([sample(0, "x y z")], FilterContext())  # no scorer: skipped
    assert len(kept) == 1 and not dropped


def test_reference_causal_lm_scorer(tmp_path: Path) -> None:
    """A tiny random GPT-2 saved and loaded by path, through the same from_pretrained code."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    words = ["<unk>", "<|endoftext|>", "so", "happy", "today", "sad", "the", "day"]
    tk = Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tk.pre_tokenizer = Whitespace()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk, unk_token="<unk>", bos_token="<|endoftext|>", eos_token="<|endoftext|>"
    )
    GPT2LMHeadModel(
        GPT2Config(vocab_size=len(words), n_positions=32, n_embd=16, n_layer=1, n_head=2)
    ).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    scorer = CausalLMScorer(str(tmp_path), batch_size=2, progress=False)
    texts = ["so happy today", "the day", "sad", "so so so happy happy today the day"]
    ppl = scorer(texts)
    assert ppl.shape == (4,) and np.isfinite(ppl).all() and (ppl > 1).all()
    np.testing.assert_allclose(scorer(texts[1:2]), ppl[1:2], rtol=1e-4)  # batching does not change scores
    kept, dropped = PerplexityFilter(model_path=str(tmp_path), percentile=50).apply(
        [sample(i, t) for i, t in enumerate(texts)], FilterContext(progress=False)
    )
    assert len(kept) + len(dropped) == 4 and all("perplexity" in s for s in kept + dropped)


def test_teacher_keep_mode_drops_wrong_label() -> None:
    samples = [
        sample(0, "so furious about this", 1),  # intended joy, teacher says anger: wrong label
        sample(1, "lovely day out", 1),
        sample(2, "meh whatever", 1),
    ]  # teacher unsure
    kept, dropped = TeacherFilter(tau=0.8).apply(
        samples, FilterContext(teacher=FakeTeacher(), label_names=NAMES)
    )
    assert [s["id"] for s in kept] == ["s1"]
    assert {s["id"]: s["reject_reason"] for s in dropped} == {
        "s0": "teacher_disagrees",
        "s2": "teacher_low_confidence",
    }
    for s in kept + dropped:  # the teacher's view is on every sample
        assert (
            set(s["teacher"]) == {"probs", "label", "label_name", "confidence", "tau"}
            and len(s["teacher"]["probs"]) == 2
        )
    assert kept[0]["teacher"]["confidence"] == pytest.approx(0.95)


def test_teacher_relabel_mode() -> None:
    samples = [sample(0, "so furious about this", 1), sample(1, "lovely day out", 1), sample(2, "meh", 1)]
    kept, dropped = TeacherFilter(tau=0.8, mode="relabel").apply(
        samples, FilterContext(teacher=FakeTeacher(), label_names=NAMES)
    )
    assert [s["id"] for s in kept] == ["s0", "s1"] and [s["id"] for s in dropped] == ["s2"]
    s0 = kept[0]
    assert (s0["label"], s0["label_name"], s0["original_label"], s0["relabelled"]) == (0, "anger", 1, True)


def test_diversity_keeps_a_diverse_subset() -> None:
    texts = [
        "the cat sat on the mat",
        "the cat sat on the mat today",
        "the cat sat on a mat",
        "stock markets rallied after the announcement",
        "we hiked up the mountain at dawn",
    ]
    samples = [sample(i, t) for i, t in enumerate(texts)]
    kept, dropped = DiversityFilter(lambda_=0.5).apply(samples, FilterContext(budget_per_class={"joy": 3}))
    assert len(kept) == 3 and {s["reject_reason"] for s in dropped} == {"diversity_over_budget"}
    kept_texts = {s["text"] for s in kept}
    assert texts[3] in kept_texts and texts[4] in kept_texts  # the two different posts survive
    X = np.eye(3)
    assert mmr_select(X, np.array([0.2, 0.9, 0.5]), 2, lambda_=1.0) == [1, 2]  # pure relevance


def test_chain_report_adds_up_and_files(data, tmp_path: Path, capsys) -> None:
    from sentisynth.tracking import CSVTracker

    samples = [
        sample(0, TEST[0][0], 0),  # leak
        sample(1, "qwrtp zxcvb sdfgh kjhgf", 1),  # gibberish
        sample(2, "so furious about this whole mess today", 1),  # wrong label
        sample(3, "so furious about the late train again", 0),
        sample(4, "lovely day out with the kids at the zoo", 1),
        sample(5, "lovely day out with the kids at the zoo!", 1),  # duplicate
    ]
    cfg = {
        "heuristic": {"_target_": "sentisynth.filters.HeuristicFilter"},
        "dedup": {"_target_": "sentisynth.filters.DedupFilter"},
        "teacher": {
            "_target_": "sentisynth.filters.TeacherFilter",
            "tau": 0.8,
            "model": {"model_name_or_path": "x"},
        },
        "diversity": {"_target_": "sentisynth.filters.DiversityFilter", "enabled": False},
    }
    ctx = FilterContext(data=data, teacher=FakeTeacher(), budget_per_class=5)
    result = build_filter_chain(cfg, ctx).apply(samples)
    rep = result.report
    assert [s["id"] for s in result.kept] == ["s3", "s4"]
    assert rep["n_in"] == 6 == rep["n_kept"] + rep["n_dropped"] and rep["filters_applied"] == [
        "heuristic",
        "dedup",
        "teacher",
    ]
    for step in rep["filters"]:
        assert step["in"] == step["kept"] + step["dropped"]
        assert step["dropped"] == sum(step["reasons"].values())
        for row in step["per_class"].values():
            assert row["in"] == row["kept"] + row["dropped"] == row["kept"] + sum(row["reasons"].values())
    for a, b in zip(rep["filters"], rep["filters"][1:]):
        assert b["in"] == a["kept"]
    assert rep["per_class"]["joy"] == {
        "in": 4,
        "kept": 1,
        "dropped": 3,
        "acceptance_rate": 0.25,
        "kept_final_label": 1,
        "budget": 5,
        "short_of_budget": 4,
    }
    assert samples[0].get("reject_reason") is None  # inputs are not mutated

    tracker = CSVTracker(tmp_path)
    write_filter_report(result, tmp_path, tracker=tracker)
    on_disk = json.loads((tmp_path / "filter_report.json").read_text())
    assert on_disk["n_dropped"] == 4
    rejected = [json.loads(x) for x in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert [(r["id"], r["rejected_by"], r["reject_reason"]) for r in rejected] == [
        ("s1", "heuristic", "gibberish"),
        ("s0", "dedup", "exact_duplicate:test"),
        ("s5", "dedup", "exact_duplicate:synthetic"),
        ("s2", "teacher", "teacher_disagrees"),
    ]
    printed = capsys.readouterr().out
    assert "exact_duplicate:test 1" in printed and printed.strip() == format_table(rep).strip()
    assert (tmp_path / "tables" / "filters_report.csv").read_text().count("\n") == len(
        printed.strip().splitlines()
    ) - 1


def test_default_config_builds_in_order(data, tmp_path: Path) -> None:
    from hydra import compose, initialize_config_dir

    from sentisynth.cli import register_resolvers

    register_resolvers()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "generate",
            overrides=[
                "filters.teacher.tau=0.9",
                "~filters.perplexity",
                "paths.output_dir=/tmp",
                "paths.root_dir=/tmp",
            ],
        )
        none = compose("generate", overrides=["filters=none"])
        senti = compose("generate", overrides=["filters=sentisynth"])
        tiny = compose("generate", overrides=["paths.output_dir=/tmp", "paths.root_dir=/tmp"])
        gpt2 = compose(
            "generate", overrides=["generator=gpt2", "paths.output_dir=/tmp", "paths.root_dir=/tmp"]
        )
    # the default chain's teacher threshold follows the generator: tiny sets 0.5, others keep 0.8
    assert tiny.filters.teacher.tau == 0.5 and gpt2.filters.teacher.tau == 0.8
    chain = build_filter_chain(cfg.filters, FilterContext(data=data, cache_dir=tmp_path))
    assert [f.name for f in chain.filters] == ["heuristic", "dedup", "teacher", "diversity"]
    assert chain.filters[2].tau == 0.9 and chain.filters[2].model_cfg["trainer"]["accelerator"] == "auto"
    assert [f.name for f in build_filter_chain(none.filters, FilterContext(data=data)).filters] == [
        "leak_guard"
    ]
    senti_chain = build_filter_chain(senti.filters, FilterContext(data=data))
    assert [f.name for f in senti_chain.filters] == ["heuristic", "dedup", "teacher"] and senti_chain.filters[
        2
    ].tau == 0.8
    with pytest.raises(ValueError, match="missing _target_"):
        build_filter_chain({"x": {"tau": 1}}, FilterContext())


def test_teacher_trained_lazily_and_cached(data, tmp_path: Path, monkeypatch) -> None:
    """The teacher fine-tunes on the seed once; a second context with the same inputs loads it from disk."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    from sentisynth.classifiers.transformer import TransformerClassifier

    words = sorted({w for t, _ in TRAIN + VAL + TEST for w in t.replace(",", "").split()})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    model_dir = tmp_path / "bert"
    BertForSequenceClassification(
        BertConfig(
            vocab_size=len(vocab),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
        )
    ).save_pretrained(model_dir)
    BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}).save_pretrained(model_dir)
    model_cfg = {
        "_target_": "sentisynth.classifiers.transformer.TransformerClassifier",
        "model_name_or_path": str(model_dir),
        "epochs": 1,
        "batch_size": 4,
        "progress": False,
        "trainer": {"accelerator": "cpu", "enable_progress_bar": False},
    }
    samples = [
        sample(0, "so happy and grateful for the sunny day", 1),
        sample(1, "furious about the traffic", 0),
    ]
    f = TeacherFilter(tau=0.0, model=model_cfg)
    first = [
        s
        for part in f.apply(
            [dict(s) for s in samples], FilterContext(data=data, cache_dir=tmp_path / "cache")
        )
        for s in part
    ]
    saved = list((tmp_path / "cache" / "teachers").iterdir())
    assert len(saved) == 1 and (saved[0] / "sentisynth_classifier.json").is_file()

    def no_training(*a, **k):
        raise AssertionError("the cached teacher should have been reused")

    monkeypatch.setattr(TransformerClassifier, "fit", no_training)
    again = [
        s
        for part in f.apply(
            [dict(s) for s in samples], FilterContext(data=data, cache_dir=tmp_path / "cache")
        )
        for s in part
    ]

    def probs(rows: list[dict]) -> np.ndarray:
        return np.array([r["teacher"]["probs"] for r in sorted(rows, key=lambda r: r["id"])])

    assert probs(first).shape == (2, 2)
    np.testing.assert_allclose(probs(again), probs(first), atol=1e-5)


def test_chain_input_errors() -> None:
    with pytest.raises(ValueError, match="lacks required key 'label'"):
        FilterChain([], FilterContext()).apply([{"id": "a", "text": "x"}])
    with pytest.raises(ValueError, match="unique"):
        FilterChain([], FilterContext()).apply([sample(0, "a b c"), sample(0, "d e f")])
    with pytest.raises(ValueError, match="unknown split"):
        DedupFilter(against=["train"])


def test_memo_scorer_scores_each_text_once() -> None:
    """Top-up rounds re-filter all candidates; the memo sends only unseen texts to the teacher / LM."""
    from sentisynth.filters.base import MemoScorer

    seen: list[list[str]] = []

    class Teacher:
        def score(self, texts):
            seen.append(list(texts))
            probs = np.array([[0.9, 0.1] if "angry" in t else [0.2, 0.8] for t in texts])
            return {"probs": probs, "label": probs.argmax(1), "confidence": probs.max(1)}

    memo = MemoScorer(Teacher)
    first = memo.score(["so angry", "happy day", "so angry"])
    assert seen == [["so angry", "happy day"]]
    second = memo.score(["happy day", "angry again", "so angry"])
    assert seen[1] == ["angry again"]
    assert second["label"].tolist() == [1, 0, 0] and first["confidence"].tolist() == [0.9, 0.8, 0.9]

    calls: list[int] = []
    ppl = MemoScorer(lambda: lambda xs: calls.append(len(xs)) or [float(len(x)) for x in xs], method=None)
    assert ppl(["ab", "abc"]).tolist() == [2.0, 3.0] and ppl(["abc", "abcd"]).tolist() == [3.0, 4.0]
    assert calls == [2, 1]


def test_precision_threshold_picks_the_largest_slice_at_target_precision() -> None:
    from sentisynth.filters.teacher import precision_threshold

    conf = np.array([0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.4])
    correct = np.array([1, 1, 1, 1, 0, 1, 0, 0], dtype=bool)
    # top 4 all right (1.0); top 6: 5/6 = 0.83; top 7: 5/7 = 0.71
    assert precision_threshold(conf, correct, 0.8, min_support=1) == 0.6
    assert precision_threshold(conf, correct, 0.9, min_support=1) == 0.8
    assert precision_threshold(conf, correct, 0.8, min_support=7) == 0.5  # no slice of >= 7 reaches 0.8
    assert precision_threshold(conf[::-1], correct[::-1], 0.8, min_support=1) == 0.6  # order-free


def test_teacher_filter_auto_tau_calibrates_on_val(tiny_data_dir) -> None:
    from sentisynth.data import load_data
    from sentisynth.filters.teacher import TeacherFilter

    data = load_data("tweet_eval", seed_size=20, seed=0, task="emotion", data_dir=str(tiny_data_dir))

    class Teacher:  # right and 0.9 sure on val posts with an anger word, unsure (0.4) elsewhere
        def score(self, texts):
            probs = np.array(
                [
                    [0.9, 0.04, 0.03, 0.03] if ("angry" in t or "furious" in t) else [0.4, 0.2, 0.2, 0.2]
                    for t in texts
                ]
            )
            return {"probs": probs, "label": probs.argmax(1), "confidence": probs.max(1)}

    filt = TeacherFilter(tau="auto", target_precision=0.8, min_support=2)
    ctx = FilterContext(data=data, teacher=Teacher(), label_names=data.label_names)
    assert filt.threshold(Teacher(), ctx) == pytest.approx(0.9)
    samples = [{"text": "so angry today", "label": 0}, {"text": "meh day", "label": 0}]
    kept, dropped = filt.apply(samples, ctx)
    assert [s["text"] for s in kept] == ["so angry today"] and kept[0]["teacher"]["tau"] == pytest.approx(0.9)
    with pytest.raises(ValueError, match="auto"):
        TeacherFilter(tau="sometimes")
