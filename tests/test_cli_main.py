"""The `sentisynth` console command: --version, --help of the command and of each subcommand, and that
each subcommand is the module's own main (same options, same errors)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sentisynth import __version__
from sentisynth.cli_main import COMMANDS, main
from tests.conftest import ROOT


def test_version_and_top_level_help(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"sentisynth {__version__}"
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and all(name in out for name in ("report", "aggregate", "predict"))
    assert main([]) == 2 and "usage: sentisynth" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_subcommand_has_its_own_help(name: str, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main([name, "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and out.startswith(f"usage: sentisynth {name} ")


def test_subcommands_share_the_modules_errors(tmp_path: Path, capsys) -> None:
    assert main(["aggregate", str(tmp_path / "nope")]) == 2
    assert "error: multirun directory not found" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 2
    assert "error: no finished runs" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["predict", str(tmp_path)])  # neither posts nor --file
    assert e.value.code == 2 and "--file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["nosuchcommand"])
    assert e.value.code == 2 and "invalid choice" in capsys.readouterr().err


@pytest.mark.slow
def test_command_runs_as_a_process() -> None:
    """As the installed script runs it (`sentisynth = sentisynth.cli_main:main`), from a fresh interpreter."""
    script = ROOT / "pyproject.toml"
    assert 'sentisynth = "sentisynth.cli_main:main"' in script.read_text()
    for args in (["--version"], ["report", "--help"], ["predict", "--help"]):
        proc = subprocess.run(
            [sys.executable, "-m", "sentisynth.cli_main", *args], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr
        assert "sentisynth" in proc.stdout
