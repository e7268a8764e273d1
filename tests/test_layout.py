"""The package layout keeps its promises: one job per module, data flowing one way.

Checked statically from the source and the contributors' page (docs/architecture.md): no
import cycle inside the package (lazy imports count too), no ``from x import _name`` across
modules, no module or test file over 600 lines, tests that mirror the package, one
description per module (its docstring's first line, repeated verbatim in the page's layout
table, which must list every module and package), and ``__all__`` only on the public
modules the page lists.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "airflow_provider_clarity"
TESTS = ROOT / "tests"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
MAX_LINES = 600
#: Test directories and modules about the whole provider, not one module of it.
CROSS_CUTTING_DIRS = frozenset({"integration", "ui", "wasted_calls"})
CROSS_CUTTING_TESTS = frozenset(
    {
        "test_docs.py",
        "test_layout.py",
        "test_example_dags.py",
        "test_error_messages.py",
        "test_parse_cost.py",
        "test_import_cost.py",
        "test_schema_contract.py",
    }
)
#: Helper modules a test folder may hold beside its tests.
HELPERS = frozenset({"__init__.py", "conftest.py", "fixtures.py"})


def _modules(*, with_testing: bool = False) -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE.parent)
        if "testing" in relative.parts and not with_testing:
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


def _docs_section(title: str) -> str:
    text = ARCHITECTURE.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def _table() -> dict[str, str]:
    """The layout table of docs/architecture.md: path (``quota/``, ``quota/ledger.py``) -> job."""
    rows = re.findall(r"^\| `([^`]+)` \| (.+?) \|$", _docs_section("The modules"), re.M)
    return dict(rows)


def _description(path: Path) -> str:
    docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
    return docstring.strip().splitlines()[0] if docstring.strip() else ""


def _tree_paths() -> dict[str, Path]:
    """Every module and package, as the table names them: ``quota/``, ``quota/ledger.py``."""
    paths: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if path.name == "__init__.py":
            relative = relative.removesuffix("__init__.py") or "__init__.py"
        paths[relative] = path
    return paths


def _public() -> set[str]:
    """The public modules docs/architecture.md lists, as dotted names."""
    lines = [line for line in _docs_section("The public surface").splitlines() if line[:2] == "- "]
    pattern = r"`(airflow_provider_clarity[\w.]*)`"
    return {name for line in lines for name in re.findall(pattern, line)}


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


def test_no_test_file_over_600_lines() -> None:
    sizes = {
        p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines()) for p in TESTS.rglob("*.py")
    }
    too_long = {name: lines for name, lines in sizes.items() if lines > MAX_LINES}
    assert not too_long, too_long
    assert len(sizes) > 30, "the walk found the tests"


def _mirrored(test: Path) -> bool:
    """Whether ``tests/a/test_b[_aspect].py`` names module ``a/b.py`` or package ``a/b/``."""
    folder = PACKAGE.joinpath(*test.relative_to(TESTS).parent.parts)
    words = test.stem.removeprefix("test_").split("_")
    for end in range(len(words), 0, -1):
        name = "_".join(words[:end])
        if name == "main":
            name = "__main__"
        if (folder / f"{name}.py").is_file() or (folder / name / "__init__.py").is_file():
            return True
    return False


def test_tests_mirror_the_package() -> None:
    strays: list[str] = []
    checked = 0
    for test in sorted(TESTS.rglob("*.py")):
        relative = test.relative_to(TESTS)
        if relative.parts[0] in CROSS_CUTTING_DIRS or test.name in HELPERS:
            continue
        if len(relative.parts) == 1 and test.name in CROSS_CUTTING_TESTS:
            continue
        checked += 1
        if not test.name.startswith("test_") or not _mirrored(test):
            strays.append(relative.as_posix())
    assert not strays, f"test modules that name no module of the package: {strays}"
    assert checked > 20, "the walk found the tests"


def test_architecture_table_lists_every_module_with_its_docstring() -> None:
    table = _table()
    tree = _tree_paths()
    data = [path for path in table if not path.endswith((".py", "/"))]  # schema files
    assert all((PACKAGE / path).is_file() for path in data), data
    table = {path: job for path, job in table.items() if path not in data}
    assert set(table) == set(tree), {
        "in the table, not in the tree": sorted(set(table) - set(tree)),
        "in the tree, not in the table": sorted(set(tree) - set(table)),
    }
    drifted = {
        path: (table[path], _description(file))
        for path, file in tree.items()
        if table[path] != _description(file)
    }
    assert not drifted, drifted


def test_every_module_says_its_job_once() -> None:
    missing = [p for p, f in _tree_paths().items() if not _description(f)]
    assert not missing, f"modules without a docstring: {missing}"
    style = [
        p
        for p, f in _tree_paths().items()
        if "STYLE:" in (ast.get_docstring(ast.parse(f.read_text())) or "")
    ]
    assert not style, f"second descriptions (STYLE: lines) left in: {style}"


def test_all_only_on_the_public_modules() -> None:
    public = _public()
    modules = _modules(with_testing=True)
    assert public <= set(modules), sorted(public - set(modules))
    with_all = {
        name
        for name, path in modules.items()
        if any(
            isinstance(node, ast.Assign | ast.AnnAssign)
            and "__all__"
            in ast.unparse(node.targets[0] if isinstance(node, ast.Assign) else node.target)
            for node in ast.parse(path.read_text()).body
        )
    }
    assert with_all == public, {
        "__all__ on a module the docs do not call public": sorted(with_all - public),
        "public module without __all__": sorted(public - with_all),
    }
    assert "airflow_provider_clarity.operators.export" in public, "the docs list was read"
