"""The `sentisynth` command: the library's command-line tools under one name.

    sentisynth report DIR        # = python -m sentisynth.report DIR: a multirun's or study's report
    sentisynth aggregate DIR     # = python -m sentisynth.aggregate DIR: mean ± std over seeds per setting
    sentisynth predict RUN TEXT...  # labels for posts from a run's saved model (--file: a text file)
    sentisynth --version

Each subcommand is the module's own argparse main under another name (the `python -m` forms stay), so
options and errors are the same in both. Training and generation stay Hydra scripts (`train.py`,
`generate.py`): their configuration is a config tree, not flags.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib import import_module

# name -> (module, one line for `sentisynth --help`); imported only when chosen, so --help and --version are fast
COMMANDS: dict[str, tuple[str, str]] = {
    "report": ("sentisynth.report", "a multirun's or study's report: intervals, paired tests, tables, plots"),
    "aggregate": ("sentisynth.aggregate", "one table over a multirun: mean, std and 95% interval over seeds"),
    "predict": ("sentisynth.predict", "labels and probabilities for posts from a run's saved model"),
}


def version() -> str:
    from sentisynth import __version__

    return __version__


def _subcommand(name: str) -> Callable[[Sequence[str]], int]:
    module = import_module(COMMANDS[name][0])
    prog = f"sentisynth {name}"
    if name == "predict":
        return lambda argv: module.main(argv, prog=prog, inline=True)
    return lambda argv: module.main(argv, prog=prog)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sentisynth",
        description=__doc__.splitlines()[0],
        epilog="`sentisynth COMMAND --help` for a command's options.",
    )
    p.add_argument("--version", action="version", version=f"sentisynth {version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, summary) in COMMANDS.items():
        sub.add_parser(
            name, help=summary.replace("%", "%%"), add_help=False
        )  # the command's own parser reads its arguments
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in COMMANDS:
        return _subcommand(argv[0])(argv[1:])
    args = parser().parse_args(argv)  # --help, --version, or an unknown command (exit 2 with usage)
    if args.command is None:
        parser().print_help()
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
