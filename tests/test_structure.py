"""The package's layering: no import cycle, the CLI on top, the information measures at the bottom.

The graph counts every import, at module level or inside a function, between files of
``src/sqnn`` (a package's ``__init__`` re-exporting its own submodules is not an edge).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src"
PACKAGE = SOURCE / "sqnn"


def _module(path: Path) -> str:
    return ".".join(path.relative_to(SOURCE).with_suffix("").parts).removesuffix(".__init__")


def _graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in PACKAGE.rglob("*.py")}

    def resolve(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in files}
    for module, path in files.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = module.split(".") if is_package else module.split(".")[:-1]
                    parts = parts[: len(parts) - (node.level - 1)]
                    base = ".".join(parts + ([base] if base else []))
                targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
            else:
                continue
            for target in targets:
                found = resolve(target) if target.split(".")[0] == "sqnn" else None
                if found and found != module and not (is_package and found.startswith(module + ".")):
                    graph[module].add(found)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return _graph()


def test_the_import_graph_has_no_cycle(graph) -> None:
    assert _cycles(graph) == []


def test_only_the_cli_imports_the_cli(graph) -> None:
    outside = {m: sorted(t for t in targets if t.startswith("sqnn.cli")) for m, targets in graph.items()
               if not m.startswith("sqnn.cli") and m != "sqnn.__main__"}
    assert {m: t for m, t in outside.items() if t} == {}


def test_information_measures_import_nothing_from_the_package(graph) -> None:
    assert graph["sqnn.info"] == set()


@pytest.mark.parametrize(
    ("lower", "upper"),
    [("sqnn.data", "sqnn.training"), ("sqnn.nn", "sqnn.methods"), ("sqnn.methods", "sqnn.runs"),
     ("sqnn.runs", "sqnn.training"), ("sqnn.training", "sqnn.evaluation"), ("sqnn.evaluation", "sqnn.workflows"),
     ("sqnn.engines", "sqnn.workflows")],
)
def test_lower_layers_do_not_import_upper_ones(graph, lower: str, upper: str) -> None:
    back_edges = sorted((m, t) for m, targets in graph.items() if m.startswith(lower) for t in targets if t.startswith(upper))
    assert back_edges == []


def test_every_document_a_module_names_exists() -> None:
    """A module citing ``docs/DESIGN.md`` or ``README.md`` points at a file of the repository (or of its folder)."""
    missing = []
    for path in PACKAGE.rglob("*.py"):
        for match in re.finditer(r"[\w./-]+\.md\b", path.read_text()):
            doc = match.group(0)
            if (doc.startswith("docs/") or doc[0].isupper() and "/" not in doc) and not ((ROOT / doc).exists() or (path.parent / doc).exists()):
                missing.append((path.relative_to(ROOT).as_posix(), doc))
    assert missing == []


@pytest.mark.parametrize("forbidden", ["sqnn.training", "sqnn.methods", "sqnn.data"])
def test_the_report_reads_results_only(graph, forbidden: str) -> None:
    """The report draws what evaluation stored; it never reloads data, refits or rebuilds a method."""
    reaching = sorted((m, t) for m, targets in graph.items() if m.startswith("sqnn.report") for t in targets
                      if t == forbidden or t.startswith(forbidden + "."))
    assert reaching == []


def test_evaluation_does_not_reach_into_training(graph) -> None:
    assert sorted(t for t in graph["sqnn.evaluation"] if t.startswith("sqnn.training")) == []


def _calls_on_an_objective(tree: ast.AST) -> list[tuple[str, int]]:
    """getattr/hasattr calls whose first argument is an objective (a name or attribute called ``objective``)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr") and node.args:
            target = node.args[0]
            name = target.id if isinstance(target, ast.Name) else target.attr if isinstance(target, ast.Attribute) else ""
            if "objective" in name.lower():
                found.append((node.func.id, node.lineno))
    return found


def test_nothing_outside_the_methods_inspects_an_objective() -> None:
    """Code outside sqnn.methods asks a method's description; it never looks attributes up by name."""
    peeking = []
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] == "methods":
            continue
        peeking += [(path.relative_to(ROOT).as_posix(), *call) for call in _calls_on_an_objective(ast.parse(path.read_text()))]
    assert peeking == []


def test_a_method_is_registered_in_one_place() -> None:
    """No table outside sqnn.methods lists methods by name: a new method is one module and one registry entry."""
    from sqnn.methods import METHODS

    names = set(METHODS)
    tables = []
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] == "methods":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            keys = node.keys if isinstance(node, ast.Dict) else node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else []
            listed = {k.value for k in keys if isinstance(k, ast.Constant) and isinstance(k.value, str)} & names
            if len(listed) >= 2:
                tables.append((path.relative_to(ROOT).as_posix(), node.lineno, sorted(listed)))
    assert tables == []


def test_the_design_lists_every_module() -> None:
    """docs/DESIGN.md's layout names every module of the package (the cases' generator by its folder)."""
    layout = (ROOT / "docs" / "DESIGN.md").read_text().split("## Layout", 1)[1]
    named = set(re.findall(r"([\w]+\.py)", layout))
    missing = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if path.name == "__init__.py" and relative.parent.name not in ("datasets",):
            continue
        if relative.parts[0] == "cli":
            continue  # "one small module per command"
        if path.name not in named:
            missing.append(relative.as_posix())
    assert missing == []
