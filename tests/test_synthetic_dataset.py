"""Synthetic sets as Hugging Face datasets: a generation run leaves `dataset/`, `synthetic.parquet` and a card
beside `synthetic.jsonl`; `augment.path` takes any of them; `push_to_hub` goes as far as the network."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from sentisynth import api
from sentisynth.augment import read_labelled
from sentisynth.data import DataError
from tests.conftest import NAMES, ROOT, make_posts, run_cli, write_tweeteval
from tests.test_transformer import make_tiny_bert

TINY = [
    "generator.pretrain.max_steps=4",
    "generator.pretrain.vocab_size=300",
    "generator.pretrain.n_embd=16",
    "generator.pretrain.n_layer=1",
    "generator.pretrain.n_head=2",
    "generator.pretrain.val_every=2",
    "generator.pretrain.batch_size=4",
    "generator.pretrain.seq_len=32",
    "generator.pretrain.n_positions=64",
    "generator.finetune.epochs=1",
    "generator.sampling.max_new_tokens=8",
    "generator.batch_size=4",
    "generator.budget.n_per_class=6",
    "generator.budget.max_rounds=1",
    "generator.budget.min_kept_share=0",  # a 1-round miniature set may come out short: the test reads what it made
    "trainer.enable_progress_bar=false",
]


def gen_overrides(tmp: Path, *extra: str) -> list[str]:
    """A miniature generation config on toy data in `tmp` (data, corpus and cache made once per `tmp`)."""
    data, corpus = tmp / "data", tmp / "corpus.txt"
    if not data.exists():
        write_tweeteval(data)
        corpus.write_text("\n".join(t for t, _ in make_posts(60, seed=5)) + "\n")
    return [
        f"paths.data_dir={data}",
        f"paths.cache_dir={tmp / 'cache'}",
        "data.seed_size=24",
        "guidance=naive",
        f"generator.corpus={corpus}",
        "logger=none",
        *TINY,
        *extra,
    ]


@pytest.fixture(scope="module")
def gen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gen")


@pytest.fixture(scope="module")
def generated(gen_dir: Path) -> api.RunResult:
    """One miniature generation run with the full filter chain's teacher (a tiny random BERT, tau 0)."""
    bert = make_tiny_bert(gen_dir / "bert", n_classes=4)
    teacher = [
        f"filters.teacher.model.model_name_or_path={bert}",
        "filters.teacher.model.epochs=1",
        "filters.teacher.model.min_steps=0",
        "filters.teacher.tau=0.0",
        "~filters.diversity",
        "~filters.perplexity",
        "~filters.heuristic",
        "+filters.teacher.model.progress=false",
    ]
    return api.generate(gen_overrides(gen_dir, *teacher), output_dir=gen_dir / "run")


@pytest.mark.slow  # one in-process miniature generation (~10 s on 2 cores), shared by the module
def test_generation_writes_dataset_parquet_and_card(generated: api.RunResult) -> None:
    import datasets

    out = generated.dir
    rows = [json.loads(x) for x in (out / "synthetic.jsonl").read_text().splitlines()]
    assert rows, "the miniature run kept no sample"
    frame = pd.read_parquet(out / "synthetic.parquet")
    ds = datasets.load_from_disk(str(out / "dataset"))
    assert frame.text.tolist() == [r["text"] for r in rows] == ds["text"]
    assert ds.features["label"].names == NAMES and ds["label"] == [r["label"] for r in rows]
    for col in (
        "generator",
        "guidance",
        "prompt",
        "keywords",
        "exemplar_indices",
        "sampling",
        "seed",
        "time",
        "teacher_confidence",
        "teacher_probs",
        "provenance_json",
    ):
        assert col in frame.columns, col
    assert json.loads(frame.provenance_json[0]) == rows[0]["provenance"]
    assert json.loads(frame.generator[0])["kind"] == "tiny" and set(frame.guidance) == {"naive"}
    assert frame.teacher_probs.map(len).eq(4).all()
    card = (out / "README.md").read_text()
    for needle in (
        "## Source data",
        "tweet_eval_emotion",
        "## Generator",
        '"kind": "tiny"',
        "## Guidance: `naive`",
        "## Filters and their acceptance",
        "| dedup |",
        "| teacher |",
        "| **chain** |",
        "## Linguistic summary",
        "| synthetic | all |",
        "| seed | all |",
    ):
        assert needle in card, needle
    report = generated.filter_report()
    assert f"| **chain** | {report['n_in']} | {report['n_kept']} |" in card


@pytest.mark.slow  # one in-process miniature generation (~10 s on 2 cores), shared by the module
def test_generation_records_the_saved_teacher(generated: api.RunResult) -> None:
    teacher = json.loads((generated.dir / "models.json").read_text())["teacher"]
    assert teacher and Path(teacher, "config.json").is_file()  # save_pretrained, in the cache
    predictor = generated.model("teacher")
    assert predictor.label_names == NAMES and predictor.predict_proba(["so happy today"]).shape == (1, 4)


@pytest.mark.slow
@pytest.mark.parametrize("form", ["", "synthetic.jsonl", "synthetic.parquet", "dataset"])
def test_every_form_reads_the_same_rows(generated: api.RunResult, form: str) -> None:
    rows, _ = read_labelled(generated.dir / form, NAMES)
    jsonl, _ = read_labelled(generated.dir / "synthetic.jsonl", NAMES)
    assert [(r["text"], r["label"]) for r in rows] == [(r["text"], r["label"]) for r in jsonl]
    assert [r["teacher"]["probs"] for r in rows] == [
        r["teacher"]["probs"] for r in jsonl
    ]  # distillation works


@pytest.mark.slow  # one in-process miniature generation (~10 s on 2 cores), shared by the module
def test_train_on_the_run_dir(generated: api.RunResult, tmp_path: Path) -> None:
    cfg = generated.config
    run = api.run_arm(
        [
            f"paths.data_dir={cfg.paths.data_dir}",
            "data.seed_size=24",
            "augment=synthetic",
            f"augment.path={generated.dir}",
            "augment.n=8",
            "logger=none",
        ],
        output_dir=tmp_path / "t",
    )
    assert run.metrics["train/n_synthetic"] > 0 and run.metrics["train/n_seed"] == 24
    assert (
        json.loads((run.dir / "models.json").read_text())["teacher"]
        == json.loads((generated.dir / "models.json").read_text())["teacher"]
    )


def test_written_set_reads_back_in_every_form(tmp_path: Path) -> None:
    """Without a generator: rows in the jsonl shape -> Parquet, dataset/ and card -> the same rows back."""
    from sentisynth.generation.dataset import to_frame, write_synthetic_set
    from sentisynth.utils import write_jsonl

    rows = [
        {
            "id": f"r{i}",
            "text": f"post number {i}",
            "label": i % 4,
            "label_name": NAMES[i % 4],
            "provenance": {
                "generator": {"kind": "tiny"},
                "guidance": "shap",
                "keywords": ["happy"],
                "seed": i,
            },
            "teacher": {"probs": [0.1, 0.2, 0.3, 0.4], "label": 3, "confidence": 0.4},
        }
        for i in range(8)
    ]
    write_jsonl(tmp_path / "synthetic.jsonl", rows)
    write_synthetic_set(tmp_path, rows, NAMES, "# card\n")
    assert (tmp_path / "README.md").read_text() == "# card\n"
    assert to_frame(rows).keywords[0] == ["happy"] and to_frame(rows).seed.tolist() == list(range(8))
    for form in ("", "synthetic.parquet", "dataset"):
        got, _ = read_labelled(tmp_path / form, NAMES)
        assert [(r["text"], r["label"], r["teacher"]["probs"]) for r in got] == [
            (r["text"], r["label"], r["teacher"]["probs"]) for r in rows
        ]
        assert got[0]["provenance"] == rows[0]["provenance"]


def test_bad_synthetic_paths(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no synthetic.jsonl, synthetic.parquet or dataset/"):
        read_labelled(tmp_path, NAMES)
    pd.DataFrame({"text": ["a b c"], "label_name": ["fear"]}).to_parquet(tmp_path / "s.parquet")
    with pytest.raises(DataError, match=r"s.parquet: line 1: unknown label 'fear'"):
        read_labelled(tmp_path / "s.parquet", NAMES)


@pytest.mark.slow  # one in-process miniature generation (~10 s on 2 cores), shared by the module
def test_push_to_hub_offline_is_one_clear_line(
    generated: api.RunResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sentisynth.generation.dataset import push_synthetic

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError) as e:
        push_synthetic(generated.dir, "someone/synthetic-emotion")
    assert str(e.value).startswith("push_to_hub=someone/synthetic-emotion: could not publish ")
    assert "\n" not in str(e.value)


@pytest.mark.slow  # one in-process miniature generation (~10 s on 2 cores), shared by the module
def test_push_to_hub_calls_datasets(
    gen_dir: Path, generated: api.RunResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`generate.py push_to_hub=<repo>` hands the saved dataset and its card to `datasets`/`huggingface_hub`."""
    import datasets
    import huggingface_hub

    calls = []
    monkeypatch.setattr(
        datasets.Dataset, "push_to_hub", lambda self, repo, **kw: calls.append(("data", repo, len(self)))
    )
    monkeypatch.setattr(
        huggingface_hub.HfApi,
        "upload_file",
        lambda self, **kw: calls.append(("card", kw["repo_id"], Path(kw["path_or_fileobj"]).name)),
    )
    # the same generator and raw batches as `generated` (cached): only the export and the push run here
    run = api.generate(
        gen_overrides(gen_dir, "filters=none", "push_to_hub=me/tiny-set"), output_dir=tmp_path / "run"
    )
    n = len((run.dir / "synthetic.jsonl").read_text().splitlines())
    assert calls == [("data", "me/tiny-set", n), ("card", "me/tiny-set", "README.md")] and n == 24


@pytest.mark.slow
def test_cli_generate_then_train_on_the_run_dir(tmp_path: Path) -> None:
    """As a user would: `python generate.py ...`, then `python train.py augment=synthetic augment.path=<dir>`."""
    over = gen_overrides(tmp_path, "filters=none")
    gen = run_cli("generate.py", *over, f"hydra.run.dir={tmp_path / 'gen'}", cwd=ROOT)
    assert gen.returncode == 0, gen.stderr[-3000:]
    assert {"synthetic.jsonl", "synthetic.parquet", "dataset", "README.md"} <= {
        p.name for p in (tmp_path / "gen").iterdir()
    }
    train = run_cli(
        "train.py",
        over[0],
        "data.seed_size=24",
        "augment=synthetic",
        f"augment.path={tmp_path / 'gen'}",
        "augment.n=12",
        "logger=none",
        f"hydra.run.dir={tmp_path / 'train'}",
    )
    assert train.returncode == 0, train.stderr[-3000:]
    assert json.loads((tmp_path / "train" / "metrics.json").read_text())["train/n_synthetic"] == 12
