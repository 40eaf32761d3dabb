"""The docs stay true: every relative link of README.md and docs/ resolves (file and heading), the config
reference covers every group of conf/, README keeps CI's contract, and the commands of the get-started and
tutorial pages that follow a `<!-- test -->` marker run (slow; with a 100-post seed and no logger unless the
command sets them)."""

from __future__ import annotations

import csv
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, SHARED

DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```")
TESTED_PAGES = ["getting_started.md", "tutorial_own_data.md", "tutorial_study.md", "tutorial_offline.md"]


def load_reference_module():
    """docs/gen_config_reference.py (the mkdocs hook), imported from its file."""
    if "gen_config_reference" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "gen_config_reference", DOCS / "gen_config_reference.py"
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules["gen_config_reference"] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules["gen_config_reference"]


def prose(text: str) -> str:
    """The markdown outside code fences and inline code (links there are examples, not links)."""
    out, inside = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            inside = not inside
            continue
        if not inside:
            out.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(out)


def slug(heading: str) -> str:
    """A heading's anchor as mkdocs (toc) and GitHub make it, for plain headings."""
    text = re.sub(r"[^\w\s-]", "", heading.replace("`", "").strip().lower())
    return re.sub(r"[-\s]+", "-", text).strip("-")


def anchors(path: Path) -> set[str]:
    text = path.read_text()
    if path.name == "config_reference.md":  # its body is generated from conf/ at build time
        text += "\n" + load_reference_module().reference_markdown()
    lines = [line for line in text.splitlines() if line.startswith("#")]
    return {slug(line.lstrip("#")) for line in lines}


def broken_links(page: Path) -> list[str]:
    bad = []
    for target in LINK.findall(prose(page.read_text())):
        if re.match(r"^[a-z]+:", target) or target.startswith("<"):
            continue  # http(s), mailto: not checked here
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        if not dest.exists():
            bad.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    return bad


def test_every_relative_link_of_readme_and_docs_resolves() -> None:
    bad = [b for page in [ROOT / "README.md", *PAGES] for b in broken_links(page)]
    assert not bad, "\n".join(bad)
    assert len(PAGES) >= 20


def test_config_reference_lists_every_group_and_option() -> None:
    ref = load_reference_module()
    markdown = ref.reference_markdown()
    conf = ROOT / "conf"
    groups = {p.parent.relative_to(conf).as_posix() for p in conf.rglob("*.yaml") if p.parent != conf}
    assert {"data", "classifier", "augment", "generator", "filters", "experiment", "hydra/launcher"} <= groups
    for group in groups:
        assert f"## Group `{group}`" in markdown
        for option in (conf / group).glob("*.yaml"):
            assert f"### `{group}/{option.stem}`" in markdown
    # keys with their values and comments, nested keys dotted
    assert (
        "| `teacher.model.epochs` | `${oc.select:....generator.teacher_model.epochs,4}` | TweetEval emotion"
        in markdown
    )
    assert "| `seed` | `0` | one seed for data sampling" in markdown


def test_readme_is_a_landing_page_that_keeps_the_ci_contract() -> None:
    readme = (ROOT / "README.md").read_text().splitlines()
    assert len(readme) <= 150
    assert readme[0].startswith("# ") and readme[2] == "```bash"
    first_block = readme[3 : readme.index("```", 3)]
    assert len([line for line in first_block if line.strip()]) == 2
    assert 'pip install -e ".[dev]"' in first_block[0] and "pytest" in first_block[1]
    scaling = (DOCS / "howto_scaling.md").read_text().split("<!-- ci: vllm-cpu -->\n", 1)[1].splitlines()
    assert (
        scaling[0] == "```bash" and len([c for c in scaling[1 : scaling.index("```", 1)] if c.strip()]) == 2
    )


def marked_commands(page: Path) -> list[str]:
    """The commands of every ```bash block right after a `<!-- test -->` line (continuation lines joined)."""
    lines, commands, armed, inside = page.read_text().splitlines(), [], False, False
    for line in lines:
        if line.strip() == "<!-- test -->":
            armed = True
        elif armed and line.strip() == "```bash":
            inside, armed = True, False
        elif inside and line.strip() == "```":
            inside = False
        elif inside and line.strip() and not line.lstrip().startswith("#"):
            if commands and commands[-1].endswith("\\"):
                commands[-1] = commands[-1][:-1] + " " + line.strip()
            else:
                commands.append(line.strip())
    return commands


def runnable(command: str) -> str:
    """The docs' command with this interpreter and repository, small settings appended for Hydra runs."""
    py = sys.executable
    cmd = re.sub(r"\bpython (train|generate)\.py", rf"{py} {ROOT}/\1.py", command)
    cmd = re.sub(r"\bpython -m\b", f"{py} -m", cmd)
    if re.search(r"(train|generate)\.py", cmd):
        cmd += "" if "logger=" in cmd else " logger=none"
        cmd += "" if ("data.seed_size" in cmd or "experiment=" in cmd) else " data.seed_size=100"
    return cmd


def write_my_posts(cwd: Path) -> None:
    """The own-data tutorial's `my_posts.csv`: TweetEval emotion's posts with label names, as a user's file."""
    folder = SHARED / "tweeteval" / "emotion"
    names = [line.split("\t")[-1].strip() for line in (folder / "mapping.txt").read_text().splitlines()]
    with open(cwd / "my_posts.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for split in ("train", "val", "test"):
            texts = (folder / f"{split}_text.txt").read_text().splitlines()
            labels = (folder / f"{split}_labels.txt").read_text().splitlines()
            writer.writerows([t, names[int(y)]] for t, y in zip(texts, labels))


@pytest.mark.slow
@pytest.mark.usefixtures("shared_data")
@pytest.mark.parametrize("page", TESTED_PAGES)
def test_docs_commands_run(page: str, tmp_path: Path) -> None:
    commands = marked_commands(DOCS / page)
    assert commands, f"{page} has no <!-- test --> block"
    write_my_posts(tmp_path)
    env = {
        **os.environ,
        "SENTISYNTH_DATA_DIR": str(SHARED.resolve()),  # the commands run elsewhere: ../shared/data would not
        "SENTISYNTH_CACHE_DIR": str(tmp_path / "cache"),
        "OMP_NUM_THREADS": "1",
        "WANDB_MODE": "offline",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
    }
    for command in commands:
        done = subprocess.run(
            ["bash", "-c", runnable(command)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"{page}: {command}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        if "train.py" in command and "experiment=" not in command:
            assert "macro_f1" in done.stdout, done.stdout[-2000:]
    assert list(tmp_path.rglob("metrics.json")), "no run wrote metrics.json"
