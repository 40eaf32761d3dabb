"""Filter report: `filter_report.json`, `rejected.jsonl` (atomic), a printed table, a tracker table."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sentisynth.filters.base import FilterResult
from sentisynth.tracking import Tracker
from sentisynth.utils import write_json, write_jsonl

COLUMNS = ["filter", "class", "in", "kept", "dropped", "acceptance", "top_reasons"]


def _reasons(reasons: dict[str, int], k: int = 3) -> str:
    return ", ".join(f"{r} {n}" for r, n in list(reasons.items())[:k])


def report_rows(report: dict[str, Any]) -> list[list[Any]]:
    """One row per (filter, class), a per-filter total row ('all'), and the chain total."""
    rows: list[list[Any]] = []
    for step in report["filters"]:
        for c, r in step["per_class"].items():
            rows.append(
                [
                    step["name"],
                    c,
                    r["in"],
                    r["kept"],
                    r["dropped"],
                    r["acceptance_rate"],
                    _reasons(r["reasons"]),
                ]
            )
        rows.append(
            [
                step["name"],
                "all",
                step["in"],
                step["kept"],
                step["dropped"],
                step["acceptance_rate"],
                _reasons(step["reasons"]),
            ]
        )
    for c, r in report["per_class"].items():
        rows.append(["chain", c, r["in"], r["kept"], r["dropped"], r["acceptance_rate"], ""])
    rows.append(
        ["chain", "all", report["n_in"], report["n_kept"], report["n_dropped"], report["acceptance_rate"], ""]
    )
    return rows


def format_table(report: dict[str, Any]) -> str:
    rows = [[str(x) for x in r] for r in report_rows(report)]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(COLUMNS)]
    line = "  ".join(h.ljust(w) for h, w in zip(COLUMNS, widths))
    out = [line, "-" * len(line)]
    out += [
        "  ".join(v.rjust(w) if i in (2, 3, 4, 5) else v.ljust(w) for i, (v, w) in enumerate(zip(r, widths)))
        for r in rows
    ]
    return "\n".join(out)


STEP_KEYS = {
    "name",
    "in",
    "kept",
    "dropped",
    "acceptance_rate",
    "relabelled",
    "reasons",
    "time_s",
    "per_class",
}


def step_metrics(report: dict[str, Any], prefix: str = "filters") -> dict[str, float]:
    """A filter's own numbers beyond the counts (`filters/judge/kappa_teacher`), as flat metrics."""
    return {
        f"{prefix}/{step['name']}/{k}": v
        for step in report["filters"]
        for k, v in step.items()
        if k not in STEP_KEYS and isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def log_filter_report(tracker: Tracker, report: dict[str, Any], prefix: str = "filters") -> None:
    """The table and the headline acceptance rates, to W&B / CSV / nothing."""
    tracker.log_table(f"{prefix}/report", COLUMNS, report_rows(report))
    metrics = {
        f"{prefix}/n_in": report["n_in"],
        f"{prefix}/n_kept": report["n_kept"],
        f"{prefix}/acceptance_rate": report["acceptance_rate"],
    }
    for step in report["filters"]:
        metrics[f"{prefix}/{step['name']}/acceptance_rate"] = step["acceptance_rate"]
    metrics.update(step_metrics(report, prefix))
    for c, r in report["per_class"].items():
        metrics[f"{prefix}/class/{c}/acceptance_rate"] = r["acceptance_rate"]
    tracker.log_metrics(metrics)


def write_filter_report(
    result: FilterResult, out_dir: str | os.PathLike, tracker: Tracker | None = None, print_table: bool = True
) -> Path:
    """Write `filter_report.json` and `rejected.jsonl` into `out_dir`; print and optionally log the table."""
    out = Path(out_dir)
    path = out / "filter_report.json"
    write_json(path, result.report)
    write_jsonl(out / "rejected.jsonl", result.rejected)
    if print_table:
        print(format_table(result.report), flush=True)
    if tracker is not None:
        log_filter_report(tracker, result.report)
    return path


def _add_counts(into: dict[str, Any], row: dict[str, Any]) -> None:
    """Sum a report row's counts (numbers, and `reasons` per reason) into `into`; rates are recomputed after."""
    for k, v in row.items():
        if k == "reasons":
            reasons = into.setdefault("reasons", {})
            for r, n in v.items():
                reasons[r] = reasons.get(r, 0) + int(n)
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and k != "acceptance_rate":
            into[k] = into.get(k, 0) + v


def _with_rate(row: dict[str, Any], kept: str = "kept", n_in: str = "in") -> dict[str, Any]:
    row["acceptance_rate"] = round(row.get(kept, 0) / row[n_in], 4) if row.get(n_in) else 0.0
    if "time_s" in row:
        row["time_s"] = round(row["time_s"], 3)
    return row


def merge_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Several filter reports (the rounds of an adaptive run, each a generation run of its own) as one of the
    same shape: counts, times and reasons summed per filter, per class and in total; rates recomputed. A
    filter's own figures (e.g. the judge's kappa) do not add up and are left out."""
    total: dict[str, Any] = {}
    per_class: dict[str, dict[str, Any]] = {}
    steps: dict[str, dict[str, Any]] = {}
    for report in reports:
        _add_counts(total, {k: report[k] for k in ("n_in", "n_kept", "n_dropped") if k in report})
        for c, row in report.get("per_class", {}).items():
            _add_counts(per_class.setdefault(c, {}), row)
        for step in report.get("filters", []):
            into = steps.setdefault(step["name"], {"name": step["name"]})
            _add_counts(into, {k: v for k, v in step.items() if k in STEP_KEYS and k != "per_class"})
            for c, row in (step.get("per_class") or {}).items():
                _add_counts(into.setdefault("per_class", {}).setdefault(c, {}), row)
    for step in steps.values():
        _with_rate(step)
        for row in step.get("per_class", {}).values():
            _with_rate(row)
    return {
        **_with_rate(total, "n_kept", "n_in"),
        "filters_applied": list(steps),
        "per_class": {c: _with_rate(row) for c, row in per_class.items()},
        "filters": list(steps.values()),
    }
