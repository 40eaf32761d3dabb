"""A study through a Hydra launcher (`hydra/launcher=joblib`, 2 workers): per-seed-set jobs first, then the
cells; the same metrics as the in-process loop, and a re-run runs nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import make_posts, run_cli
from tests.test_transformer import make_tiny_bert


def study_args(tmp_path: Path, data_dir: Path, bert: Path, name: str) -> list[str]:
    teacher = "augment.filters.teacher"
    pseudo = [
        "augment=pseudo",
        "augment.candidates=60",
        f"{teacher}.tau=0.0",
        f"{teacher}.model.model_name_or_path={bert}",
        f"{teacher}.model.epochs=1",
        f"{teacher}.model.min_steps=0",
        f"{teacher}.model.max_length=32",
        f"++{teacher}.model.num_threads=1",
        f"++{teacher}.model.progress=false",
    ]
    arms = "{none:['augment=none'],real:['augment=real'],pseudo:[" + ",".join(f"'{o}'" for o in pseudo) + "]}"
    return [
        "experiment=offline_tweeteval",
        "study.seeds=[0]",
        "study.seed_sizes=[16]",
        "~study.arms",
        f"+study.arms={arms}",
        "~study.classifiers",
        "+study.classifiers={tfidf_lr:{seeds:all}}",
        f"study.dir={tmp_path / name}",
        f"paths.data_dir={data_dir}",
        f"paths.cache_dir={tmp_path / name}_cache",
        f"hydra.run.dir={tmp_path / name}_run",
        "logger=none",
        "trainer.enable_progress_bar=false",
    ]


def cell_metrics(study_dir: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in study_dir.glob("*/metrics.json")}


@pytest.mark.slow
def test_study_through_joblib_matches_in_process_and_resumes(tmp_path: Path, tiny_data_dir: Path) -> None:
    corpus = tiny_data_dir / "corpus" / "tweets_unlabeled.txt"
    corpus.parent.mkdir(parents=True)
    corpus.write_text("\n".join(t for t, _ in make_posts(20, seed=7)) + "\n")
    bert = make_tiny_bert(tmp_path / "bert", n_classes=4)

    here = run_cli("train.py", *study_args(tmp_path, tiny_data_dir, bert, "inproc"), "hydra/launcher=basic")
    assert here.returncode == 0, here.stderr[-3000:]
    pool = study_args(tmp_path, tiny_data_dir, bert, "pool") + [
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
    ]
    done = run_cli("train.py", *pool)
    assert done.returncode == 0, done.stderr[-3000:]

    a, b = cell_metrics(tmp_path / "inproc"), cell_metrics(tmp_path / "pool")
    assert len(a) >= 3 and set(a) == set(b)
    assert a == b  # the same numbers, whichever process ran the cell
    assert all(m["train/n_pseudo"] > 0 for name, m in a.items() if "_pseudo_" in name)
    # phase 1 ran the job that fills the seed set's caches (teacher, pseudo corpus); cells keep the multirun layout
    prepared = [p.name for p in (tmp_path / "pool" / ".prepare").iterdir() if p.is_dir()]
    assert prepared and all(p.startswith("16_pseudo") for p in prepared)
    assert (tmp_path / "pool" / "16_none_tfidf_lr_seed0" / ".hydra" / "config.yaml").is_file()
    assert (tmp_path / "pool" / "report" / "summary.csv").is_file()

    before = {
        p: p.stat().st_mtime_ns
        for p in (tmp_path / "pool").rglob("*")
        if p.is_file() and "report" not in p.parts
    }
    again = run_cli("train.py", *pool)
    assert again.returncode == 0, again.stderr[-3000:]
    after = {
        p: p.stat().st_mtime_ns
        for p in (tmp_path / "pool").rglob("*")
        if p.is_file() and "report" not in p.parts
    }
    changed = {p.name for p in after if before.get(p) != after[p]}
    assert changed <= {"study.json", "study_status.json"}, changed  # nothing re-ran
