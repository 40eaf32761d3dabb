"""A multirun that concludes: at its end, the sweep directory, the aggregate table and the report.

Hydra calls `SweepSummary.on_multirun_end` once every job of `train.py -m ...` has finished (any launcher or
sweeper); it prints where the sweep wrote, the jobs' settings against their metrics (`sentisynth.aggregate`:
`summary.md` and `summary.csv` in the sweep directory) and writes `<sweep>/report/report.md`
(`sentisynth.report`). `sweep_summary=false` turns it off. A failure here is one warning: the jobs' own
results are already on disk, and `python -m sentisynth.report <dir>` can be rerun by hand.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def summarize_sweep(sweep_dir: str | Path, report: bool = True) -> list[str]:
    """The lines to print at the end of a multirun (the directory, the table, the report's path); writes the
    aggregate files and, with `report`, the report."""
    from sentisynth.aggregate import aggregate, to_markdown

    root = Path(sweep_dir)
    lines = [f"sweep directory: {root.resolve()}"]
    if not any(root.rglob("metrics.json")):
        return lines + ["no job wrote metrics.json: nothing to compare"]
    summary = aggregate(root)
    lines += ["", to_markdown(summary).rstrip("\n"), "", f"table: {root / 'summary.md'} (and summary.csv)"]
    if report:
        from sentisynth.report import build_report

        path = build_report(root)
        lines += [*headline(path.parent), f"report: {path}"]
    return lines


def headline(report_dir: Path) -> list[str]:
    """The report's macro-F1 comparisons (arms against none/real, classifiers against each other) as printed
    in report.md, when the sweep had any."""
    import pandas as pd

    from sentisynth.report import _comparisons_md, classifiers_md

    out = []
    if (report_dir / "comparisons.csv").is_file():
        comp = pd.read_csv(report_dir / "comparisons.csv", dtype={"seed_size": str, "augment_n": str})
        out += [
            "arms against none and real (macro-F1; * the 95% interval excludes 0):",
            _comparisons_md(comp, "macro_f1"),
        ]
    if (report_dir / "classifier_comparisons.csv").is_file():
        pairs = pd.read_csv(
            report_dir / "classifier_comparisons.csv", dtype={"seed_size": str, "augment_n": str}
        )
        out += ["classifiers against each other (macro-F1 of the first minus the second):"]
        out += classifiers_md(pairs)[2:]
    return out


class SweepSummary(Callback):
    """Hydra callback (conf/hydra/default.yaml): `summarize_sweep` on the sweep directory at the multirun's end."""

    def __init__(self, report: bool = True) -> None:
        self.report = report

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if not config.get("sweep_summary", True):
            return
        try:
            lines = summarize_sweep(config.hydra.sweep.dir, self.report)
        except Exception as e:  # noqa: BLE001 - the sweep's results stand; say why there is no summary
            log.warning("sweep summary not written (%s: %s); run python -m sentisynth.report %s",
                        type(e).__name__, e, config.hydra.sweep.dir)  # fmt: skip
            return
        print("\n".join(lines), flush=True)
