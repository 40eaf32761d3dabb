"""Shared fixtures: the repo root, tiny datasets written per test, the shared real data (skipped when
absent), configs composed in-process (like lightning-hydra-template's conftest), the CLI for slow tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Tests run torch (and the BLAS under numpy) on one thread, and so do the CLI subprocesses, which inherit it.
# CI runs two pytest-xdist workers beside the vLLM venv's tests on 2 cores; a second OpenMP thread per process
# then spin-waits at every op's barrier for a core another process holds (test_chaos: 63 s on a quiet machine,
# 226 s in the 2026-12-03 CI run with torch's default of 2 threads per process).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
SHARED = Path(os.environ.get("SENTISYNTH_DATA_DIR", ROOT.parent / "shared" / "data"))
HAVE_SHARED = (SHARED / "tweeteval" / "emotion" / "train_text.txt").is_file()

EMOTION_WORDS = {
    0: ["angry", "furious", "hate", "rage", "annoyed", "#angry"],
    1: ["happy", "love", "fun", "great", "#joy", "laugh"],
    2: ["hope", "believe", "future", "tomorrow", "#optimism", "dream"],
    3: ["sad", "cry", "miss", "lonely", "#sad", "depressed"],
}
NAMES = ["anger", "joy", "optimism", "sadness"]


# A miniature `tiny` generator (seconds to pretrain and fine-tune) for generation tests: generator overrides only.
MINI_TINY = [
    "generator.pretrain.max_steps=8",
    "generator.pretrain.max_lines=1500",
    "generator.pretrain.vocab_size=350",
    "generator.pretrain.n_embd=32",
    "generator.pretrain.n_layer=1",
    "generator.pretrain.n_head=2",
    "generator.pretrain.val_every=4",
    "generator.pretrain.batch_size=8",
    "generator.finetune.epochs=1",
    "generator.sampling.max_new_tokens=12",
    "generator.batch_size=4",
]


def make_posts(n_per_class: int, seed: int = 0) -> list[tuple[str, int]]:
    """Separable toy posts: class words mixed with shared filler, shuffled deterministically."""
    import random

    rng = random.Random(seed)
    filler = ["today", "the", "so", "really", "@user", "just", "my", "day", "this", "lol"]
    rows = []
    for label, words in EMOTION_WORDS.items():
        for _ in range(n_per_class):
            toks = rng.sample(words, 2) + rng.sample(filler, 3) + [f"w{rng.randint(0, 50)}"]
            rng.shuffle(toks)
            rows.append((" ".join(toks), label))
    rng.shuffle(rows)
    return rows


def write_tweeteval(root: Path, task: str = "emotion", sizes=(40, 8, 12)) -> Path:
    """A TweetEval-layout directory `<root>/tweeteval/<task>/` with separable toy posts."""
    folder = root / "tweeteval" / task
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mapping.txt").write_text("\n".join(f"{i}\t{n}" for i, n in enumerate(NAMES)))
    for split, n, seed in zip(("train", "val", "test"), sizes, (0, 1, 2)):
        rows = make_posts(n, seed)
        (folder / f"{split}_text.txt").write_text("\n".join(t for t, _ in rows) + "\n")
        (folder / f"{split}_labels.txt").write_text("\n".join(str(y) for _, y in rows) + "\n")
    return root


@pytest.fixture
def tiny_data_dir(tmp_path: Path) -> Path:
    return write_tweeteval(tmp_path / "data")


@pytest.fixture
def shared_data() -> Path:
    """The real data directory (TweetEval, SST-2, corpus); the test is skipped without it."""
    if not HAVE_SHARED:
        pytest.skip(f"shared data not found at {SHARED} (set SENTISYNTH_DATA_DIR)")
    return SHARED


@pytest.fixture
def compose_cfg(tmp_path: Path):
    """`compose_cfg("train", *overrides)`: a config composed from conf/ as a Hydra main would, outside a Hydra
    run; paths point into tmp_path (`run/` is the output dir), so `run(cfg)` works in-process."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from sentisynth.cli import register_resolvers, with_run_paths

    register_resolvers()

    def _compose(root: str = "train", *overrides: str):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose(config_name=root, overrides=[f"paths.root_dir={tmp_path}", *overrides])
        return with_run_paths(cfg, tmp_path / "run")

    yield _compose
    GlobalHydra.instance().clear()


@pytest.fixture
def cfg_train(compose_cfg, tiny_data_dir: Path):
    """train.py's config on the tiny dataset: 20 seed posts, TF-IDF LR, no logger."""
    return compose_cfg("train", f"paths.data_dir={tiny_data_dir}", "data.seed_size=20", "logger=none")


def run_cli(script: str, *overrides: str, cwd: Path = ROOT, env: dict | None = None, timeout: int = 600):
    """Run `python <script> overrides...` as a user would; returns the CompletedProcess."""
    full_env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "HYDRA_FULL_ERROR": "1",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, str(ROOT / script), *overrides],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
