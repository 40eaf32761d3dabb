"""The configuration reference, generated from `conf/` at every docs build, so it cannot drift.

An mkdocs hook (`hooks:` in mkdocs.yml): `docs/config_reference.md` holds the prose and a marker line; the
hook replaces the marker with one section per config group (every folder under `conf/`, nested ones such as
`hydra/launcher` included), one subsection per option file, and one table row per key: its dotted path, the
value as written in the YAML, and the YAML comment on (or under) that line. `python docs/gen_config_reference.py`
prints the generated markdown.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

CONF = Path(__file__).resolve().parents[1] / "conf"
MARKER = "<!-- config-reference -->"
KEY = re.compile(
    r"^(?P<indent>\s*)(?P<dash>-\s+)?(?P<key>[A-Za-z_@~+][\w.@/~+\-]*|\"[^\"]+\")\s*:(?:\s+|$)(?P<rest>.*)$"
)


@dataclass
class Entry:
    """One key of an option file: dotted path, value text and comment."""

    path: str
    value: str = ""
    comment: list[str] = field(default_factory=list)


def split_comment(text: str) -> tuple[str, str]:
    """`value  # comment` -> (value, comment); a `#` inside quotes or `${...}` is part of the value."""
    quote, depth = "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "#" and depth <= 0 and (i == 0 or text[i - 1] in " \t"):
            return text[:i].rstrip(), text[i + 1 :].strip()
    return text.rstrip(), ""


def open_brackets(text: str) -> int:
    """How many flow brackets (`[`, `{`) a value leaves open (quotes respected)."""
    quote, depth = "", 0
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
    return depth


def parse_option(text: str) -> tuple[list[str], list[Entry]]:
    """An option file -> (its header comment lines, its keys in file order)."""
    header: list[str] = []
    entries: list[Entry] = []
    stack: list[tuple[int, str]] = []  # (indent, key) of the enclosing mappings
    flow = 0  # brackets left open by the previous entry's value (a flow list/map over several lines)
    block_indent = -1  # inside a `|` / `>` block scalar: lines indented deeper than this are its text
    for line in text.splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if block_indent >= 0:
            if not stripped or indent > block_indent:
                continue
            block_indent = -1
        if not stripped:
            continue
        if not entries and stripped.startswith("#"):
            if not stripped.startswith("# @package"):
                header.append(stripped.lstrip("#").strip())
            continue
        value, comment = split_comment(line)
        if flow > 0 or (entries and (not value.strip() or value.strip().startswith("- "))):
            # continuation: the rest of a flow value, a block list item, or a comment line under a key
            last = entries[-1]
            if value.strip():
                last.value = f"{last.value} {value.strip()}".strip()
                flow += open_brackets(value)
            if comment:
                last.comment.append(comment)
            continue
        match = KEY.match(value)
        if not match:
            continue
        key = match["key"].strip('"')
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([k for _, k in stack] + [key])
        rest = match["rest"].strip()
        entries.append(Entry(path, rest, [comment] if comment else []))
        if rest in ("|", "|-", ">", ">-", "|+"):
            block_indent, entries[-1].value = indent, "(text block)"
        elif not rest:
            stack.append((indent, key))
        flow = open_brackets(rest)
    return header, entries


def cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def root_groups(conf: Path = CONF) -> set[str]:
    """The groups a command line chooses with `group=option`: those in the root configs' defaults."""
    names: set[str] = set()
    for path in conf.glob("*.yaml"):
        for entry in yaml.safe_load(path.read_text()).get("defaults", []):
            if isinstance(entry, dict):
                names |= {k.replace("optional ", "").replace("override ", "").strip() for k in entry}
    return names


def option_markdown(group: str, path: Path) -> list[str]:
    """One option file as a markdown subsection: header comment, then a key table."""
    header, entries = parse_option(path.read_text())
    name = path.stem
    if not group:
        how = f"Root config `{name}`"
    elif group in root_groups() or group.startswith("hydra/"):
        how = f"Chosen with `{group}={name}`"
    else:  # a block other configs include (`defaults: [/<group>/<name>@_here_]`), not chosen on its own
        how = f"Included by other configs (`defaults: [/{group}/{name}@...]`)"
    lines = [
        f"### `{group + '/' if group else ''}{name}`",
        "",
        f"{how}. Source: `conf/{path.relative_to(CONF)}`.",
        "",
    ]
    if header:
        lines += [" ".join(header), ""]
    rows = [e for e in entries if e.value or e.comment]
    if rows:
        lines += ["| key | value | comment |", "|---|---|---|"]
        lines += [
            f"| `{cell(e.path)}` | `{cell(e.value)}` | {cell(' '.join(e.comment))} |"
            if e.value
            else f"| `{cell(e.path)}` | | {cell(' '.join(e.comment))} |"
            for e in rows
        ]
        lines.append("")
    return lines


def groups(conf: Path = CONF) -> list[str]:
    """Every config group: each folder under conf/ that holds .yaml option files, as `a/b`."""
    found = {p.parent.relative_to(conf).as_posix() for p in conf.rglob("*.yaml") if p.parent != conf}
    return sorted(found)


def reference_markdown(conf: Path = CONF) -> str:
    """The whole generated reference: the root configs, then every group with every option."""
    lines = ["## Root configs", ""]
    for path in sorted(conf.glob("*.yaml")):
        lines += option_markdown("", path)
    for group in groups(conf):
        options = sorted((conf / group).glob("*.yaml"))
        lines += [
            f"## Group `{group}`",
            "",
            "Options: " + ", ".join(f"`{p.stem}`" for p in options) + ".",
            "",
        ]
        for path in options:
            lines += option_markdown(group, path)
    return "\n".join(lines)


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ARG001 (mkdocs hook signature)
    """mkdocs hook: fill the marker of the config reference page."""
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, reference_markdown())


if __name__ == "__main__":
    sys.stdout.write(reference_markdown() + "\n")
