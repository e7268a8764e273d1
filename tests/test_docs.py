"""The user guide builds cleanly, and what it shows a user is true.

`mkdocs build --strict` must pass with zero warnings, every page in the nav and every image
must exist, and the code the guide tells people to copy must at least compile. The first
DAG of the getting-started page must import with no DagBag errors, the connection
examples must parse the way the connection reference says they do, and the messages the
guide quotes must be the ones the code really produces.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCS = REPO_ROOT / "docs"
MKDOCS_YML = REPO_ROOT / "mkdocs.yml"

PYTHON_BLOCK = re.compile(r"^```python[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)")
PLACEHOLDER = re.compile(r"\b(TODO|TBD|FIXME|XXX)\b|coming soon", re.IGNORECASE)


def _nav_files(nav: Any) -> Iterator[str]:
    """Every page file named in an mkdocs nav, however deeply nested."""
    if isinstance(nav, str):
        yield nav
    elif isinstance(nav, list):
        for item in nav:
            yield from _nav_files(item)
    elif isinstance(nav, dict):
        for value in nav.values():
            yield from _nav_files(value)


def _nav() -> list[str]:
    config = yaml.safe_load(MKDOCS_YML.read_text())
    return [page for page in _nav_files(config["nav"]) if not page.startswith("http")]


def _pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def _python_blocks(page: Path) -> list[str]:
    return PYTHON_BLOCK.findall(page.read_text())


def _first_dag() -> str:
    blocks = [b for b in _python_blocks(DOCS / "getting-started.md") if "with DAG(" in b]
    assert blocks, "getting-started.md shows no DAG"
    return blocks[0]


def test_strict_build_has_no_warnings(tmp_path: Path) -> None:
    # The site is built once, with the newest Airflow's .venv; `make compat` envs lack mkdocs.
    pytest.importorskip("mkdocs", reason="docs build in .venv (make docs), not in make compat")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING" not in output, output
    for page in _nav():
        built = site / ("index.html" if page == "index.md" else f"{page[:-3]}/index.html")
        assert built.is_file(), f"{page} was not built"
    # The API reference really was generated from the docstrings.
    operator_page = (site / "operator" / "index.html").read_text()
    assert "on_quota_exhausted" in operator_page
    assert "doc-signature" in operator_page or "doc-heading" in operator_page


def test_every_nav_page_exists_and_every_page_is_in_the_nav() -> None:
    nav = _nav()
    assert nav[0] == "index.md"
    for page in nav:
        assert (DOCS / page).is_file(), f"mkdocs.yml lists {page}, which does not exist"
    assert sorted(nav) == sorted(p.name for p in _pages())


def test_every_referenced_image_exists() -> None:
    referenced = 0
    for page in _pages():
        for target in IMAGE.findall(page.read_text()):
            referenced += 1
            assert (page.parent / target).is_file(), f"{page.name} shows missing image {target}"
    assert referenced, "the guide should show the connection form screenshots"


def test_no_placeholder_text() -> None:
    for page in _pages():
        found = PLACEHOLDER.search(page.read_text())
        assert found is None, f"{page.name} contains placeholder text {found.group(0)!r}"


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.name)
def test_python_blocks_compile(page: Path) -> None:
    for number, block in enumerate(_python_blocks(page), start=1):
        compile(block, f"{page.name} python block {number}", "exec")


def test_first_dag_is_short_and_imports_without_errors(airflow_db: Path, tmp_path: Path) -> None:
    from airflow_provider_clarity.version_compat import DagBag

    source = _first_dag()
    assert len([line for line in source.splitlines() if line.strip()]) <= 10
    dag_file = tmp_path / "clarity_first_dag.py"
    dag_file.write_text(source)

    bag = DagBag(dag_folder=str(dag_file))

    assert bag.import_errors == {}
    [dag_id] = bag.dag_ids
    [task] = bag.get_dag(dag_id).tasks
    # The guide tells users to create this pool before the first run.
    assert task.pool == "clarity_api"


@pytest.mark.parametrize(
    "arguments", [{"num_of_days": 7}, {"dimensions": ["Devce"]}], ids=["num_of_days", "dimension"]
)
def test_quoted_parse_time_errors_are_the_real_ones(arguments: dict[str, Any]) -> None:
    from airflow_provider_clarity.exceptions import ClarityRequestError
    from airflow_provider_clarity.operators.export import ClarityExportOperator

    with pytest.raises(ClarityRequestError) as info:
        ClarityExportOperator(task_id="by_device", **arguments)

    assert f"ClarityRequestError: {info.value}" in (DOCS / "troubleshooting.md").read_text()


def test_quoted_missing_pool_note_is_the_real_one(airflow_db: Path) -> None:
    from airflow_provider_clarity.quota import missing_pool_note

    note = missing_pool_note("clarity_docs_no_such_pool")

    assert note is not None
    quoted = note.replace("clarity_docs_no_such_pool", "clarity_api")
    assert quoted in (DOCS / "connection.md").read_text()


def test_connection_examples_parse_as_documented(airflow_db: Path) -> None:
    from airflow.models.connection import Connection

    text = (DOCS / "connection.md").read_text()
    [uri] = re.findall(r"AIRFLOW_CONN_CLARITY_DEFAULT='(clarity://[^']+)'", text)
    from_uri = Connection(conn_id="clarity_default", uri=uri)
    assert from_uri.conn_type == "clarity"
    assert from_uri.host == "www.clarity.ms"
    assert from_uri.password and from_uri.password.startswith("eyJ")
    assert from_uri.extra_dejson == {"project_id": "abc123xyz", "daily_limit": 10, "reserve": 2}

    [json_form] = re.findall(r"AIRFLOW_CONN_CLARITY_DEFAULT='(\{.+?\})'", text, re.DOTALL)
    from_json = Connection.from_json(json_form, conn_id="clarity_default")
    assert from_json.conn_type == "clarity"
    assert from_json.password == from_uri.password
    assert from_json.extra_dejson == from_uri.extra_dejson
    assert json.loads(json_form)["extra"]["project_id"] == "abc123xyz"
