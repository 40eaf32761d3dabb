"""Predict with a model a run saved: the downstream classifier (`<run>/model/`) or the filter teacher.

    python -m sentisynth.predict outputs/train/runs/<run> texts.txt               # label + probabilities
    python -m sentisynth.predict <run> texts.txt --model teacher --out preds.csv
    from sentisynth.predict import load_predictor; load_predictor("<run>").predict_frame(["so happy"])

`texts.txt` holds one post per line (`-` reads stdin). Models are stored without pickle (see
`sentisynth.classifiers.io`), so loading one cannot run code; transformer models are loaded with
`trust_remote_code` off.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sentisynth.data import DataError
from sentisynth.utils import read_json


@dataclass
class Predictor:
    """A reloaded classifier with its label names."""

    classifier: Any
    label_names: list[str]
    path: Path

    def predict_proba(self, texts: Sequence[str] | str) -> np.ndarray:
        texts = as_texts(texts)
        if not texts:
            return np.zeros((0, len(self.label_names)))
        return self.classifier.predict_proba(texts)

    def predict(self, texts: Sequence[str] | str) -> list[str]:
        return [self.label_names[i] for i in self.predict_proba(texts).argmax(axis=1)]

    def predict_frame(self, texts: Sequence[str] | str) -> pd.DataFrame:
        """One row per text: `text`, `label` (the argmax) and `prob/<class>` for every class."""
        texts = as_texts(texts)
        proba = self.predict_proba(texts)
        frame = pd.DataFrame(
            {"text": list(texts), "label": [self.label_names[i] for i in proba.argmax(axis=1)]}
        )
        probs = pd.DataFrame(np.round(proba, 6), columns=[f"prob/{n}" for n in self.label_names])
        return pd.concat([frame, probs], axis=1)


def as_texts(texts: Sequence[str] | str) -> list[str]:
    """A plain string is one text (not one per character); anything but strings is one clear error."""
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, (bytes, dict)) or not isinstance(texts, Sequence | np.ndarray | pd.Series):
        raise DataError(f"predict takes a string or a list of strings, got {type(texts).__name__}")
    texts = list(texts)
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise DataError(
            f"predict takes strings: text {bad} is {texts[bad]!r} ({type(texts[bad]).__name__}); "
            "convert or drop it (str(x), or '' for a missing text)"
        )
    return texts


def model_dir(path: str | Path, which: str = "classifier") -> Path:
    """The saved model a run directory's `models.json` names (`classifier` or `teacher`), or `path` itself."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"no such run or model directory: {path}")
    index = path / "models.json"
    if not index.is_file():
        if which == "classifier":
            return path  # a model directory given directly
        raise DataError(f"{path}: no models.json, so no recorded {which}")
    entry = read_json(index)
    entry = entry.get(which) if isinstance(entry, dict) else None
    if not entry:
        hint = (
            " (the run was made with save_model=false)"
            if which == "classifier"
            else " (no teacher filter was used)"
        )
        raise DataError(f"{index}: no saved {which}{hint}")
    target = Path(entry) if Path(entry).is_absolute() else path / entry
    if not target.is_dir():
        raise DataError(f"{index}: the {which} at {target} is missing (was the cache cleared?)")
    return target


def load_predictor(path: str | Path, which: str = "classifier", **runtime: Any) -> Predictor:
    """A `Predictor` for a run directory (its `which` model) or a saved model directory."""
    from sentisynth.classifiers.io import load_classifier

    target = model_dir(path, which)
    try:
        clf, names = load_classifier(target, **runtime)
    except FileNotFoundError as e:
        raise DataError(str(e)) from None
    return Predictor(clf, names, target)


def read_texts(path: str) -> list[str]:
    """One text per line, blank lines included (predicted as empty posts), so output row i is input line i."""
    if path == "-":
        lines = sys.stdin.read().splitlines()
    else:
        if not Path(path).is_file():
            raise DataError(f"missing file: {path} (one text per line)")
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    texts = [line.strip() for line in lines]
    if not any(texts):
        raise DataError(f"{path}: no texts (one per line)")
    blank = sum(not t for t in texts)
    if blank:
        print(
            f"note: {path}: {blank} blank line(s) predicted as empty posts (one row per line)",
            file=sys.stderr,
        )
    return texts


def main(
    argv: Sequence[str] | None = None, prog: str = "python -m sentisynth.predict", inline: bool = False
) -> int:
    """`inline` (the `sentisynth predict` command): the posts are the arguments after the model, or
    `--file`; otherwise the second argument is the text file."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", help="a train.py/generate.py run directory, or a saved model directory")
    if inline:
        parser.add_argument("texts", nargs="*", help="posts to classify (quote each one)")
        parser.add_argument("--file", help="a text file, one post per line ('-': stdin), instead of posts")
    else:
        parser.add_argument("texts", help="a text file, one post per line ('-': stdin)")
    parser.add_argument("--model", choices=["classifier", "teacher"], default="classifier")
    parser.add_argument("--out", help="write a CSV here instead of printing TSV")
    args = parser.parse_args(argv)
    if inline and bool(args.texts) == bool(args.file):
        parser.error("give the posts as arguments or --file PATH (one of them)")
    try:
        texts = (
            [t for t in args.texts if t.strip()]
            if inline and args.texts
            else read_texts(getattr(args, "file", None) or args.texts)
        )
        frame = load_predictor(args.run_dir, args.model, progress=False).predict_frame(texts)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 2
    if args.out:
        frame.to_csv(args.out, index=False)
        print(f"{len(frame)} predictions -> {args.out}")
    else:
        frame.to_csv(sys.stdout, sep="\t", index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
