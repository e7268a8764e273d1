"""The user guide builds cleanly, and what it shows a user is true.

`mkdocs build --strict` must pass with zero warnings, every page in the nav and every image
must exist, and the code the guide tells people to copy must at least compile. The first
DAG of the getting-started page must import with no DagBag errors, the connection
examples must parse the way the connection reference says they do, and the messages the
guide quotes must be the ones the code really produces. What a newcomer copies is run as
written: the README's first DAG with `dag.test()`, the first run on a fresh `AIRFLOW_HOME`, the
examples whose output is shown, and the command that prints the whole `test_connection` message.
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


# -- What a newcomer copies: install wording, the first DAG, the first run, shown output --

README = REPO_ROOT / "README.md"
AIRFLOW_BIN = Path(sys.executable).parent / "airflow"
#: The one wording of "not on the package index yet", on every page that says `pip install`.
PIP_NOTE = (
    "**Not on PyPI yet.** Until the first release, `pip install airflow-provider-clarity` finds "
    "nothing: build the wheel in a checkout (`uv build`) and install that "
    "(`pip install dist/airflow_provider_clarity-*.whl`, extras as "
    '`"dist/airflow_provider_clarity-0.1.0-py3-none-any.whl[amazon]"`), or run `pip install .` '
    "in the checkout. The `pip install airflow-provider-clarity` lines here work once it is "
    "published."
)
PIP_INSTALL_LINE = re.compile(r"^\s*pip install ['\"]?airflow-provider-clarity\b", re.MULTILINE)
SHOWN_OUTPUT = re.compile(r"^(?P<code>print\(.*\))[ \t]+#[ \t](?P<shown>.+)$", re.MULTILINE)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _install_pages() -> list[Path]:
    """Every page with a `pip install airflow-provider-clarity` line, and the deployment guide."""
    pages = [README, *_pages()]
    return [p for p in pages if PIP_INSTALL_LINE.search(p.read_text()) or p.name == "deployment.md"]


@pytest.mark.parametrize("page", _install_pages(), ids=lambda p: p.name)
def test_every_install_page_says_the_package_is_not_published_yet_in_one_wording(
    page: Path,
) -> None:
    text = page.read_text()
    # deployment.md lists the requirement lines rather than a pip command.
    assert PIP_INSTALL_LINE.search(text) or "airflow-provider-clarity[amazon]" in text
    assert _one_line(PIP_NOTE) in _one_line(text)


@pytest.fixture
def fresh_demo_ledger(airflow_db: Path) -> Iterator[None]:
    """All of demo-project's calls free: its ledger Variable outlives the tests that spend them."""
    from airflow.models.variable import Variable

    from airflow_provider_clarity.quota import ledger_key

    Variable.delete(ledger_key("demo-project"))
    yield
    Variable.delete(ledger_key("demo-project"))


def _readme_first_dag() -> str:
    blocks = [b for b in PYTHON_BLOCK.findall(README.read_text()) if "with DAG(" in b]
    assert blocks, "README.md shows no DAG"
    return blocks[0]


def test_readme_first_dag_runs_with_dag_test(
    fresh_demo_ledger: None, clarity_emulator: Any, clarity_connection: str, tmp_path: Path
) -> None:
    """``with DAG(...) as dag:`` lets ``dag.test()`` run the README's DAG unedited."""
    import runpy

    from tests.conftest import DAGS_FOLDER

    source = _readme_first_dag().replace("s3://aws_default@my-bucket/clarity", tmp_path.as_uri())
    dag_file = DAGS_FOLDER / "readme_first_dag.py"
    dag_file.write_text(source)
    try:
        # As `python clarity_by_device.py` runs it: __main__ calls dag.test().
        namespace = runpy.run_path(str(dag_file), run_name="__main__")
    finally:
        dag_file.unlink()

    from airflow.models.dagrun import DagRun

    runs = DagRun.find(dag_id=namespace["dag"].dag_id)
    assert max(runs, key=lambda run: run.id).state == "success"
    assert clarity_emulator.total_requests() == 1
    assert len(list(tmp_path.glob("dt=*/by_device.parquet"))) == 1


def _section(page: Path, heading: str) -> str:
    return page.read_text().split(heading, 1)[1].split("\n## ", 1)[0]


def test_getting_started_first_run_works_on_a_fresh_airflow_home(
    clarity_emulator: Any, clarity_token: str, tmp_path: Path
) -> None:
    """Steps 4 and 5 as written, in an AIRFLOW_HOME that has never been used."""
    home = tmp_path / "airflow-home"
    (home / "dags").mkdir(parents=True)
    output = tmp_path / "clarity"
    (home / "dags" / "clarity_by_device.py").write_text(
        _first_dag().replace("file:///tmp/clarity", output.as_uri())
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__FERNET_KEY=os.environ["AIRFLOW__CORE__FERNET_KEY"],
        AIRFLOW_CONN_CLARITY_DEFAULT=clarity_emulator.airflow_conn_json(
            clarity_token, project_id="demo-project"
        ),
    )
    run_it = _section(DOCS / "getting-started.md", "## 5. Run it")
    [commands] = re.findall(r"```bash\n(.*?)```", run_it, re.DOTALL)
    lines = [line.split("#", 1)[0].strip() for line in commands.splitlines()]
    lines = [line for line in lines if line]
    assert lines[-1] == "airflow dags test clarity_by_device"
    for line in lines:
        argv = line.split()
        assert argv[0] == "airflow", line
        result = subprocess.run(
            [str(AIRFLOW_BIN), *argv[1:]],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert result.returncode == 0, (
            f"`{line}` failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    assert clarity_emulator.total_requests() == 1
    assert len(list(output.glob("dt=*/by_device.parquet"))) == 1


def _blocks_with_shown_output() -> list[tuple[str, str]]:
    found = []
    for page in [README, *_pages()]:
        for number, block in enumerate(PYTHON_BLOCK.findall(page.read_text()), start=1):
            if SHOWN_OUTPUT.search(block):
                found.append((f"{page.name}#{number}", block))
    return found


def test_the_examples_with_shown_output_are_found() -> None:
    assert [name for name, _ in _blocks_with_shown_output()] == ["derive.md#1"]


@pytest.mark.parametrize(
    "block",
    [b for _, b in _blocks_with_shown_output()],
    ids=[n for n, _ in _blocks_with_shown_output()],
)
def test_an_example_prints_what_its_comments_show(
    block: str, fresh_demo_ledger: None, clarity_connection: str
) -> None:
    """Run the example against the emulator; each ``print(...)  # x`` must print ``x``."""
    printed: list[str] = []

    def capture(*values: Any) -> None:
        printed.append(" ".join(str(value) for value in values))

    exec(compile(block, "example", "exec"), {"print": capture})

    assert printed == [match["shown"] for match in SHOWN_OUTPUT.finditer(block)]


def test_the_whole_test_connection_message_command_prints_it(
    clarity_emulator: Any, clarity_token: str, tmp_path: Path
) -> None:
    text = (DOCS / "connection.md").read_text()
    after = text.split("<!-- command: test-connection -->", 1)[1]
    [command] = re.findall(r"```bash\n(.*?)\n```", after, re.DOTALL)[:1]
    assert command.startswith("python -c ")
    env = {
        **os.environ,
        "AIRFLOW_CONN_CLARITY_DEFAULT": clarity_emulator.airflow_conn_json(
            clarity_token, project_id="demo-project"
        ),
    }
    code = command.removeprefix("python -c ").strip("'")
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stderr
    message = result.stdout.strip().splitlines()[-1]
    assert message.startswith("Token for project demo-project is valid; expires on ")
    # The session's metadata DB has no clarity_api pool: the note the CLI would drop.
    assert "Note: the pool 'clarity_api' does not exist" in message
    shown = re.search(r"```text\n(Token for project demo-project.*?)\n```", after, re.DOTALL)
    assert shown is not None
    expiry = re.compile(r"expires on \d{4}-\d\d-\d\d \d\d:\d\d UTC")
    assert expiry.sub("expires on X", shown.group(1)) == expiry.sub("expires on X", message)
    assert clarity_emulator.total_requests() == 0


def test_quota_page_urls_in_the_guide_are_the_plugins() -> None:
    from airflow_provider_clarity.plugins.quota_plugin import URL_PREFIX, ClarityQuotaPlugin

    [view] = ClarityQuotaPlugin.external_views
    section = _section(DOCS / "quota-page.md", "## Opening it on a local api-server")
    urls = re.findall(r"<(http://localhost:8080[^>]*)>", section)
    assert urls == [
        "http://localhost:8080",
        f"http://localhost:8080/plugin/{view['url_route']}",
        f"http://localhost:8080{URL_PREFIX}/",
        f"http://localhost:8080{URL_PREFIX}/api/projects",
    ]
    assert "log in as **`admin`**" in section
