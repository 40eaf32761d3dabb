"""Caches are verified, never trusted blindly: sealed entries, checksummed store lines, safe checkpoint loads."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from sentisynth.cache import is_sound, problem, seal, write_entry
from sentisynth.generation.store import BatchStore
from tests.conftest import MINI_TINY

DATA = os.environ.get("SENTISYNTH_DATA_DIR")


def _entry(tmp: Path) -> Path:
    d = tmp / "entry"
    write_entry(d, {"a.jsonl": "".join(f'{{"i": {i}}}\n' for i in range(5)), "weights.bin": "x" * 4096})
    return d


@pytest.mark.parametrize(
    "damage", ["delete_line", "zero_bytes", "flip_byte", "remove_file", "no_seal", "torn_seal"]
)
def test_damaged_entry_is_detected_logged_and_removed(
    damage: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    d = _entry(tmp_path)
    assert problem(d) is None and is_sound(d, "test entry")
    seal_info = json.loads((d / "integrity.json").read_text())
    assert seal_info["files"]["a.jsonl"]["lines"] == 5 and seal_info["files"]["weights.bin"]["bytes"] == 4096
    lines, weights = d / "a.jsonl", d / "weights.bin"
    if damage == "delete_line":
        lines.write_text("".join(lines.read_text().splitlines(keepends=True)[1:]))
    elif damage == "zero_bytes":
        raw = bytearray(weights.read_bytes())
        raw[100:200] = bytes(100)
        weights.write_bytes(bytes(raw))
    elif damage == "flip_byte":
        raw = bytearray(lines.read_bytes())
        raw[3] ^= 0x01
        lines.write_bytes(bytes(raw))
    elif damage == "remove_file":
        weights.unlink()
    elif damage == "no_seal":
        (d / "integrity.json").unlink()
    else:
        (d / "integrity.json").write_text('{"files": {"a.js')
    with caplog.at_level(logging.WARNING):
        assert not is_sound(d, "test entry")
    assert f"damaged cache: test entry {d}" in caplog.text
    assert not d.exists() and not list(tmp_path.glob(".entry.damaged-*"))  # moved aside, then removed


def _store_with_batches(path: Path) -> BatchStore:
    store = BatchStore(path)
    for b in range(3):
        store.append(
            f"0-{b}", [{"id": f"k-0-{b}-{j}", "text": f"post {b} {j}", "label": 0} for j in range(4)]
        )
    return store


@pytest.mark.parametrize(
    ("damage", "kept_batches"),
    [("torn_tail", 2), ("flip_middle", 2), ("delete_line", 2), ("torn_middle", 2), ("none", 3)],
)
def test_store_keeps_only_intact_complete_batches(
    damage: str, kept_batches: int, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "batches.jsonl"
    _store_with_batches(path)
    raw = path.read_bytes()
    lines = raw.splitlines(keepends=True)
    if damage == "torn_tail":
        raw = raw[:-20]
    elif damage == "flip_middle":  # a digit of a text inside batch 0-1: still valid JSON, wrong content
        i = lines[5].index(b"post 1") + 5
        line = bytearray(lines[5])
        line[i] = ord("7")
        raw = b"".join(lines[:5] + [bytes(line)] + lines[6:])
    elif damage == "delete_line":
        raw = b"".join(lines[:2] + lines[3:])
    elif damage == "torn_middle":
        raw = b"".join(lines[:5] + [lines[5][:30] + b"\n"] + lines[6:])
    path.write_bytes(raw)
    with caplog.at_level(logging.WARNING):
        store = BatchStore(path)
    assert len(store.batches) == kept_batches
    assert all(
        len(rows) == 4 and all(r["text"].startswith(f"post {b[-1]}") for r in rows)
        for b, rows in store.batches.items()
    )
    if damage != "none":
        bad = 0 if damage == "delete_line" else 1
        assert (
            f"{bad} torn or damaged line(s); dropping 1 incomplete batch(es) (3 more line(s))" in caplog.text
        )
        assert len(path.read_text().splitlines()) == 8  # rewritten without the damaged batch
    again = BatchStore(path)
    assert sorted(again.batches) == sorted(store.batches)


def test_checkpoint_step_never_unpickles_code(tmp_path: Path) -> None:
    """A cached pretraining checkpoint is read with weights_only=True: a pickle that runs code is refused
    (and the damaged checkpoint removed, so pretraining restarts)."""
    import pickle

    import torch

    from sentisynth.generation.tiny import _checkpoint_step

    good = tmp_path / "good.ckpt"
    torch.save({"global_step": 7, "state_dict": {"w": torch.zeros(2)}}, good)
    assert _checkpoint_step(good) == 7

    class Evil:
        def __reduce__(self):  # noqa: D105
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(pickle.dumps({"global_step": 3, "x": Evil()}))
    assert _checkpoint_step(evil) == 0
    assert not (tmp_path / "pwned").exists() and not evil.exists()
    torn = tmp_path / "torn.ckpt"
    torn.write_bytes(good.read_bytes()[:100])
    assert _checkpoint_step(torn) == 0 and not torn.exists()


TINY = [
    *MINI_TINY,
    "generator.budget.n_per_class=5",
    "data.seed_size=40",
    "guidance=naive",
    "filters=none",
    "logger=none",
    "trainer.enable_progress_bar=false",
]


@pytest.mark.slow
@pytest.mark.skipif(
    not DATA or not Path(DATA, "corpus").is_dir(), reason="needs SENTISYNTH_DATA_DIR with the corpus"
)
def test_damaged_final_set_and_generator_weights_are_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Delete a line of the cached final set, zero bytes of the cached generator and tiny weights: each re-run
    detects the damage (log line) and again ends with exactly the requested count of distinct samples."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from sentisynth.cli import register_resolvers
    from sentisynth.generation import run_generate_stage
    from tests.conftest import CONF

    register_resolvers()
    cache = tmp_path / "cache"

    def run(name: str) -> list[dict]:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose(
                config_name="generate",
                overrides=[
                    f"paths.output_dir={tmp_path / name}",
                    f"paths.root_dir={tmp_path}",
                    f"paths.cache_dir={cache}",
                    *TINY,
                ],
            )
        run_generate_stage(cfg)
        rows = [json.loads(x) for x in (tmp_path / name / "synthetic.jsonl").read_text().splitlines()]
        assert (
            len(rows) == 20 and len({r["text"].lower() for r in rows}) == 20 and all(r["text"] for r in rows)
        )
        assert json.loads((tmp_path / name / "metrics.json").read_text())["generate/budget_met"] == 1
        return rows

    first = run("r1")
    final = next((cache / "generation" / "final").glob("*/synthetic.jsonl"))
    final.write_text("".join(final.read_text().splitlines(keepends=True)[1:]))
    with caplog.at_level(logging.WARNING):
        assert run("r2") == first  # rebuilt from the raw store: the same samples
    assert f"damaged cache: final synthetic set {final.parent}" in caplog.text

    for kind in ("generators", "tiny"):
        weights = next((cache / kind).glob("*/model.safetensors"))
        raw = bytearray(weights.read_bytes())
        raw[len(raw) // 2 : len(raw) // 2 + 4096] = bytes(4096)
        weights.write_bytes(bytes(raw))
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            run(f"r_{kind}")
        assert f"{weights.parent}: model.safetensors does not match its recorded sha256" in caplog.text
        assert problem(weights.parent) is None  # rebuilt and sealed again
    seal(final.parent)  # sealing is idempotent on a sound entry
    assert problem(final.parent) is None
