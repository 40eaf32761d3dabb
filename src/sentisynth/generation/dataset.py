"""A synthetic set as a Hugging Face dataset: `dataset/` (save_to_disk), `synthetic.parquet`, a dataset card.

Beside `synthetic.jsonl` every generation run writes the same rows with flat provenance columns (generator,
guidance, prompt, keywords, exemplar indices, sampling, seed, batch, time, teacher scores, perplexity; the
complete provenance as JSON in `provenance_json`), and a `README.md` card: source data, generator, guidance,
filters and their acceptance, and a linguistic summary against the seed. `push_synthetic` publishes it.
`read_synthetic` reads any of these forms back (jsonl, parquet, dataset dir, run dir).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from sentisynth.data import DataError
from sentisynth.utils import atomic_write_text

COLUMNS = [
    "id",
    "text",
    "label",
    "label_name",
    "generator",
    "guidance",
    "prompt",
    "keywords",
    "exemplar_indices",
    "sampling",
    "seed",
    "batch",
    "time",
    "teacher_label",
    "teacher_confidence",
    "teacher_probs",
    "perplexity",
    "provenance_json",
]


def flat_row(r: dict[str, Any]) -> dict[str, Any]:
    p, t = r.get("provenance") or {}, r.get("teacher") or {}
    return {
        "id": str(r.get("id", "")),
        "text": r["text"],
        "label": int(r["label"]),
        "label_name": r.get("label_name"),
        "generator": json.dumps(p.get("generator"), sort_keys=True),
        "guidance": p.get("guidance"),
        "prompt": p.get("prompt"),
        "keywords": list(p.get("keywords") or []),
        "exemplar_indices": [int(i) for i in p.get("exemplar_indices") or []],
        "sampling": json.dumps(p.get("sampling"), sort_keys=True),
        "seed": p.get("seed"),
        "batch": p.get("batch"),
        "time": p.get("time"),
        "teacher_label": t.get("label"),
        "teacher_confidence": t.get("confidence"),
        "teacher_probs": list(t.get("probs") or []),
        "perplexity": r.get("perplexity"),
        "provenance_json": json.dumps(p, ensure_ascii=False, sort_keys=True),
    }


def to_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame([flat_row(r) for r in rows], columns=COLUMNS)
    return frame.astype(
        {"seed": "Int64", "teacher_label": "Int64", "teacher_confidence": "Float64", "perplexity": "Float64"}
    )


def to_dataset(frame: pd.DataFrame, label_names: list[str]) -> Any:
    """An HF `Dataset` with `label` as a `ClassLabel` carrying the class names."""
    import datasets

    ds = datasets.Dataset.from_pandas(frame, preserve_index=False)
    return ds.cast_column("label", datasets.ClassLabel(names=list(label_names)))


def write_synthetic_set(out: Path, rows: list[dict[str, Any]], label_names: list[str], card: str) -> None:
    """`synthetic.parquet`, `dataset/` and `README.md` in `out` (each written to a temp name, then renamed)."""
    frame = to_frame(rows)
    tmp = out / ".synthetic.parquet.tmp"
    frame.to_parquet(tmp, index=False)
    tmp.replace(out / "synthetic.parquet")
    tmp_dir = out / ".dataset.tmp"
    shutil.rmtree(tmp_dir, ignore_errors=True)
    to_dataset(frame, label_names).save_to_disk(str(tmp_dir))
    shutil.rmtree(out / "dataset", ignore_errors=True)
    tmp_dir.replace(out / "dataset")
    atomic_write_text(out / "README.md", card)


def acceptance_lines(report: dict[str, Any] | None) -> list[str]:
    if not report:
        return ["No filters were applied (`filters=none`)."]
    lines = ["| filter | in | kept | acceptance |", "|---|---|---|---|"]
    lines += [
        f"| {s['name']} | {s['in']} | {s['kept']} | {s['acceptance_rate']:.3f} |" for s in report["filters"]
    ]
    lines.append(f"| **chain** | {report['n_in']} | {report['n_kept']} | {report['acceptance_rate']:.3f} |")
    lines += ["", "| class | in | kept | acceptance |", "|---|---|---|---|"]
    lines += [
        f"| {c} | {r['in']} | {r['kept']} | {r['acceptance_rate']:.3f} |"
        for c, r in report["per_class"].items()
    ]
    return lines


def keyword_lines(guidance: dict[str, Any] | None, k: int = 10) -> list[str]:
    if not guidance:
        return ["The strategy uses no keywords or exemplars."]
    return [
        f"- **{name}**: " + ", ".join(kw["term"] for kw in g.get("keywords", [])[:k])
        for name, g in guidance.get("classes", {}).items()
    ]


def linguistic_lines(
    seed_texts: list[str],
    seed_labels: Any,
    rows: list[dict[str, Any]],
    label_names: list[str],
    cache_dir: str | Path | None,
) -> list[str]:
    from sentisynth.analysis import compare_sets, to_markdown

    if not rows:
        return ["The set is empty."]
    frame = compare_sets(
        {
            "seed": (seed_texts, seed_labels),
            "synthetic": ([r["text"] for r in rows], [int(r["label"]) for r in rows]),
        },
        label_names,
        cache_dir=cache_dir,
        embed_sample=100,  # embed_spread / embed_nn on 100 posts per set (as the train arms' linguistic.csv)
    )
    cols = [
        "set",
        "class",
        "n_texts",
        "mean_tokens",
        "ttr",
        "mtld",
        "distinct_1",
        "distinct_2",
        "self_bleu",
        "embed_spread",
        "embed_nn",
        "unseen_vocab_share",
    ]
    return [to_markdown(frame[frame["class"] == "all"][[c for c in cols if c in frame.columns]]).rstrip()]


def cost_lines(cost: dict[str, Any] | None) -> list[str]:
    """What the set cost to generate (API generators: requests, retries, tokens, USD by the server's usage)."""
    if not cost:
        return []
    rows = [f"- {k.removeprefix('generate/')}: {v:.6g}" for k, v in sorted(cost.items())]
    return ["## Generation cost (this run)", "", *rows, ""]


def dataset_card(info: dict[str, Any]) -> str:
    """README.md for the set. `info`: data (summary), generator, guidance_name, guidance, filters, report,
    counts, budget_met, linguistic (markdown lines), cost (optional `generate/*` figures)."""
    data, n = info["data"], sum(info["counts"].values())
    return "\n".join(
        [
            "---",
            "task_categories:",
            "- text-classification",
            "tags:",
            "- synthetic",
            "- sentisynth",
            "---",
            "",
            f"# Synthetic {data['dataset']} posts ({n} rows)",
            "",
            "Generated by sentisynth. Files: `synthetic.jsonl`, `synthetic.parquet`, `dataset/` (`datasets.load_from_disk`).",
            "Every row keeps its provenance (generator, guidance, prompt, keywords, exemplar indices, sampling, seed, time; "
            "`provenance_json` holds all of it).",
            "",
            "## Source data",
            "",
            f"- dataset: {data['dataset']} ({data['source']}); labelled seed: {data['n_seed']} posts, "
            f"classes {data['seed_class_counts']}",
            "",
            "## Rows per class",
            "",
            *[f"- {c}: {k}" for c, k in info["counts"].items()],
            ""
            if info["budget_met"]
            else "\n**The requested budget was not met** (see the filter acceptance).",
            "## Generator",
            "",
            "```json",
            json.dumps(info["generator"], indent=2, sort_keys=True, default=str),
            "```",
            "",
            f"## Guidance: `{info['guidance_name']}`",
            "",
            *keyword_lines(info.get("guidance")),
            "",
            *cost_lines(info.get("cost")),
            "## Filters and their acceptance",
            "",
            f"Chain: {', '.join(info['filters']) or 'none'}",
            "",
            *acceptance_lines(info.get("report")),
            "",
            "## Linguistic summary (seed vs synthetic)",
            "",
            *info["linguistic"],
            "",
        ]
    )


def push_synthetic(out: Path, repo_id: str, private: bool = True) -> str:
    """Publish `<out>/dataset` (and the card) to the Hub as `repo_id`; one clear error when that fails."""
    import datasets

    ds = datasets.load_from_disk(str(out / "dataset"))
    try:
        ds.push_to_hub(repo_id, private=private)
        from huggingface_hub import HfApi

        HfApi().upload_file(
            path_or_fileobj=str(out / "README.md"),
            path_in_repo="README.md",
            repo_id=repo_id,
            repo_type="dataset",
        )
    except Exception as e:  # noqa: BLE001 - offline, no token, no permission: one line, exit 2
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise DataError(
            f"push_to_hub={repo_id}: could not publish {out / 'dataset'}: {type(e).__name__}: {first}"
        ) from e
    return f"https://huggingface.co/datasets/{repo_id}"


def rows_from_frame(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Parquet/dataset rows back to the jsonl row shape (`label_name`, `teacher.probs`, provenance)."""
    rows = []
    for r in frame.to_dict("records"):
        row = {k: r[k] for k in ("id", "text", "label", "label_name") if k in r}
        probs = r.get("teacher_probs")
        if probs is not None and len(probs):
            row["teacher"] = {"probs": [float(p) for p in probs]}
        if isinstance(r.get("provenance_json"), str):
            row["provenance"] = json.loads(r["provenance_json"])
        rows.append(row)
    return rows


def read_synthetic(path: str | Path) -> tuple[list[dict[str, Any]], Path]:
    """Rows of a synthetic set given as jsonl, parquet, a saved dataset dir or a run dir; and the file read."""
    from sentisynth.hub_data import is_saved_dataset

    path = Path(path)
    if path.is_dir() and not is_saved_dataset(path):
        for name in ("synthetic.jsonl", "synthetic.parquet", "dataset"):
            if (path / name).exists():
                return read_synthetic(path / name)
        raise DataError(f"{path}: no synthetic.jsonl, synthetic.parquet or dataset/ in this directory")
    if is_saved_dataset(path):
        import datasets

        ds = datasets.load_from_disk(str(path))
        ds = ds["train"] if hasattr(ds, "keys") else ds
        frame = ds.to_pandas()
        if "label" in frame and "label_name" not in frame:
            names = ds.features["label"].names if hasattr(ds.features["label"], "names") else None
            frame["label_name"] = [names[i] for i in frame["label"]] if names else frame["label"]
        return rows_from_frame(frame), path
    if path.suffix.lower() in (".parquet", ".pq"):
        if not path.is_file():
            raise DataError(f"missing file: {path}")
        return rows_from_frame(pd.read_parquet(path)), path
    return [], path  # jsonl: read by the caller line by line (with line numbers in its errors)
