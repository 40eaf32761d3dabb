"""Every bad input a hostile new user tried: one `error: ...` line naming what and where, exit code 2.

A table, so each case stays fixed: (id, files to write, overrides, pattern the one line must match).
Runs in-process (composed config -> `run_task`), the way the entry points run it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from sentisynth.cli import CheckDirectories, register_resolvers, run_task
from tests.conftest import CONF, NAMES, make_posts

register_resolvers()


def _compose(root: str, overrides: list[str], tmp: Path) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(
            config_name=root,
            overrides=[
                f"paths.output_dir={tmp / 'run'}",
                f"paths.root_dir={tmp}",
                f"paths.cache_dir={tmp / 'cache'}",
                "logger=none",
                *overrides,
            ],
        )


def _csv(tmp: Path, rows: list[tuple[str, object]], name: str = "d.csv") -> Path:
    path = tmp / name
    path.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows))
    return path


def _jsonl(tmp: Path, rows: list[dict], name: str) -> Path:
    path = tmp / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _posts(n: int = 10) -> list[tuple[str, str]]:
    return [(t, NAMES[y]) for t, y in make_posts(n)]


def _files(kind: str) -> Callable[[Path], list[str]]:
    """Writers of the bad input for each case; each returns the overrides that point at it."""

    def write(tmp: Path) -> list[str]:
        files = ["data=files", "data.seed_size=8"]
        if kind == "label_true":
            rows = [{"text": t, "label": i % 2} for i, (t, _) in enumerate(_posts())] + [
                {"text": "x y", "label": True}
            ]
            return files + [f"data.path={_jsonl(tmp, rows, 'd.jsonl')}"]
        if kind == "header_only":
            return files + [f"data.path={_csv(tmp, [])}"]
        if kind == "single_class":
            return files + [f"data.path={_csv(tmp, [(t, 'joy') for t, _ in _posts()])}"]
        if kind == "class_without_examples":
            rows = [(t, y) for t, y in _posts() if y != "sadness"]
            return files + [f"data.path={_csv(tmp, rows)}", f"data.label_names=[{','.join(NAMES)}]"]
        if kind == "directory_as_file":
            (tmp / "adir").mkdir()
            return files + [f"data.path={tmp / 'adir'}"]
        if kind == "missing_file":
            return files + [f"data.path={tmp / 'nope.csv'}"]
        if kind == "torn_synthetic":
            path = _jsonl(tmp, [{"text": "so happy today", "label": 1}], "syn.jsonl")
            path.write_text(path.read_text() + '{"text": "half a li')
            return ["augment=synthetic", f"augment.path={path}", "augment.n=5", "data.seed_size=12"]
        if kind == "synthetic_dir":
            (tmp / "sdir").mkdir()
            return ["augment=synthetic", f"augment.path={tmp / 'sdir'}", "augment.n=5", "data.seed_size=12"]
        if kind == "read_only_cache":
            (tmp / "plain").write_text("a file, so nothing can be created below it")
            return ["data.seed_size=12", f"paths.cache_dir={tmp / 'plain' / 'cache'}"]
        raise KeyError(kind)

    return write


def _tiny(extra: list[str]) -> Callable[[Path], list[str]]:
    return lambda tmp: extra


def _leaky(tmp: Path) -> list[str]:
    test = (tmp / "data" / "tweeteval" / "emotion" / "test_text.txt").read_text().splitlines()
    path = _jsonl(tmp, [{"text": t, "label": 0} for t in test[:5]], "leak.jsonl")
    return [
        "augment=synthetic",
        f"augment.path={path}",
        "augment.n=5",
        "data.seed_size=12",
        "leak_guard.on_overlap=error",
    ]


def _bad_guidance(tmp: Path) -> list[str]:
    (tmp / "g.json").write_text('{"classes": {"anger": {"keywords": [')
    return ["data.seed_size=12", "guidance=shap", f"guidance.path={tmp / 'g.json'}"]


# (id, root config, writer of the input -> overrides, pattern of the one error line)
CASES = [
    (
        "label_true",
        "train",
        _files("label_true"),
        r"d\.jsonl: row 41, column 'label': label True is a boolean, not a class name or id \(known: 0, 1\)",
    ),
    ("header_only_csv", "train", _files("header_only"), r"d\.csv: no data rows \(only a header, or empty\)"),
    (
        "single_class_file",
        "train",
        _files("single_class"),
        r"d\.csv: a classifier needs at least 2 classes, found 1 \('joy'\)",
    ),
    (
        "class_without_examples",
        "train",
        _files("class_without_examples"),
        r"d\.csv \(before splitting\): class 'sadness' has no examples",
    ),
    ("directory_as_file", "train", _files("directory_as_file"), r"adir is a directory, not a file"),
    ("missing_file", "train", _files("missing_file"), r"missing file: .*nope\.csv"),
    (
        "seed_size_fraction",
        "train",
        _tiny(["data.seed_size=100.7"]),
        r"data\.seed_size must be a whole number of posts >= 0 or 'full', got 100\.7",
    ),
    (
        "seed_size_boolean",
        "train",
        _tiny(["data.seed_size=true"]),
        r"data\.seed_size must be a whole number of posts >= 0 or 'full', got True",
    ),
    (
        "seed_size_word",
        "train",
        _tiny(["data.seed_size=many"]),
        r"data\.seed_size must be a whole number of posts >= 0 or 'full', got 'many'",
    ),
    (
        "augment_n_negative",
        "train",
        _tiny(["data.seed_size=12", "augment=real", "augment.n=-0.5"]),
        r"augment\.n must be a whole number of posts >= 0 or 'full', got -0\.5",
    ),
    (
        "augment_n_word",
        "train",
        _tiny(["data.seed_size=12", "augment=real", "augment.n=abc"]),
        r"augment\.n must be a whole number of posts >= 0 or 'full', got 'abc'",
    ),
    (
        "augment_n_boolean",
        "train",
        _tiny(["data.seed_size=12", "augment=real", "augment.n=true"]),
        r"augment\.n must be a whole number of posts >= 0 or 'full', got True",
    ),
    (
        "torn_synthetic_jsonl",
        "train",
        _files("torn_synthetic"),
        r"syn\.jsonl: line 2: not valid JSON .*truncated\?",
    ),
    (
        "synthetic_path_directory",
        "train",
        _files("synthetic_dir"),
        r"sdir: no synthetic.jsonl, synthetic.parquet or dataset/ in this directory",
    ),
    (
        "leak_guard_error",
        "train",
        _leaky,
        r"leak guard: 5 training row\(s\) copy val/test posts, e\.g\. augment\.path row 1 \(same text as test post #0\)",
    ),
    (
        "leak_guard_off",
        "train",
        _tiny(["data.seed_size=12", "leak_guard.on_overlap=off"]),
        r"leak_guard\.on_overlap must be one of drop, error, got 'off'",
    ),
    (
        "read_only_cache_dir",
        "train",
        _files("read_only_cache"),
        r"paths\.cache_dir=.*plain/cache cannot be written",
    ),
    (
        "truncated_guidance_json",
        "generate",
        _bad_guidance,
        r"g\.json \(guidance\.path\): not valid JSON \(line 1, column \d+: .*\); truncated\?",
    ),
]


def test_read_only_run_directory_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Hydra creates the run directory before the task: the callback checks it first."""
    (tmp_path / "plain").write_text("x")
    cfg = DictConfig({"hydra": {"run": {"dir": str(tmp_path / "plain" / "run")}}})
    with pytest.raises(SystemExit) as exit_info:
        CheckDirectories().on_run_start(config=cfg)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith(
        f"error: hydra.run.dir={tmp_path / 'plain' / 'run'} cannot be written"
    )


def test_null_texts_are_dropped_and_counted_never_nan(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """JSONL `"text": null` rows (any split) are dropped and counted; no "nan" reaches predictions.csv."""
    import pandas as pd

    from sentisynth.train import run

    rows = [{"text": t, "label": y} for t, y in _posts(15)]
    rows[3]["text"] = rows[20]["text"] = rows[41]["text"] = None
    path = _jsonl(tmp_path, rows, "nulls.jsonl")
    cfg = _compose("train", ["data=files", f"data.path={path}", "data.seed_size=20"], tmp_path)
    with caplog.at_level("WARNING"):
        run(cfg)
    assert "dropped 3 empty text(s) (3 of them null)" in caplog.text
    pred = pd.read_csv(tmp_path / "run" / "predictions.csv", keep_default_na=False)
    assert not (pred.text.str.lower() == "nan").any() and (pred.text != "").all()
    summary = json.loads((tmp_path / "run" / "data_summary.json").read_text())
    assert summary["n_seed"] + summary["n_pool"] + summary["n_val"] + summary["n_test"] == 60 - 3


def test_synthetic_nulls_dropped_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from sentisynth.augment import read_labelled_jsonl

    path = _jsonl(
        tmp_path,
        [{"text": None, "label": 0}, {"text": " ", "label": 1}, {"text": "ok then", "label": 2}],
        "s.jsonl",
    )
    with caplog.at_level("WARNING"):
        rows = read_labelled_jsonl(path, NAMES)
    assert [r["text"] for r in rows] == ["ok then"] and "dropped 2 empty or null text(s)" in caplog.text


def test_duplicate_rows_dropped_before_splitting(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from sentisynth.data import load_files

    rows = _posts(10)
    path = _csv(tmp_path, rows + rows[:7] + [(rows[0][0].upper(), "joy" if rows[0][1] != "joy" else "anger")])
    with caplog.at_level("WARNING"):
        ds = load_files(path=str(path))
    texts = [" ".join(t.lower().split()) for s in (ds.train, ds.val, ds.test) for t in s.texts]
    assert len(texts) == len(set(texts)) == 40
    assert (
        "dropped 8 duplicate row(s) before splitting (same text; 1 of them with a different label"
        in caplog.text
    )
    assert any("8 duplicate row(s)" in n for n in ds.notes)


@pytest.mark.slow
def test_stage_bogus_exits_2(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    proc = run_cli("generate.py", "stage=bogus", "logger=none", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == "error: stage='bogus' is not a stage of generate.py (known: guidance, generate)"
    )


# ---- round 2 (issue 26): each row of the table --------------------------------------------------


def _disguise(text: str, how: str) -> str:
    if how == "zero_width":
        return "\u200b".join(text)
    if how == "fullwidth":
        return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else "\u3000" if c == " " else c for c in text)
    cyrillic = str.maketrans("aeopcxyAEOPCXTHKM", "аеорсхуАЕОРСХТНКМ")
    return text.translate(cyrillic)


@pytest.mark.parametrize("how", ["zero_width", "fullwidth", "cyrillic"])
def test_disguised_test_posts_are_dropped_by_the_leak_guard(tiny_data_dir: Path, how: str) -> None:
    """Row 1: test posts with zero-width characters, fullwidth ASCII or Cyrillic look-alikes are still copies."""
    import numpy as np

    from sentisynth.data import Split, load_data
    from sentisynth.filters.leak import guard_training_set

    data = load_data("tweet_eval", seed_size=20, seed=0, task="emotion", data_dir=str(tiny_data_dir))
    texts = [_disguise(t, how) for t in data.test.texts]
    assert all(d != t for d, t in zip(texts, data.test.texts))
    train = Split(texts, np.asarray(data.test.labels), np.arange(len(texts)))
    keep, counts = guard_training_set(train, ["synthetic"] * len(texts), data)
    assert len(keep) == 0 and counts["leak/dropped"] == len(texts)


def test_dedup_folds_disguises_within_a_synthetic_set() -> None:
    from sentisynth.filters import FilterContext
    from sentisynth.filters.dedup import DedupFilter

    text = "so happy with my new phone today"
    samples = [
        {"id": str(i), "text": t, "label": 0}
        for i, t in enumerate(
            [text, _disguise(text, "zero_width"), _disguise(text, "fullwidth"), _disguise(text, "cyrillic")]
        )
    ]
    kept, dropped = DedupFilter(against=("test",)).apply(samples, FilterContext(data=None))
    assert [s["id"] for s in kept] == ["0"] and len(dropped) == 3


def _saved_tfidf(tmp: Path) -> Path:
    import numpy as np

    from sentisynth.classifiers.io import save_classifier
    from sentisynth.classifiers.tfidf import TfidfClassifier

    rows = make_posts(8)
    clf = TfidfClassifier("lr", n_classes=4).fit([t for t, _ in rows], np.array([y for _, y in rows]))
    return save_classifier(clf, tmp / "model", NAMES)


@pytest.mark.parametrize("damage", ["flipped_bytes", "reordered_labels", "broken_index", "missing_file"])
def test_damaged_saved_model_is_refused_naming_the_file(tmp_path: Path, damage: str) -> None:
    """Row 2 (and the last row): a sealed model whose files changed is refused at load, naming the file."""
    from sentisynth.classifiers.io import INDEX_FILE
    from sentisynth.data import DataError
    from sentisynth.predict import load_predictor

    path = _saved_tfidf(tmp_path)
    assert load_predictor(path).predict(["so happy"])  # sound: loads
    if damage == "flipped_bytes":
        raw = bytearray((path / "tfidf_arrays.npz").read_bytes())
        raw[-200:-100] = bytes(b ^ 0xFF for b in raw[-200:-100])
        (path / "tfidf_arrays.npz").write_bytes(bytes(raw))
        name = "tfidf_arrays.npz"
    elif damage == "reordered_labels":
        meta = json.loads((path / INDEX_FILE).read_text())
        meta["label_names"] = meta["label_names"][::-1]
        (path / INDEX_FILE).write_text(json.dumps(meta, indent=2))
        name = INDEX_FILE
    elif damage == "broken_index":
        (path / INDEX_FILE).write_text('{"kind": "tfidf", "label_')
        name = INDEX_FILE
    else:
        (path / "tfidf.json").unlink()
        name = "tfidf.json"
    with pytest.raises(DataError, match=rf"model directory .*model is damaged: {re.escape(name)}"):
        load_predictor(path)


def test_unsealed_broken_model_file_names_the_file(tmp_path: Path) -> None:
    from sentisynth.cache import SEAL
    from sentisynth.data import DataError
    from sentisynth.predict import load_predictor

    path = _saved_tfidf(tmp_path)
    (path / SEAL).unlink()  # an older version's folder: not verified, but a broken file is still named
    (path / "tfidf.json").write_text("{")
    with pytest.raises(DataError, match=r"tfidf\.json: not valid JSON .*damaged or truncated"):
        load_predictor(path)


def test_predict_one_row_per_line_strings_only(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Row 6: blank lines keep their row; a plain string is one text; non-strings are one clear error."""
    import pandas as pd

    from sentisynth.data import DataError
    from sentisynth.predict import load_predictor, main

    path = _saved_tfidf(tmp_path)
    (tmp_path / "t.txt").write_text("so happy\n\nangry now\n   \nsad\nfine\n")
    assert main([str(path), str(tmp_path / "t.txt"), "--out", str(tmp_path / "p.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "p.csv", keep_default_na=False)) == 6
    assert "2 blank line(s)" in capsys.readouterr().err
    model = load_predictor(path)
    assert len(model.predict("a plain string")) == 1
    assert model.predict([]) == [] and model.predict_proba([]).shape == (0, 4)
    for bad, what in (([None], "NoneType"), ([5], "int"), (5, "int")):
        with pytest.raises(DataError, match=what):
            model.predict(bad)


def test_case_and_space_label_variants_are_merged_and_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Row: `Joy`/`joy`, `Anger `/`anger` in one file: 4 classes, with a warning naming the pairs."""
    from sentisynth.data import load_files

    rows = [
        (t, {"joy": "Joy", "anger": "Anger "}.get(y, y) if i % 3 == 0 else y)
        for i, (t, y) in enumerate(_posts())
    ]
    path = _csv(tmp_path, rows)
    with caplog.at_level("WARNING"):
        ds = load_files(path=str(path))
    assert ds.label_names == sorted(NAMES)
    assert (
        "merged labels that differ only by case or spaces: 'Anger ' -> 'anger', 'Joy' -> 'joy'" in caplog.text
    )
    caplog.clear()
    with caplog.at_level("WARNING"):
        kept = load_files(path=str(path), normalize_labels=False)
    assert len(kept.label_names) == 6 and "kept as separate classes" in caplog.text


def test_list_typed_parquet_labels_are_their_element(tmp_path: Path) -> None:
    import pandas as pd

    from sentisynth.data import DataError, load_files

    rows = _posts()
    pd.DataFrame({"text": [t for t, _ in rows], "label": [[y] for _, y in rows]}).to_parquet(
        tmp_path / "d.parquet"
    )
    assert load_files(path=str(tmp_path / "d.parquet")).label_names == sorted(NAMES)
    pd.DataFrame({"text": ["a b", "c d"], "label": [["joy", "anger"], ["joy"]]}).to_parquet(
        tmp_path / "m.parquet"
    )
    with pytest.raises(DataError, match=r"m\.parquet: row 1, column 'label': 2 labels .*multi-label"):
        load_files(path=str(tmp_path / "m.parquet"))


def _label_file(kind: str) -> Callable[[Path], list[str]]:
    def write(tmp: Path) -> list[str]:
        posts = _posts()
        if kind == "mixed_ids_names":
            rows = [{"text": t, "label": NAMES.index(y) if i % 2 else y} for i, (t, y) in enumerate(posts)]
        elif kind == "all_bool":
            rows = [{"text": t, "label": bool(i % 2)} for i, (t, _) in enumerate(posts)]
        else:
            raise KeyError(kind)
        return ["data=files", "data.seed_size=8", f"data.path={_jsonl(tmp, rows, 'd.jsonl')}"]

    return write


def _table_file(kind: str) -> Callable[[Path], list[str]]:
    def write(tmp: Path) -> list[str]:
        posts = _posts()
        if kind == "tsv_extra_field":
            path = tmp / "d.tsv"
            lines = [f"{t}\t{y}" for t, y in posts]
            lines[0] = lines[0].replace(" ", "\t", 1)
            path.write_text("text\tlabel\n" + "\n".join(lines) + "\n")
        elif kind == "csv_repeated_header":
            path = _csv(tmp, posts[:20] + [("text", "label")] + posts[20:])
        elif kind == "200_classes":
            path = _csv(
                tmp,
                [(f"post number {i} about topic {c} here", f"c{c}") for c in range(200) for i in range(2)],
            )
        else:
            path = _csv(tmp, posts)
            return ["data=files", "data.seed_size=8", f"data.path={path}", f"data.fractions={kind}"]
        return ["data=files", "data.seed_size=8", f"data.path={path}"]

    return write


# Round 2: (id, root, writer -> overrides, pattern). The schema rows give key, value and range.
CASES_2 = [
    (
        "epochs_0",
        ["classifier=transformer", "classifier.epochs=0"],
        r"classifier\.epochs must be an integer in \[1, 100000\], got 0",
    ),
    (
        "lr_nan",
        ["classifier=transformer", "classifier.lr=nan"],
        r"classifier\.lr must be a number in \(0, 1\], got nan",
    ),
    (
        "max_length_0",
        ["classifier=transformer", "classifier.max_length=0"],
        r"classifier\.max_length must be an integer in \[1, ",
    ),
    ("seed_negative", ["seed=-1"], r"^error: seed must be an integer in \[0, 4294967295\], got -1$"),
    ("seed_fraction", ["seed=1.5"], r"^error: seed must be an integer .*got 1\.5$"),
    ("seed_word", ["seed=abc"], r"^error: seed must be an integer .*got 'abc'$"),
    ("seed_huge", ["seed=1e20"], r"^error: seed must be an integer .*got 1e\+20$"),
    (
        "n_per_class_negative",
        ["generator.budget.n_per_class=-3"],
        r"generator\.budget\.n_per_class must be an integer in \[1, inf\], got -3",
    ),
    (
        "temperature_negative",
        ["generator.sampling.temperature=-1"],
        r"generator\.sampling\.temperature must be a number in \(0, 100\], got -1",
    ),
    (
        "temperature_zero",
        ["generator.sampling.temperature=0"],
        r"generator\.sampling\.temperature must be a number in \(0, 100\], got 0",
    ),
    (
        "top_p_2",
        ["generator.sampling.top_p=2"],
        r"generator\.sampling\.top_p must be a number in \(0, 1\], got 2",
    ),
    (
        "leak_threshold",
        ["leak_guard.threshold=1.5"],
        r"^error: leak_guard\.threshold must be a number in \(0, 1\], got 1\.5$",
    ),
    (
        "dedup_threshold",
        ["filters.dedup.threshold=2"],
        r"filters\.dedup\.threshold must be a number in \(0, 1\], got 2",
    ),
    (
        "perplexity_percentile",
        ["filters.perplexity.percentile=150"],
        r"filters\.perplexity\.percentile must be",
    ),
    (
        "teacher_tau",
        ["filters.teacher.tau=-0.1"],
        r"filters\.teacher\.tau must be a number in \[0, 1\] or 'auto', got -0\.1",
    ),
    (
        "fractions_negative",
        ["data=files", "data.fractions=[1.2,-0.1,-0.1]"],
        r"data\.fractions\[i\] must be a number in \[0, 1\], got 1\.2",
    ),
]
CASES += [(name, "train", _tiny(["data.seed_size=12", *ov]), pattern) for name, ov, pattern in CASES_2]
CASES += [
    (
        "fractions_zero_test",
        "train",
        _table_file("[0.9,0.1,0.0]"),
        r"data\.fractions=\[0\.9, 0\.1, 0\.0\]: the test share 0\.0 must be in \(0, 1\]",
    ),
    (
        "labels_mix_ids_and_names",
        "train",
        _label_file("mixed_ids_names"),
        r"d\.jsonl: column 'label' mixes class ids and names, e\.g\. \d \(row 2\) and '\w+' \(row 1\)",
    ),
    (
        "labels_all_boolean",
        "train",
        _label_file("all_bool"),
        r"d\.jsonl: column 'label' holds only true/false values; give data\.label_names",
    ),
    (
        "tsv_row_extra_field",
        "train",
        _table_file("tsv_extra_field"),
        r"d\.tsv: row 1 \(line 2\) has 3 fields, the header has 2",
    ),
    (
        "csv_repeated_header",
        "train",
        _table_file("csv_repeated_header"),
        r"d\.csv: row 21 \(line 22\) repeats the header",
    ),
    (
        "200_classes_2_posts",
        "train",
        _table_file("200_classes"),
        r"d\.csv: 200 of 200 classes have fewer than 3 posts .*training split would be empty",
    ),
]


@pytest.mark.parametrize(("root", "write", "pattern"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gives_one_line_and_exit_2(
    root: str,
    write: Callable[[Path], list[str]],
    pattern: str,
    tmp_path: Path,
    tiny_data_dir: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    from sentisynth.generation import run_generate_stage
    from sentisynth.train import run

    cfg = _compose(root, [f"paths.data_dir={tiny_data_dir}", *write(tmp_path)], tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        run_task(run if root == "train" else run_generate_stage, cfg)
    assert exit_info.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert re.search(pattern, lines[0]), lines[0]


def _multirun_with_bad_jobs(root: Path) -> None:
    from tests.test_report import _job

    for n, seed in enumerate((0, 1, 2)):
        _job(root, n, "none", 250, seed, {"anger": 0.5 + seed / 100, "optimism": 0.3})
        (root / str(n) / ".hydra" / "overrides.yaml").write_text(f"- seed={seed}\n- augment=none\n")
    (root / "1" / "metrics.json").unlink()  # unfinished job
    (root / "2" / "metrics.json").write_text('{"test/macro_f1": 0.4, "test/f1')  # broken job


@pytest.mark.parametrize("tool", ["aggregate", "report"])
def test_multirun_jobs_with_missing_or_broken_metrics_are_named_and_counted(
    tmp_path: Path, tool: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Row: a job without metrics.json, or with a broken one: both tools skip it, name it, count it."""
    from sentisynth.aggregate import aggregate
    from sentisynth.report import build_report

    root = tmp_path / "multirun"
    _multirun_with_bad_jobs(root)
    with caplog.at_level("WARNING"):
        if tool == "aggregate":
            summary = aggregate(root)
            header = (root / "summary.md").read_text()
            assert summary["n_seeds"].tolist() == [1]
        else:
            header = build_report(root).read_text()
    assert "**2 job(s) skipped** (missing or broken metrics.json)" in header
    assert f"{root / '1'}: no metrics.json" in caplog.text
    assert re.search(
        r"2/metrics\.json: not valid JSON \(line 1, column \d+: .*\); the file is damaged", caplog.text
    )


def test_full_disk_is_one_line_naming_the_file_and_that_rerunning_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Row: `OSError: [Errno 27] File too large` (ulimit -f) while writing output: one line, the path."""
    import errno
    import os

    from sentisynth.utils import write_json

    def full(fd: int) -> None:
        raise OSError(errno.EFBIG, "File too large")

    monkeypatch.setattr(os, "fsync", full)
    cfg = DictConfig({"paths": {"output_dir": str(tmp_path / "run")}})
    with pytest.raises(SystemExit) as exit_info:
        run_task(lambda cfg: write_json(tmp_path / "run" / "metrics.json", {"a": 1}), cfg)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: cannot write {tmp_path / 'run' / 'metrics.json'}: file too large (disk full or a file-size "
        "limit); free space and run the same command again: it resumes from the finished, cached work"
    )
    assert not list((tmp_path / "run").glob("*.tmp"))  # no partial file left


def test_many_classes_confusion_plot_is_a_summary(tmp_path: Path) -> None:
    """Row: 200 classes: a fixed-size heat map, not a 6 MB figure with 40,000 labelled cells."""
    import time

    import numpy as np

    from sentisynth.evaluation import plot_confusion

    rng = np.random.default_rng(0)
    cm = rng.integers(0, 3, size=(200, 200))
    t0 = time.perf_counter()
    path = plot_confusion(cm, [f"c{i}" for i in range(200)], tmp_path / "cm.png", title="test")
    assert time.perf_counter() - t0 < 10 and path.stat().st_size < 500_000


def test_split_seed_fixes_val_and_test_across_seeds(tmp_path: Path) -> None:
    """Row: `data=files` over several `seed`s: the same val/test posts (data.split_seed), other seed sets."""
    from sentisynth.data import load_data

    path = _csv(tmp_path, _posts(20))
    runs = [load_data("files", seed_size=12, seed=s, path=str(path), split_seed=0) for s in (0, 1, 2)]
    assert len({tuple(r.test.texts) for r in runs}) == 1 and len({tuple(r.val.texts) for r in runs}) == 1
    assert len({tuple(sorted(r.seed.texts)) for r in runs}) == 3
    follow = [load_data("files", seed_size=12, seed=s, path=str(path), split_seed=None) for s in (0, 1)]
    assert follow[0].test.texts != follow[1].test.texts  # split_seed=null: the old behaviour


def test_transformer_folder_with_flipped_weight_bytes_is_refused_before_loading(tmp_path: Path) -> None:
    """Row 2, transformer side: `model.safetensors` with 4 KB flipped is refused by the seal, not loaded."""
    from sentisynth.cache import problem, seal
    from sentisynth.classifiers.io import INDEX_FILE, load_classifier
    from sentisynth.data import DataError

    path = tmp_path / "model"
    path.mkdir()
    (path / INDEX_FILE).write_text(json.dumps({"kind": "transformer", "label_names": NAMES}))
    (path / "model.safetensors").write_bytes(bytes(range(256)) * 64)
    seal(path)
    raw = bytearray((path / "model.safetensors").read_bytes())
    raw[:4096] = bytes(b ^ 0x5A for b in raw[:4096])
    (path / "model.safetensors").write_bytes(bytes(raw))
    assert "model.safetensors" in (problem(path) or "")  # `python -m sentisynth.cache check` agrees
    with pytest.raises(DataError, match=r"is damaged: model\.safetensors does not match its recorded sha256"):
        load_classifier(path)


def test_sampling_params_refuse_temperature_zero_unless_greedy() -> None:
    """Row: temperature 0 was run at 1.0 while the cache key said 0; now an error, or greedy with
    do_sample=false (never a silent substitute)."""
    from sentisynth.errors import ConfigError
    from sentisynth.generation.sampling import SamplingParams

    with pytest.raises(ConfigError, match=r"temperature must be > 0 when sampling, got 0 .*do_sample=false"):
        SamplingParams(temperature=0)
    with pytest.raises(ConfigError, match=r"top_p must be in \(0, 1\], got 2"):
        SamplingParams(top_p=2)
    assert SamplingParams(temperature=0, do_sample=False).temperature == 0


def test_few_val_test_posts_per_class_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from sentisynth.data import load_files

    with caplog.at_level("WARNING"):
        load_files(path=str(_csv(tmp_path, _posts(10))), fractions=[0.8, 0.1, 0.1])
    assert re.search(
        r"gets about 1\.0 post\(s\) in val or test: its scores rest on very few posts", caplog.text
    )


def test_disguised_test_posts_in_a_synthetic_file_are_not_trained_on(
    tmp_path: Path, tiny_data_dir: Path
) -> None:
    """Row 1 end to end: a synthetic file of disguised test posts (zero-width, fullwidth, Cyrillic) adds none."""
    from sentisynth.train import run

    test = (tiny_data_dir / "tweeteval" / "emotion" / "test_text.txt").read_text().splitlines()
    hows = ("zero_width", "fullwidth", "cyrillic")
    rows = [{"text": _disguise(t, hows[i % 3]), "label": i % 4} for i, t in enumerate(test)]
    path = _jsonl(tmp_path, rows, "disguised.jsonl")
    cfg = _compose(
        "train",
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
    metrics = run(cfg)
    assert metrics["train/n_synthetic"] == 0 and metrics["leak/dropped_from_file"] == len(test)
