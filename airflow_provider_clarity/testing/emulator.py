"""A local stand-in for the Microsoft Clarity Data Export API, served over real HTTP.

``ClarityEmulator`` runs a small threaded HTTP server on 127.0.0.1 that answers
``GET /export-data/api/v1/project-live-insights`` the way the live service does (see
``clarity-api-observed.md``): JWT bearer tokens per project, 400/401/403/429 errors, the
9- or 16-block payload with its odd key casing and spellings, a per-project daily quota,
and injectable faults. Tests, demos and users' own DAG tests run against it so that no
call ever spends one of the ten real calls a day.

The tokens it issues are signed with a random key that lives only in the emulator object;
they are worthless anywhere else, so printing them (as the CLI does) is harmless.

This module must not import Airflow: it is loaded by the pytest plugin in every test
session of every user of the provider.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self, get_args
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import jwt

from airflow_provider_clarity.testing import _data
from airflow_provider_clarity.testing.answers import RowCapScope, WireStyle, answer
from airflow_provider_clarity.testing.population import Population, window

__all__ = [
    "API_PATH",
    "AUDIENCE",
    "EXPORT_SCOPE",
    "ISSUER",
    "ClarityEmulator",
    "FaultKind",
    "RecordedRequest",
]

API_PATH = "/export-data/api/v1/project-live-insights"
ISSUER = "clarity"
AUDIENCE = "clarity.data-exporter"
EXPORT_SCOPE = "Data.Export"
QUOTA_MESSAGE = b"Exceeded daily limit"

FaultKind = Literal[
    "server_error",
    "slow",
    "drop",
    "truncated",
    "redirect",
    "echo_gateway",
    "html_200",
    "ignore_dimensions",
]
Window = Literal["utc_day", "rolling"]
Traffic = Literal["normal", "empty"]
Spelling = bool | Literal["mixed"]
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request the emulator received, as a test would want to inspect it.

    ``headers`` has the ``Authorization`` value replaced by ``"<scheme> <redacted>"``.
    ``status`` is ``None`` when the emulator closed the connection without answering
    (a ``drop`` fault, or a ``slow`` one interrupted by ``ClarityEmulator.stop``).
    ``counted`` says whether the call was charged to the project's quota.
    """

    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    project: str | None
    status: int | None
    at: datetime
    counted: bool = False
    fault: FaultKind | None = None


@dataclass
class _Project:
    traffic: Traffic = "normal"
    url_count: int = 1200
    vendor_spelling: Spelling | None = None
    os_key: str | None = None
    missing_fields: bool | None = None
    daily_limit: int | None = None
    mobile_app: bool = False
    row_cap_scope: RowCapScope | None = None
    profile: _data.ProjectProfile | None = None


@dataclass
class _Fault:
    kind: FaultKind
    remaining: int  # -1: until cleared
    delay: float
    location: str = ""


@dataclass
class _Outcome:
    status: int | None = None
    body: bytes = b""
    content_type: str | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: ClarityEmulator) -> None:
        self.emulator = emulator
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out or vanish mid-answer are part of the game, not an error.
        return


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "ClarityEmulator"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.server.emulator._track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.emulator._untrack(self.connection)

    def do_GET(self) -> None:
        self.server.emulator._serve(self)

    def _not_allowed(self) -> None:
        self.server.emulator._serve(self, allowed=False)

    do_POST = do_PUT = do_PATCH = do_DELETE = _not_allowed

    def log_message(self, format: str, *args: Any) -> None:
        # The default writes every request line to stderr; tests read `requests` instead.
        return

    def reply(self, outcome: _Outcome) -> None:
        assert outcome.status is not None
        try:
            self.send_response(outcome.status)
            if outcome.content_type:
                self.send_header("Content-Type", outcome.content_type)
            for name, value in outcome.extra_headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(outcome.body)))
            self.end_headers()
            if outcome.body:
                self.wfile.write(outcome.body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class ClarityEmulator:
    """A real HTTP server that behaves like the Clarity Data Export API.

    Use it as a context manager (``with ClarityEmulator() as emu:``), through the
    ``clarity_emulator`` pytest fixture, or with ``python -m airflow_provider_clarity.testing``.

    Args:
        host: interface to bind; keep the default loopback address for tests.
        port: TCP port; 0 picks a free one (read it back from ``base_url``).
        seed: all generated data derives from this seed and the project name.
        daily_limit: calls per project per window before 429 (per-project override in
            ``configure_project``).
        window: ``"utc_day"`` resets at 00:00 UTC; ``"rolling"`` counts the calls of the
            last ``rolling_window_seconds``.
        rolling_window_seconds: length of the rolling window.
        count_failed_calls: whether 400/500 answers and dropped connections are charged to
            the quota. 200s always count; 401, 403 and 429 never do.
        clock: returns the current time as an aware UTC datetime (naive means UTC); drives
            the quota window and token expiry. Defaults to the system clock.
        vendor_spelling: ``False`` for the live spellings (``distinctUserCount``,
            ``pagesPerSessionPercentage``), ``True`` for the vendor page's
            (``distantUserCount``, ``PagesPerSessionPercentage``), ``"mixed"`` for both in
            one response (alternating Traffic rows).
        os_key: the row key used for the ``OS`` dimension; ``"Os"`` as one live source shows,
            or ``"OS"`` as the vendor page shows.
        missing_fields: drop a field or two from about 5% of click-metric rows (the same
            rows on every call), and in the no-dimension snapshot leave out the fields the
            live capture left out, as the live service does.
        row_cap_scope: where the 1000-row cap applies: ``"block"`` (each block keeps at most
            1000 rows; the default) or ``"response"`` (the whole response does: blocks are
            filled in order and later ones come back short or empty). Clarity does not say
            which it does.
        refresh_seconds: how often the emulated service recomputes its aggregates. An answer
            covers the sessions that started in ``(end - numOfDays x 24 h, end]`` where
            ``end`` is the call time floored to a multiple of this (default an hour), so calls
            made close together agree exactly. ``0`` ends windows at the exact call time.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        daily_limit: int = 10,
        window: Window = "utc_day",
        rolling_window_seconds: int = 86400,
        count_failed_calls: bool = True,
        clock: Clock | None = None,
        vendor_spelling: Spelling = False,
        os_key: str = "Os",
        missing_fields: bool = True,
        row_cap_scope: RowCapScope = "block",
        refresh_seconds: int = 3600,
    ) -> None:
        if window not in get_args(Window):
            raise ValueError(f"window must be 'utc_day' or 'rolling', not {window!r}")
        if daily_limit < 0 or rolling_window_seconds <= 0:
            raise ValueError("daily_limit must be >= 0 and rolling_window_seconds > 0")
        if row_cap_scope not in get_args(RowCapScope):
            raise ValueError(f"row_cap_scope must be 'block' or 'response', not {row_cap_scope!r}")
        if refresh_seconds < 0:
            raise ValueError("refresh_seconds must be >= 0")
        self.host = host
        self.seed = seed
        self.daily_limit = daily_limit
        self.window: Window = window
        self.rolling_window_seconds = rolling_window_seconds
        self.count_failed_calls = count_failed_calls
        self.vendor_spelling: Spelling = vendor_spelling
        self.os_key = os_key
        self.missing_fields = missing_fields
        self.row_cap_scope: RowCapScope = row_cap_scope
        self.refresh_seconds = refresh_seconds
        self._clock: Clock = clock or (lambda: datetime.now(UTC))
        self._requested_port = port
        self._key = secrets.token_bytes(32)
        self._lock = threading.RLock()
        self._projects: dict[str, _Project] = {}
        self._ledger: dict[str, list[datetime]] = {}
        self._faults: list[_Fault] = []
        self._requests: list[RecordedRequest] = []
        self._connections: set[socket.socket] = set()
        self._in_flight = 0
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> Self:
        """Bind the port and serve in a daemon thread. Returns self; a no-op if running."""
        with self._lock:
            if self._server is not None:
                return self
            self._stopping.clear()
            server = _Server((self.host, self._requested_port), self)
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"clarity-emulator-{server.server_address[1]}",
                daemon=True,
            )
            self._server, self._thread = server, thread
        thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection; pending slow answers are dropped."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
            connections = list(self._connections)
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the server is currently accepting connections."""
        return self._server is not None

    @property
    def port(self) -> int:
        """The bound TCP port. Raises RuntimeError before ``start``."""
        if self._server is None:
            raise RuntimeError("The Clarity emulator is not running; call start() first")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT``: the value for the connection's host field."""
        return f"http://{self.host}:{self.port}"

    @property
    def endpoint_url(self) -> str:
        """The full URL of the live-insights endpoint."""
        return self.base_url + API_PATH

    # ----------------------------------------------------------------- projects and tokens
    def configure_project(
        self,
        project: str,
        *,
        traffic: Traffic = "normal",
        url_count: int = 1200,
        vendor_spelling: Spelling | None = None,
        os_key: str | None = None,
        missing_fields: bool | None = None,
        daily_limit: int | None = None,
        mobile_app: bool = False,
        row_cap_scope: RowCapScope | None = None,
    ) -> None:
        """Declare (or redefine) a project and how its data looks.

        Args:
            traffic: ``"empty"`` makes every block come back with ``"information": []``.
            url_count: distinct URLs on the site; with >= 1000 a ``URL`` breakdown fills every
                block to the 1000-row cap.
            vendor_spelling, os_key, missing_fields: per-project overrides of the emulator-wide
                settings (``None`` keeps the emulator's).
            daily_limit: per-project quota; ``None`` keeps the emulator's.
            mobile_app: answer as a mobile-app project does: ``DeadTapCount``,
                ``RageTapCount``, ``ApplicationErrorCount``, ``PopularScreens`` (rows with
                ``screenName``), ``screensViews`` and ``screensPerSessionPercentage``; the
                ``URL`` dimension carries screen names.
            row_cap_scope: per-project override of the emulator's ``row_cap_scope``.
        """
        if traffic not in get_args(Traffic):
            raise ValueError(f"traffic must be 'normal' or 'empty', not {traffic!r}")
        if url_count < 1:
            raise ValueError("url_count must be at least 1")
        if row_cap_scope is not None and row_cap_scope not in get_args(RowCapScope):
            raise ValueError(f"row_cap_scope must be 'block' or 'response', not {row_cap_scope!r}")
        with self._lock:
            self._projects[project] = _Project(
                traffic=traffic,
                url_count=url_count,
                vendor_spelling=vendor_spelling,
                os_key=os_key,
                missing_fields=missing_fields,
                daily_limit=daily_limit,
                mobile_app=mobile_app,
                row_cap_scope=row_cap_scope,
            )

    def issue_token(
        self,
        project: str = "demo-project",
        *,
        expires_in: timedelta = timedelta(days=90),
        scope: str | None = EXPORT_SCOPE,
        expired: bool = False,
    ) -> str:
        """A JWT for ``project`` that this emulator (and only this one) accepts.

        Claims: ``iss="clarity"``, ``aud="clarity.data-exporter"``, ``sub=project``, ``iat``,
        ``exp`` (from the emulator's clock), ``jti`` and ``scope``. ``scope=None`` or a scope
        without ``Data.Export`` gives a token the emulator answers with 403; ``expired=True``
        gives one that expired an hour ago (401). Unknown projects are configured with
        defaults.
        """
        now = self._now()
        with self._lock:
            self._projects.setdefault(project, _Project())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": project,
            "iat": int(now.timestamp()),
            "exp": int((now - timedelta(hours=1) if expired else now + expires_in).timestamp()),
            "jti": uuid.uuid4().hex,
        }
        if scope is not None:
            claims["scope"] = scope
        return jwt.encode(claims, self._key, algorithm="HS256")

    def connection_uri(self, token: str, project_id: str | None = None, **extra: Any) -> str:
        """An Airflow connection URI for this emulator (value for ``AIRFLOW_CONN_...``).

        ``project_id`` defaults to the token's project. Prefer ``airflow_conn_json``:
        the URI form squeezes the ``http://`` base URL into Airflow's host-with-protocol
        syntax.
        """
        extras = {"project_id": project_id or self._token_project(token), **extra}
        if all(isinstance(v, str) for v in extras.values()):
            query = urlencode(extras)
        else:
            query = "__extra__=" + quote(json.dumps(extras), safe="")
        hostport = quote(f"{self.host}:{self.port}", safe="")
        return f"clarity://http://:{quote(token, safe='')}@{hostport}/?{query}"

    def airflow_conn_json(self, token: str, project_id: str | None = None, **extra: Any) -> str:
        """The JSON form of an Airflow connection to this emulator.

        ``{"conn_type": "clarity", "host": base_url, "password": token, "extra": {...}}``;
        ``project_id`` defaults to the token's project, ``extra`` adds e.g. ``daily_limit``.
        """
        extras = {"project_id": project_id or self._token_project(token), **extra}
        return json.dumps(
            {"conn_type": "clarity", "host": self.base_url, "password": token, "extra": extras}
        )

    # ----------------------------------------------------------------- faults
    def inject_fault(
        self,
        kind: FaultKind,
        count: int = 1,
        *,
        delay: float = 5.0,
        permanent: bool = False,
        location: str | None = None,
    ) -> None:
        """Make the next ``count`` calls misbehave (``count=-1`` or ``permanent``: until cleared).

        Faults apply, in the order injected, to calls that pass the token check and the
        quota check. Kinds:

        - ``server_error``: 500 with an empty body.
        - ``slow``: wait ``delay`` seconds, then answer normally (stop() cuts the wait short).
        - ``drop``: close the connection without sending anything.
        - ``truncated``: a 200 whose JSON body is cut in half (Content-Length matches the cut
          body, so the client sees bad JSON, not a broken connection).
        - ``redirect``: 302 to ``location`` (default: this endpoint itself, a redirect loop
          when permanent).
        - ``echo_gateway``: 502 from a gateway that echoes the request, headers and all
          (``Authorization`` unredacted), into its HTML error page.
        - ``html_200``: a 200 with a sign-in page, as a captive portal or proxy sends.
        - ``ignore_dimensions``: a 200 with the no-dimension snapshot, as the live API sends
          for dimension names it ignores.
        """
        if kind not in get_args(FaultKind):
            raise ValueError(f"Unknown fault kind {kind!r}; use one of {get_args(FaultKind)}")
        if count == 0 or count < -1:
            raise ValueError("count must be a positive number of calls, or -1 for permanent")
        with self._lock:
            self._faults.append(
                _Fault(kind, -1 if permanent else count, delay, location or self.endpoint_url)
            )

    def clear_faults(self) -> None:
        """Forget every pending fault, permanent ones included."""
        with self._lock:
            self._faults.clear()

    # ----------------------------------------------------------------- introspection
    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far (a copy), in the order they were answered."""
        with self._lock:
            return list(self._requests)

    @property
    def in_flight(self) -> int:
        """Requests being answered right now (a ``slow`` fault keeps one here while it waits)."""
        with self._lock:
            return self._in_flight

    def calls(self, project: str) -> int:
        """Calls charged to ``project``'s quota in the current window."""
        with self._lock:
            return self._calls_in_window(project, self._now())

    def total_requests(self, project: str | None = None) -> int:
        """Requests that reached the server (optionally only those for ``project``)."""
        with self._lock:
            if project is None:
                return len(self._requests)
            return sum(1 for r in self._requests if r.project == project)

    def remaining(self, project: str) -> int:
        """Calls ``project`` may still make in the current window."""
        with self._lock:
            return max(0, self._limit(project) - self._calls_in_window(project, self._now()))

    def consume_quota(self, project: str, calls: int | None = None) -> None:
        """Charge ``calls`` calls (default: all remaining) to ``project`` without HTTP."""
        with self._lock:
            now = self._now()
            count = self.remaining(project) if calls is None else calls
            self._ledger.setdefault(project, []).extend([now] * count)

    def reset(self) -> None:
        """Forget requests, quota counts and faults. Projects and tokens stay valid."""
        with self._lock:
            self._requests.clear()
            self._ledger.clear()
            self._faults.clear()

    # ----------------------------------------------------------------- internals
    def _now(self) -> datetime:
        return _utc(self._clock())

    def _track(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.add(conn)

    def _untrack(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)

    def _token_project(self, token: str) -> str:
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as err:
            raise ValueError("Not a JWT issued by this emulator") from err
        return str(claims.get("sub", ""))

    def _project(self, project: str) -> _Project:
        with self._lock:
            return self._projects.setdefault(project, _Project())

    def _limit(self, project: str) -> int:
        limit = self._project(project).daily_limit
        return self.daily_limit if limit is None else limit

    def _calls_in_window(self, project: str, now: datetime) -> int:
        entries = self._ledger.get(project, [])
        if self.window == "utc_day":
            return sum(1 for at in entries if at.date() == now.date())
        start = now - timedelta(seconds=self.rolling_window_seconds)
        return sum(1 for at in entries if at > start)

    def _authenticate(self, authorization: str | None) -> tuple[str | None, int | None]:
        """(project, error status): 401 without a valid unexpired token, 403 without scope."""
        if not authorization:
            return None, 401
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None, 401
        try:
            claims = jwt.decode(
                token.strip(),
                self._key,
                algorithms=["HS256"],
                audience=AUDIENCE,
                issuer=ISSUER,
                # Expiry is checked below against the emulator's (injectable) clock.
                options={"verify_exp": False, "verify_iat": False, "require": ["exp", "sub"]},
            )
        except jwt.PyJWTError:
            return None, 401
        project = str(claims["sub"])
        if float(claims["exp"]) <= self._now().timestamp():
            return project, 401
        scope = claims.get("scope", "")
        scopes = scope.split() if isinstance(scope, str) else list(scope or [])
        if EXPORT_SCOPE not in scopes:
            return project, 403
        return project, None

    def _take_fault(self) -> _Fault | None:
        if not self._faults:
            return None
        fault = self._faults[0]
        if fault.remaining > 0:
            fault.remaining -= 1
            if fault.remaining == 0:
                self._faults.pop(0)
        return fault

    def _serve(self, handler: _Handler, *, allowed: bool = True) -> None:
        with self._lock:
            self._in_flight += 1
        try:
            self._serve_one(handler, allowed=allowed)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _serve_one(self, handler: _Handler, *, allowed: bool) -> None:
        arrived = self._now()
        split = urlsplit(handler.path)
        params = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        headers = {k: _redact(k, v) for k, v in handler.headers.items()}
        project: str | None = None
        fault: _Fault | None = None
        reserved = False
        outcome = _Outcome()
        try:
            if split.path.rstrip("/") != API_PATH:
                outcome = _Outcome(404)
                return
            if not allowed:
                outcome = _Outcome(405, extra_headers={"Allow": "GET"})
                return
            project, auth_error = self._authenticate(handler.headers.get("Authorization"))
            if auth_error is not None or project is None:
                extra = {"WWW-Authenticate": "Bearer"} if auth_error == 401 else {}
                outcome = _Outcome(auth_error, extra_headers=extra)
                return
            with self._lock:
                if self._calls_in_window(project, arrived) >= self._limit(project):
                    outcome = _Outcome(429, QUOTA_MESSAGE, "text/plain; charset=utf-8")
                    return
                # Reserve the slot now so that concurrent calls cannot overshoot the limit.
                self._ledger.setdefault(project, []).append(arrived)
                reserved = True
                fault = self._take_fault()
            outcome = self._answer_call(project, params, fault, handler)
        finally:
            counted = reserved and (
                outcome.status == 200 or (self.count_failed_calls and outcome.status != 429)
            )
            if reserved and not counted:
                with self._lock:
                    entries = self._ledger.get(project or "", [])
                    if arrived in entries:
                        entries.remove(arrived)
            record = RecordedRequest(
                method=handler.command,
                path=split.path,
                params=params,
                headers=headers,
                project=project,
                status=outcome.status,
                at=arrived,
                counted=counted,
                fault=fault.kind if fault else None,
            )
            # Record before answering, so a client that got its answer sees its request.
            with self._lock:
                self._requests.append(record)
            if outcome.status is None:
                handler.drop()
            else:
                handler.reply(outcome)

    def _answer_call(
        self,
        project: str,
        params: dict[str, str],
        fault: _Fault | None,
        handler: _Handler | None = None,
    ) -> _Outcome:
        if fault is not None:
            if fault.kind == "redirect":
                return _Outcome(302, extra_headers={"Location": fault.location})
            if fault.kind == "echo_gateway" and handler is not None:
                echoed = "".join(f"{k}: {v}\n" for k, v in handler.headers.items())
                page = f"<html><body><h1>502 Bad Gateway</h1><pre>{handler.requestline}\n{echoed}"
                return _Outcome(502, f"{page}</pre></body></html>".encode(), "text/html")
            if fault.kind == "html_200":
                portal = b"<html><head><title>Sign in</title></head><body>Sign in</body></html>"
                return _Outcome(200, portal, "text/html; charset=utf-8")
            if fault.kind == "ignore_dimensions":
                params = {k: v for k, v in params.items() if not k.startswith("dimension")}
            if fault.kind == "server_error":
                return _Outcome(500)
            if fault.kind == "drop":
                return _Outcome(None)
            if fault.kind == "slow" and self._stopping.wait(fault.delay):
                return _Outcome(None)
        outcome = self._insights(project, params)
        if fault is not None and fault.kind == "truncated" and outcome.status == 200:
            outcome.body = outcome.body[: max(1, len(outcome.body) // 2)]
        return outcome

    def _insights(self, project: str, params: dict[str, str]) -> _Outcome:
        days = _parse_days(params.get("numOfDays"))
        if days is None:
            return _Outcome(400)
        payload = self.payload(project, num_of_days=days, dimensions=_wire_dimensions(params))
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return _Outcome(200, body, "application/json; charset=utf-8")

    def window_end(self, at: datetime | None = None) -> datetime:
        """Where an answer given at ``at`` (default: now, by the emulator's clock) ends.

        The call time floored to ``refresh_seconds``: the moment the emulated service last
        recomputed its aggregates.
        """
        now = self._now() if at is None else _utc(at)
        if not self.refresh_seconds:
            return now
        stamp = int(now.timestamp())
        return datetime.fromtimestamp(stamp - stamp % self.refresh_seconds, UTC)

    def sessions(
        self, project: str, *, num_of_days: int = 1, at: datetime | None = None
    ) -> Population:
        """The sessions an answer given at ``at`` for ``numOfDays=num_of_days`` aggregates.

        Sessions started in ``(end - num_of_days x 24 h, end]``, ``end`` being
        ``window_end(at)``. An ``"empty"`` project has none.
        """
        end = self.window_end(at)
        start = end - timedelta(days=num_of_days)
        profile = self._profile(project)
        config = self._project(project)
        population = window(profile, start, end)
        if config.traffic == "empty":
            return population.select(population.time < 0)
        return population

    def _profile(self, project: str) -> _data.ProjectProfile:
        config = self._project(project)
        with self._lock:
            if config.profile is None or config.profile.seed != self.seed:
                config.profile = _data.build_profile(
                    self.seed, project, config.url_count, mobile_app=config.mobile_app
                )
            return config.profile

    def payload(
        self,
        project: str,
        *,
        num_of_days: int = 1,
        dimensions: tuple[str, ...] = (),
        at: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """The JSON the emulator answers for this project and request, without HTTP or quota.

        ``dimensions`` are wire names; unknown ones (and ``Country/Region``) are ignored
        like the live service ignores them, so no valid one gives the 16-block snapshot.
        ``at`` is the call time (default: now, by the emulator's clock); every answer
        aggregates the sessions of ``sessions(project, num_of_days=..., at=at)``, so
        answers given close together agree with each other like the live service's.
        """
        config = self._project(project)
        valid = tuple(dict.fromkeys(d for d in dimensions if d in _data.VALID_DIMENSIONS))
        if config.traffic == "empty":
            return _data.empty_payload(valid)
        return answer(
            self.sessions(project, num_of_days=num_of_days, at=at), valid, self._style(project)
        )

    def _style(self, project: str) -> WireStyle:
        config = self._project(project)
        spelling = self.vendor_spelling
        if config.vendor_spelling is not None:
            spelling = config.vendor_spelling
        missing = self.missing_fields if config.missing_fields is None else config.missing_fields
        return WireStyle(
            spelling=spelling,
            os_key=config.os_key or self.os_key,
            missing_fields=missing,
            mobile_app=config.mobile_app,
            row_cap_scope=config.row_cap_scope or self.row_cap_scope,
            salt=f"{self.seed}\x1f{project}",
        )

    def __repr__(self) -> str:
        where = self.base_url if self.running else "stopped"
        return f"<ClarityEmulator {where} seed={self.seed}>"


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _redact(name: str, value: str) -> str:
    if name.lower() != "authorization":
        return value
    scheme = value.partition(" ")[0] if " " in value else "Bearer"
    return f"{scheme} <redacted>"


def _parse_days(raw: str | None) -> int | None:
    if raw is None or not (raw.strip().isascii() and raw.strip().isdigit()):
        return None
    days = int(raw)
    return days if 1 <= days <= 3 else None


def _wire_dimensions(params: dict[str, str]) -> tuple[str, ...]:
    return tuple(params[k] for k in ("dimension1", "dimension2", "dimension3") if params.get(k))
