"""A real ``airflow api-server`` and a headless Debian Chromium for the UI tests.

``airflow_api_server`` (the connection-form test) runs in its own process group with its own
throwaway ``AIRFLOW_HOME`` (not the in-process suite's one from tests/conftest.py), the
simple auth manager with everyone an admin (no login page) and ``[core] test_connection =
Enabled``. ``running_api_server`` starts one with other settings (the quota page test runs
one on the suite's DB, with a user per role). The browser is Debian's
``/usr/bin/chromium`` (``scripts/install_chromium.sh`` installs it); Playwright only drives
it and never downloads one. Without it, or without Playwright, the tests skip and say why.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Locator, Page

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("CLARITY_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOT_DIR = REPO_ROOT / "docs" / "img"
UPDATE_SCREENSHOTS = os.environ.get("CLARITY_UPDATE_SCREENSHOTS", "") not in ("", "0")
SERVER_START_TIMEOUT = 90.0
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-proxy-server",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Everything not Airflow's own (PATH, HOME, locale, proxies...) is passed through; every
# AIRFLOW* variable is dropped so the in-process suite's settings cannot leak in.
_AIRFLOW_ENV_PREFIXES = ("AIRFLOW_", "AIRFLOW__", "_AIRFLOW")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _airflow_env(home: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_AIRFLOW_ENV_PREFIXES)}
    (home / "dags").mkdir(parents=True, exist_ok=True)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    return env


@dataclass
class ApiServer:
    """A running ``airflow api-server``; :meth:`api` calls its REST API as an admin."""

    base_url: str
    log_path: Path
    process: subprocess.Popen[bytes]
    _token: str | None = field(default=None, repr=False)

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no api-server log)"
        # Static files and translations are the bulk of the access log and say nothing.
        kept = [line for line in text.splitlines() if "path=/static/" not in line]
        return "\n".join(kept[-lines:])

    def _get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(self.base_url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status), response.read()
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read()

    def get(self, path: str, token: str | None = None) -> tuple[int, bytes]:
        """GET ``path``, with ``Authorization: Bearer token`` when a token is given."""
        return self._get(path, {"Authorization": f"Bearer {token}"} if token else None)

    def login(self, username: str, password: str) -> str:
        """A JWT from ``POST /auth/token`` for one of the simple auth manager's users."""
        request = urllib.request.Request(
            self.base_url + "/auth/token",
            data=json.dumps({"username": username, "password": password}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return str(json.loads(response.read())["access_token"])

    def api(self, path: str) -> tuple[int, Any]:
        """GET ``path`` with a token from the simple auth manager's all-admins endpoint."""
        if self._token is None:
            status, body = self._get("/auth/token")
            assert status in (200, 201), f"GET /auth/token answered {status}"
            self._token = json.loads(body)["access_token"]
        status, body = self._get(path, {"Authorization": f"Bearer {self._token}"})
        return status, json.loads(body) if body else None


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    # Signal the whole group the server leads. Its home is thrown away, so a server slow to
    # shut down is simply killed.
    for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _wait_healthy(server: ApiServer, deadline: float) -> None:
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"airflow api-server exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        try:
            status, _ = server._get("/api/v2/monitor/health")
        except OSError:
            status = 0
        if status == 200:
            return
        time.sleep(0.3)
    raise RuntimeError(
        f"airflow api-server not healthy after {SERVER_START_TIMEOUT:.0f}s:\n{server.log_tail()}"
    )


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium, or a skip that says how to get it."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"browser test skipped: {CHROMIUM} not found (run scripts/install_chromium.sh as "
            "root, or `apt-get install chromium`)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("browser test skipped: the playwright package is not installed")
    return CHROMIUM


@contextmanager
def running_api_server(
    home: Path, env_overrides: dict[str, str] | None = None, *, migrate: bool = True
) -> Iterator[ApiServer]:
    """Start ``airflow api-server`` for ``home`` on a free loopback port; stop it on exit.

    ``env_overrides`` change the environment of :func:`_airflow_env` (the auth manager's
    users, a shared DB's Fernet key...). ``migrate=False`` when ``home``'s DB is migrated.
    """
    port = _free_port()
    env = {**_airflow_env(home, port), **(env_overrides or {})}
    airflow = str(Path(sys.executable).parent / "airflow")
    if migrate:
        done = subprocess.run(
            [airflow, "db", "migrate"], env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-40:])
            raise RuntimeError(f"airflow db migrate failed:\n{tail}")

    # One worker and no Execution API (no task runs here): a quicker start.
    command = [airflow, "api-server", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", "1", "--apps", "core"]
    log_path = home / f"api-server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = ApiServer(base_url=f"http://127.0.0.1:{port}", log_path=log_path, process=process)
    try:
        _wait_healthy(server, time.monotonic() + SERVER_START_TIMEOUT)
        yield server
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def airflow_api_server(chromium: Path) -> Iterator[ApiServer]:
    """``airflow api-server`` on a free loopback port, with a fresh migrated AIRFLOW_HOME."""
    home = Path(tempfile.mkdtemp(prefix="clarity-ui-airflow-home-"))
    try:
        with running_api_server(home) as server:
            yield server
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def browser_context(
    chromium: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrowserContext]:
    """A headless Chromium with a fresh profile, shared by the UI tests."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            user_data_dir=str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(chromium),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
            locale="en-US",
            timezone_id="UTC",
        )
        context.set_default_timeout(15_000)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser_context: BrowserContext) -> Iterator[Page]:
    """A new tab, closed after the test."""
    tab = browser_context.new_page()
    try:
        yield tab
    finally:
        tab.close()


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """docs/img with CLARITY_UPDATE_SCREENSHOTS=1 (``make screenshots``), else a temp dir."""
    if UPDATE_SCREENSHOTS:
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        return SCREENSHOT_DIR
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture
def screenshot(screenshot_dir: Path) -> Callable[[Page | Locator, str], Path]:
    """``screenshot(page_or_locator, "name.png")`` saves a PNG and returns its path."""

    def _take(target: Page | Locator, name: str) -> Path:
        path = screenshot_dir / name
        target.screenshot(path=str(path), animations="disabled")
        return path

    return _take


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """Attach the api-server's log tail to a failing UI test's report."""
    outcome = yield
    report = outcome.get_result()
    server = getattr(item, "funcargs", {}).get("airflow_api_server")
    if report.failed and isinstance(server, ApiServer):
        report.sections.append(("airflow api-server log (tail)", server.log_tail()))
