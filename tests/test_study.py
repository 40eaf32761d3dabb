"""Studies (`train.py experiment=...` with a `study` block): every cell composes; a small study runs,
resumes without redoing finished cells, and its report names every arm."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from sentisynth.cli import register_resolvers
from sentisynth.study import phase_one, plan_cells, prepare_jobs
from sentisynth.utils import to_plain
from tests.conftest import CONF, run_cli

register_resolvers()
STUDIES = ["offline_tweeteval", "paper_tweeteval", "sentisynth_sst2", "generator_routes"]


@pytest.mark.slow  # > 5 s: composes every cell of a study
@pytest.mark.parametrize("experiment", STUDIES)
def test_every_cell_of_a_study_composes(experiment: str, tmp_path: Path) -> None:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        base = [f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path}"]
        study = to_plain(compose("train", overrides=[f"experiment={experiment}", *base]).study)
        cells = plan_cells(study)
        assert len({c.name for c in cells}) == len(cells)
        one_per_kind = {
            (c.arm, c.classifier): c for c in cells
        }  # sizes and seeds do not change what composes
        for cell in one_per_kind.values():
            cfg = compose("train", overrides=[*cell.overrides, *base])
            assert cfg.classifier._target_ and cfg.augment._target_
            strategy = {"diverse": "shap", "adaptive_all": "adaptive"}.get(cell.arm, cell.arm)
            if strategy in ("naive", "shap", "adaptive"):
                assert cfg.augment.generate.guidance.name == strategy
                if experiment == "offline_tweeteval":  # each classifier's synthetic-row weight, chosen on val
                    weight = {"tfidf_lr": 0.25, "tfidf_xgb": 0.5, "transformer": 1.0}[cell.classifier]
                    assert cfg.augment.weight == weight
                    # the ngram generator (no pretraining) for its 60-minute budget
                    assert cfg.augment.generate.generator._target_.endswith("NgramGenerator")
            if cell.arm == "diverse":
                assert (
                    cfg.augment.generate.guidance.attributes.enabled
                    and "embed_dedup" in cfg.augment.generate.filters
                )
            if cell.arm == "adaptive_all":
                assert cfg.augment.generate.guidance.deliver == "all"
            if strategy == "adaptive":  # the loop refits the cell's own classifier
                assert cfg.augment.generate.downstream_classifier == cfg.classifier
    if (
        experiment == "offline_tweeteval"
    ):  # 7 arms x 2 sizes, 3 seeds; real at 4 augment.n, the others at 1000
        arms = {
            "none": [None],
            "real": [100, 200, 500, 1000],
            "naive": [1000],
            "shap": [1000],
            "diverse": [1000],
        }
        arms["adaptive"] = arms["adaptive_all"] = [1000]
        assert {c.arm for c in cells} == set(arms)
        assert {c.seed_size for c in cells} == {500, 1000}
        seeds = {c.seed for c in cells}
        assert seeds == {0, 1, 2}
        for arm, axis in arms.items():
            assert {c.augment_n for c in cells if c.arm == arm} == set(axis)
            for n in axis:  # seed only adds nothing: once, not per n
                for size in (500, 1000):
                    here = [c for c in cells if c.arm == arm and c.seed_size == size and c.augment_n == n]
                    assert {c.seed for c in here if c.classifier == "tfidf_lr"} == seeds
                    assert {c.seed for c in here if c.classifier == "tfidf_xgb"} == seeds
                    minilm = [c for c in here if c.classifier == "transformer"]
                    expect = (
                        size == 1000 and n in (None, 1000) and not arm.startswith("adaptive")
                    )  # no MiniLM loop
                    assert len(minilm) == (1 if expect else 0)
        assert len(cells) == 3 * 2 * 2 * 10 + 5
        assert all("save_predictions=true" in c.overrides for c in cells)
        assert ["adaptive_all", "shap"] in study["compare"] and ["adaptive", "shap"] in study["compare"]


def test_an_arm_carries_its_own_augment_n_and_classifiers() -> None:
    """`study.arms.real: {overrides, augment_n}`: the real arm's learning curve (+100 ... +1000) while the list
    form keeps the study's axis; `classifiers` limits an arm; 0 (the `none` arm) and unknown keys are errors."""
    study = {
        "seeds": [0],
        "seed_sizes": [500],
        "augment_n": [1000],
        "arms": {
            "none": ["augment=none"],
            "real": {"overrides": ["augment=real"], "augment_n": [100, 200, 500, 1000]},
            "shap": ["augment=synthetic_shap"],
            "adaptive": {"overrides": ["augment=synthetic_adaptive"], "classifiers": ["tfidf_lr"]},
        },
        "classifiers": {"tfidf_lr": {"seeds": "all"}, "tfidf_xgb": {"seeds": "all"}},
    }
    cells = plan_cells(study)
    axis = {arm: sorted({c.augment_n or 0 for c in cells if c.arm == arm}) for arm in study["arms"]}
    assert axis == {"none": [0], "real": [100, 200, 500, 1000], "shap": [1000], "adaptive": [1000]}
    assert {c.classifier for c in cells if c.arm == "adaptive"} == {"tfidf_lr"}
    assert len(cells) == 2 * (1 + 4 + 1) + 1
    real = [c for c in cells if c.arm == "real" and c.classifier == "tfidf_lr"]
    assert [c.name for c in real] == [f"500_real_n{n}_tfidf_lr_seed0" for n in (100, 200, 500, 1000)]
    assert all(c.overrides[-1] == f"augment.n={c.augment_n}" for c in real)
    # an adaptive arm's set depends on the classifier: its launcher job is per classifier
    assert ".prepare/500_adaptive_tfidf_lr_seed0" in dict(prepare_jobs(cells, []))
    from sentisynth.errors import DataError

    for arms, match in (
        ({"real": {"overrides": ["augment=real"], "augment_n": [0, 100]}}, "`none` arm"),
        ({"real": {"overrides": ["augment=real"], "n": [100]}}, "unknown keys"),
        ({"real": {"overrides": ["augment=real"], "classifiers": ["svm"]}}, "not in study.classifiers"),
    ):
        with pytest.raises(DataError, match=match):
            plan_cells({**study, "arms": arms})


def test_classifier_spec_limits_an_expensive_classifier_to_a_slice() -> None:
    """`{seeds, seed_sizes, augment_n}` in a classifier's spec: the transformer runs on seed 0, seed size 1000
    and +1000 only (its seed-only cell too: `none` adds nothing, so it has no augment.n), LR everywhere."""
    study = {
        "seeds": [0, 1],
        "seed_sizes": [500, 1000],
        "augment_n": [200, 1000],
        "arms": {"none": ["augment=none"], "real": ["augment=real"]},
        "classifiers": {
            "tfidf_lr": {"seeds": "all"},
            "transformer": {"seeds": [0], "seed_sizes": [1000], "augment_n": [1000]},
        },
    }
    cells = plan_cells(study)
    assert len([c for c in cells if c.classifier == "tfidf_lr"]) == 2 * 2 * 3
    minilm = sorted((c.seed, c.seed_size, c.arm, c.augment_n) for c in cells if c.classifier == "transformer")
    assert minilm == [(0, 1000, "none", None), (0, 1000, "real", 1000)]


def test_classifier_generation_overrides_reach_only_its_generating_cells() -> None:
    """A classifier's `generation_overrides` (its synthetic-row weight) go to its generating-arm cells, after
    the study's; the real arm and other classifiers never see them."""
    study = {
        "seeds": [0],
        "seed_sizes": [1000],
        "arms": {"real": ["augment=real"], "naive": ["augment=synthetic_naive"]},
        "generation_overrides": ["augment.weight=1.0"],
        "classifiers": {
            "tfidf_lr": {"seeds": "all", "generation_overrides": ["augment.weight=0.25"]},
            "tfidf_xgb": {"seeds": "all"},
        },
    }
    cells = {(c.arm, c.classifier): list(c.overrides) for c in plan_cells(study)}
    assert cells[("naive", "tfidf_lr")][-2:] == ["augment.weight=1.0", "augment.weight=0.25"]  # the last wins
    assert cells[("naive", "tfidf_xgb")][-1] == "augment.weight=1.0"
    assert not any("augment.weight" in o for o in cells[("real", "tfidf_lr")] + cells[("real", "tfidf_xgb")])


def test_small_augment_n_draws_from_the_large_generated_set(tmp_path: Path) -> None:
    """The +200 and +1000 cells of a generating arm ask the generator for the same per-class counts (one cached
    set), and differ only in how many they draw."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        base = [f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path}"]
        study = to_plain(compose("train", overrides=["experiment=offline_tweeteval", *base]).study)
        study["augment_n"] = [200, 1000]  # the experiment runs its generating arms at +1000 only
        cells = [
            c
            for c in plan_cells(study)
            if c.arm == "shap" and c.seed == 0 and c.seed_size == 500 and c.classifier == "tfidf_lr"
        ]
        assert sorted(c.augment_n for c in cells) == [200, 1000]
        augments = [instantiate_augment(compose("train", overrides=[*c.overrides, *base])) for c in cells]
    from sentisynth.data import LowResourceData, Split

    class Fake:  # class counts of a 500-post seed and a large pool are all class_counts needs
        n_classes = 4
        seed = Split(["x"] * 500, np.repeat(np.arange(4), [215, 105, 45, 135]), np.arange(500))
        pool = Split(["x"] * 2000, np.repeat(np.arange(4), 500), np.arange(2000))

    fake: LowResourceData = Fake()  # type: ignore[assignment]
    counts = [a.class_counts(fake).tolist() for a in augments]
    assert counts[0] == counts[1] and sum(counts[0]) == 1000
    assert sorted(a.n for a in augments) == [200, 1000]


def instantiate_augment(cfg: object) -> object:
    from hydra.utils import instantiate

    return instantiate(cfg.augment)


@pytest.mark.slow
def test_small_study_runs_resumes_and_reports(tmp_path: Path, tiny_data_dir: Path) -> None:
    study_dir = tmp_path / "study"
    args = [
        "experiment=offline_tweeteval",
        "hydra/launcher=basic",  # in this process (the experiment's default is 2 joblib workers)
        "study.seeds=[0,1]",
        "study.seed_sizes=[16,24]",
        "study.augment_n=[200]",
        "~study.arms",
        "+study.arms={none:['augment=none'],real:['augment=real']}",
        "~study.classifiers",
        "+study.classifiers={tfidf_lr:{seeds:all}}",
        f"study.dir={study_dir}",
        f"paths.data_dir={tiny_data_dir}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.run.dir={tmp_path / 'run'}",
        "logger=none",
    ]
    done = run_cli("train.py", *args)
    assert done.returncode == 0, done.stderr[-3000:]
    status = json.loads((study_dir / "study_status.json").read_text())
    assert len(status["cells"]) == 8 and all(c["status"] == "done" for c in status["cells"].values())
    first = {p.parent.name: p.stat().st_mtime_ns for p in study_dir.glob("*/metrics.json")}
    assert len(first) == 8
    # the cells got the study's common overrides and the user's command-line ones
    cfg = OmegaConf.load(study_dir / "16_real_n200_tfidf_lr_seed1" / ".hydra" / "config.yaml")
    assert cfg.augment.n == 200 and cfg.paths.data_dir == str(tiny_data_dir) and cfg.seed == 1

    # resume: delete one finished cell; the re-run redoes that one only
    for p in (study_dir / "24_none_tfidf_lr_seed0").iterdir():
        if p.is_file():
            p.unlink()
    done = run_cli("train.py", *args)
    assert done.returncode == 0, done.stderr[-3000:]
    second = {p.parent.name: p.stat().st_mtime_ns for p in study_dir.glob("*/metrics.json")}
    assert set(second) == set(first)
    changed = {k for k in first if first[k] != second[k]}
    assert changed == {"24_none_tfidf_lr_seed0"}

    summary = pd.read_csv(study_dir / "report" / "summary.csv")
    assert set(summary["strategy"]) == {"none", "real"}
    assert set(summary["seed_size"].astype(str)) == {"16", "24"}
    assert (summary["n_seeds"] == 2).all()
    runs = pd.read_csv(study_dir / "report" / "runs.csv")
    one = runs[(runs.strategy == "real") & (runs.seed_size == 24) & (runs.seed == 1)].iloc[0]
    metrics = json.loads((study_dir / "24_real_n200_tfidf_lr_seed1" / "metrics.json").read_text())
    assert one["test/macro_f1"] == pytest.approx(metrics["test/macro_f1"])


def test_launcher_phase_one_is_one_job_per_seed_set_and_arm_ordered_to_keep_workers_busy() -> None:
    """Phase 1 of a launcher study: one cache-filling job per (seed, seed size, arm), whatever the augment.n
    (the +200 cells draw from the +1000 set); the first generating job leads (it builds the generator's
    pretraining), then the teacher-only jobs, then the cells that read no cache, then the other generating jobs."""
    study = {
        "seeds": [0, 1],
        "seed_sizes": [500],
        "augment_n": [200, 1000],
        "arms": {
            "none": ["augment=none"],
            "real": ["augment=real"],
            "pseudo": ["augment=pseudo"],
            "naive": ["augment=synthetic_naive"],
        },
        "classifiers": {"tfidf_lr": {"seeds": "all"}, "tfidf_xgb": {"seeds": "all"}},
    }
    cells = plan_cells(study)
    jobs = phase_one(cells, ["logger=none"])
    names = [name for name, _ in jobs]
    assert names[:3] == [".prepare/500_naive_seed0", ".prepare/500_pseudo_seed0", ".prepare/500_pseudo_seed1"]
    free = [c.name for c in cells if c.arm in ("none", "real")]
    assert names[3 : 3 + len(free)] == free and len(free) == 2 * 2 * (1 + 2)
    assert names[3 + len(free) :] == [".prepare/500_naive_seed1"]
    assert all(ov[-1] == "logger=none" for _, ov in jobs)  # the user's overrides reach every job
    assert len(prepare_jobs(cells, [])) == 4  # 2 seeds x (pseudo, naive), not x augment.n x classifier


def test_plan_only_prints_the_cells_and_runs_nothing(tmp_path: Path) -> None:
    """`study.plan_only=true`: the cells per arm and augment.n, then every cell's name; no study directory."""
    from sentisynth.study import run_study

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        base = [f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path}"]
        cfg = compose("train", overrides=["experiment=offline_tweeteval", "study.plan_only=true", *base])
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        counts = run_study(cfg)
    lines = out.getvalue().splitlines()
    assert counts["study/cells"] == 125 == int(lines[0].split()[0]) and counts["study/done"] == 0
    assert lines[1].split()[:3] == ["none", "13", "(tfidf_lr,"]
    assert lines[-1] == "1000_adaptive_all_n1000_tfidf_xgb_seed2" and len(lines) == 1 + 10 + 125
    assert not (tmp_path / "outputs").exists()
