"""The code's shape: no import cycles (function-level imports count), dependencies one way through the layers,
no function over 60 lines. Read from the source with `ast`, so a lazy import cannot hide a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "src" / "sentisynth"
MAX_FUNCTION_LINES = 60

# Lower layers never import higher ones (same layer: allowed, as long as there is no cycle).
LAYERS = [
    {
        "utils",
        "text",
        "tracking",
        "errors",
        "cache",
        "distributed",
        "schema",
        "quiet",
    },  # distributed: Lightning DDP glue (trainer settings, rank slices)
    {
        "data",
        "hub_data",
        "evaluation",
        "stats",
        "cli",
        "labels",
        "llm",
    },  # llm: the message-level LLM layer (OpenAI-compatible client, response cache, parsing); stats: arrays -> numbers (bootstrap, randomization); cli: Hydra glue (build, run_dir_of, open_tracker) over data + tracking
    {"classifiers", "analysis", "distill"},
    {"generation", "guidance", "filters", "provenance"},
    {"augment"},
    {"train", "report", "aggregate", "comparisons", "predict", "real_equivalent", "sweep"},
    {"study"},
    {"api", "cli_main"},  # the Python API: every stage, in-process
]
LAYER_OF = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def module_files(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package below `package`."""
    mods = {}
    for f in package.rglob("*.py"):
        name = ".".join(f.relative_to(package.parent).with_suffix("").parts)
        mods[name.removesuffix(".__init__")] = f
    return mods


def imported_modules(name: str, node: ast.Import | ast.ImportFrom, mods: dict[str, Path]) -> set[str]:
    """The package's modules an import statement (anywhere in the file) loads."""
    if isinstance(node, ast.Import):
        targets = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:
            parts = name.split(".") if mods[name].name == "__init__.py" else name.split(".")[:-1]
            parts = parts[: len(parts) - (node.level - 1)]
            base = ".".join(parts + ([base] if base else []))
        targets = [base] + [f"{base}.{a.name}" for a in node.names]
    found = set()
    for t in targets:
        while t and t not in mods:
            t = t.rpartition(".")[0]
        if t:
            found.add(t)
    return found


def import_graph(package: Path) -> dict[str, set[str]]:
    """module -> modules it imports; a module importing its own parent package (a re-export) does not count."""
    mods = module_files(package)
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, f in mods.items():
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                graph[m] |= {
                    t for t in imported_modules(m, node, mods) if t != m and not m.startswith(t + ".")
                }
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_package_has_no_import_cycle() -> None:
    graph = import_graph(PACKAGE)
    assert len(graph) > 30  # the walk really saw the package
    assert cycles(graph) == []


def test_cycle_check_catches_a_cycle_through_a_function_level_import(tmp_path: Path) -> None:
    pkg = tmp_path / "demo"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from demo.sub.b import B\n")
    (pkg / "a.py").write_text("from demo.sub import b\n")
    (pkg / "sub" / "b.py").write_text(
        "class B:\n    def f(self):\n        from ..a import x  # lazy\n        return x\n"
    )
    (pkg / "c.py").write_text("import demo.a\n")
    graph = import_graph(pkg)
    assert graph["demo.sub.b"] == {"demo.a"} and "demo.sub.b" in graph["demo.a"]
    assert cycles(graph) == [["demo.a", "demo.sub", "demo.sub.b"]]
    (pkg / "sub" / "b.py").write_text("class B:\n    pass\n")
    assert cycles(import_graph(pkg)) == []


def test_a_lazy_import_of_train_from_data_is_caught(tmp_path: Path) -> None:
    """The real package, copied, with one function-level import pointing back up: a cycle and an upward edge."""
    import shutil

    copy = tmp_path / "sentisynth"
    shutil.copytree(PACKAGE, copy)
    with open(copy / "data.py", "a", encoding="utf-8") as f:
        f.write("\n\ndef _late():\n    from sentisynth.train import run\n\n    return run\n")
    graph = import_graph(copy)
    assert any({"sentisynth.data", "sentisynth.train"} <= set(c) for c in cycles(graph))
    assert "sentisynth.train" in graph["sentisynth.data"] and layer_of("sentisynth.train") > layer_of(
        "sentisynth.data"
    )


def layer_of(module: str) -> int:
    part = module.split(".")[1] if "." in module else module
    if part not in LAYER_OF:
        raise AssertionError(f"module {module} is in no layer of tests/test_structure.py: add it to LAYERS")
    return LAYER_OF[part]


def test_dependencies_point_down_the_layers() -> None:
    graph = import_graph(PACKAGE)
    upward = sorted(
        f"{m} -> {t}"
        for m, targets in graph.items()
        if m != "sentisynth"
        for t in targets
        if t != "sentisynth" and layer_of(t) > layer_of(m)
    )
    assert upward == []


def test_layer_check_catches_an_upward_import() -> None:
    assert layer_of("sentisynth.filters.base") > layer_of("sentisynth.data")
    assert (
        layer_of("sentisynth.train")
        > layer_of("sentisynth.augment")
        > layer_of("sentisynth.generation.pipeline")
    )
    with pytest.raises(AssertionError, match="in no layer"):
        layer_of("sentisynth.newthing")


def long_functions(package: Path, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    out = []
    for f in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > limit:
                    out.append(f"{f.relative_to(package.parent)}:{node.lineno} {node.name} ({n} lines)")
    return out


def test_no_function_over_60_lines(tmp_path: Path) -> None:
    assert long_functions(PACKAGE) == []
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text("def f():\n" + "    x = 1\n" * 60)
    assert long_functions(tmp_path / "pkg") == ["pkg/m.py:1 f (61 lines)"]


def test_code_is_ruff_formatted() -> None:
    """`ruff format` was applied once; keep it (run `ruff format src tests benchmarks *.py` to fix)."""
    import shutil
    import subprocess
    import sys

    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    paths = ["src", "tests", "benchmarks", "train.py", "generate.py"]
    done = subprocess.run([ruff, "format", "--check", *paths], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
