"""The package layout keeps its promises: one job per module, data flowing one way.

Checked statically from the source: no import cycle inside the package (lazy imports
count too), no ``from x import _name`` across modules, no module over 600 lines outside
``testing/``.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "airflow_provider_clarity"
MAX_LINES = 600


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE.parent)
        if "testing" in relative.parts:
            continue
        name = ".".join(relative.with_suffix("").parts).removesuffix(".__init__")
        found[name] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> tuple[set[str], list[str]]:
    """Package modules ``path`` imports (with the packages that brings in), and private names."""
    targets: set[str] = set()
    private: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PACKAGE.name):
            assert node.module is not None
            names.append(node.module)
            for alias in node.names:
                names.append(f"{node.module}.{alias.name}")
                if alias.name.startswith("_") and alias.name != "__version__":
                    private.append(f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        for name in names:
            parts = name.split(".")
            for end in range(2, len(parts) + 1):
                candidate = ".".join(parts[:end])
                if candidate in modules:
                    targets.add(candidate)
    return targets, private


def test_no_import_cycle_and_no_private_imports() -> None:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    private: list[str] = []
    for name, path in modules.items():
        targets, names = _imports(path, modules)
        # A module may import its own package's __init__ names; that is not a cycle.
        graph[name] = {t for t in targets if t != name and not name.startswith(f"{t}.")}
        private.extend(f"{name} imports {n}" for n in names)
    assert not private, private

    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target, stack)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    assert not cycles, cycles
    assert "airflow_provider_clarity.quota.ledger" in graph, "the walk found the package"


def test_no_module_over_600_lines() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in _modules().items()}
    too_long = {name: lines for name, lines in sizes.items() if lines > MAX_LINES}
    assert not too_long, too_long
    assert len(sizes) > 15, "the walk found the modules"
