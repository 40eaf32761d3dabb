"""Issue 28 item 4 and issue 26 item 3: no silent empty run, no runaway top-up, no loop without progress."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from sentisynth.errors import DataError
from sentisynth.generation.pipeline import Plan, check_budget, generate_until, next_targets, request_caps
from sentisynth.generation.shards import chunk_id

NAMES = ["anger", "joy"]


def fake_run(texts_for):
    """A chunk runner whose request k of class c says `texts_for(c, k)`; counts the requests it served."""
    served = [0]

    def run(chunks):
        for c, k0, k1 in chunks:
            served[0] += k1 - k0
            rows = [
                {"text": texts_for(c, k), "label": c, "provenance": {"request": k}} for k in range(k0, k1)
            ]
            yield chunk_id((c, k0, k1)), rows, 0, 0.0

    return run, served


def ctx_gen():
    return SimpleNamespace(batch_size=8), SimpleNamespace(label_names=NAMES)


@pytest.mark.parametrize("setting", ["greedy (do_sample=false)", "top_p=0"])
def test_decoding_without_new_samples_stops_quickly_with_a_warning(setting, caplog) -> None:
    # both settings collapse to one text per prompt: every request of a class says the same thing
    gen, ctx = ctx_gen()
    run, served = fake_run(lambda c, k: f"the same greedy post of class {c}")
    stalled: set[int] = set()
    acc, _ = generate_until(gen, ctx, {}, [5, 5], run, 100_000, stalled)
    assert [len(a) for a in acc] == [1, 1] and stalled == {0, 1}
    assert served[0] <= 2 * (5 + 4 * 9)  # 32 dry requests per class, not 100,000
    assert "added no new distinct sample" in caplog.text


def test_a_last_small_wave_that_repeats_a_post_is_not_a_stall() -> None:
    # request 4 repeats request 0; the wave for the one missing post must not stop the class
    gen, ctx = ctx_gen()
    run, _ = fake_run(lambda c, k: f"{c} post {0 if k == 4 else k}")
    stalled: set[int] = set()
    acc, _ = generate_until(gen, ctx, {}, [5, 5], run, 1000, stalled)
    assert [len(a) for a in acc] == [5, 5] and stalled == set()


def test_progressing_classes_keep_going_while_a_stalled_one_stops() -> None:
    gen, ctx = ctx_gen()
    run, _ = fake_run(lambda c, k: f"post {k}" if c == 0 else "stuck")
    stalled: set[int] = set()
    acc, _ = generate_until(gen, ctx, {}, [6, 6], run, 1000, stalled)
    assert len(acc[0]) == 6 and len(acc[1]) == 1 and stalled == {1}


def test_top_up_targets_are_bounded_by_a_multiple_of_the_budget() -> None:
    # zero acceptance used to grow 25 -> 1,525 -> 3,025 (the issue's cut-down run)
    targets = [25, 25]
    for _ in range(4):
        targets = next_targets(targets, [25, 25], np.array([0, 25]), max_multiple=10)
    assert targets == [250, 25]


def test_max_generated_caps_requests_per_class() -> None:
    gen = SimpleNamespace(budget={"max_requests_per_class": 100_000})
    assert request_caps(gen, {"max_generated": 1000}, 4) == (250, 20.0)
    assert request_caps(gen, None, 4)[0] == 100_000


def test_a_set_short_of_its_budget_fails_with_one_line_naming_class_and_fixes() -> None:
    plan = Plan([25, 25], "r", "f", {}, 2, 100, 20.0, 0.5, {}, {}, None, None)  # type: ignore[arg-type]
    final = [{"label": 1}] * 25
    with pytest.raises(DataError) as e:
        check_budget(plan, final, NAMES, {"acceptance": [0.0, 0.4], "filtered": [3025, 60]})
    msg = str(e.value)
    assert "\n" not in msg and "anger kept 0/25" in msg and "joy" not in msg.split(";")[0].split(":")[1]
    assert "0.0%" in msg and "filters.teacher.tau=auto" in msg and "max_rounds" in msg
    check_budget(plan, final + [{"label": 0}] * 13, NAMES, {})  # 13/25 >= half: passes


def test_the_suggested_teacher_fix_moves_on_when_tau_is_already_auto() -> None:
    plan = Plan([25], "r", "f", {"teacher": {"tau": "auto"}}, 2, 100, 20.0, 0.5, {}, {}, None, None)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="target_precision=0.6"):
        check_budget(plan, [], ["anger"], {})


@pytest.mark.slow  # subprocess generate.py runs on the real data with a miniature tiny generator
@pytest.mark.usefixtures("shared_data")
@pytest.mark.parametrize("decoding", ["generator.sampling.do_sample=false"])
def test_issue26_hang_rows_end_quickly_with_the_warning(decoding, tmp_path) -> None:
    """Issue 26's hang rows: greedy decoding with a distinct-sample budget used to run toward the
    100,000-request cap; now the class stops with the no-progress warning, and the run fails with one line
    because the set is short (budget_met 0). The other row, top_p=0, is refused by the config schema before
    any work (tests/test_schema.py), so it cannot hang either."""
    import os
    import subprocess
    import sys
    import time

    from tests.conftest import MINI_TINY, ROOT

    cmd = [
        sys.executable,
        "generate.py",
        "data.seed_size=60",
        "guidance=naive",
        "generator=tiny",
        "filters=none",
        "logger=none",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.run.dir={tmp_path / 'run'}",
        "trainer.enable_progress_bar=false",
        *MINI_TINY,
        "generator.budget.n_per_class=40",
        decoding,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    t0 = time.monotonic()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    out = done.stdout + done.stderr
    assert "stopped adding new distinct samples" in out, out[-3000:]
    metrics = (tmp_path / "run" / "metrics.json").read_text()
    assert '"generate/budget_met": 0' in metrics
    assert done.returncode == 2 and out.strip().splitlines()[-1].startswith("error: synthetic set short")
    assert time.monotonic() - t0 < 300
