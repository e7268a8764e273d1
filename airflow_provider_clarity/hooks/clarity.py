"""ClarityHook: an Airflow connection in, the parsed Clarity Data Export JSON out.

The hook owns everything about talking to Clarity: validating the request before any
traffic, the bearer token, timeouts, bounded retries, and turning every failure into one of
the exceptions in :mod:`airflow_provider_clarity.exceptions`. Clarity allows 10 calls per
project per day, so nothing here spends a call that could have been refused locally, and
``test_connection`` spends none at all.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

import requests
from airflow.providers.http.hooks.http import HttpHook
from requests.structures import CaseInsensitiveDict
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from airflow_provider_clarity import __version__
from airflow_provider_clarity._api import API_ENDPOINT, DEFAULT_HOST, VALID_DIMENSIONS
from airflow_provider_clarity._values import utc_text
from airflow_provider_clarity.exceptions import (
    ClarityAuthError,
    ClarityDimensionFallbackError,
    ClarityError,
    ClarityPermissionError,
    ClarityQuotaExceededError,
    ClarityRequestError,
    ClarityResponseError,
    ClarityServerError,
)
from airflow_provider_clarity.hooks._transport import (
    AttemptFailed,
    BearerAuth,
    base_url_from,
    excerpt,
    is_loopback,
    is_retryable,
    status_of,
)
from airflow_provider_clarity.normalize import payload_problem
from airflow_provider_clarity.quota.context import missing_pool_note
from airflow_provider_clarity.request import ClarityRequest, valid_names
from airflow_provider_clarity.settings import QuotaSettings, Window, connection_extra
from airflow_provider_clarity.token import GET_A_NEW_ONE, inspect_token

if TYPE_CHECKING:
    from airflow.sdk import Connection
    from requests import PreparedRequest, Response, Session

__all__ = [
    "API_ENDPOINT",
    "DEFAULT_HOST",
    "VALID_DIMENSIONS",
    "CallObserver",
    "ClarityHook",
    "ClarityRequest",
]

log = logging.getLogger(__name__)

_MAX_BACKOFF_SECONDS = 60.0
_CONNECT_TIMEOUT_SECONDS = 10.0
_EXCERPT_CHARS = 200


@runtime_checkable
class CallObserver(Protocol):
    """Something that wants to know about every HTTP attempt, such as the quota ledger."""

    def before_call(self, request: ClarityRequest) -> None:
        """Run right before every attempt, retries included.

        Raise ClarityQuotaExceededError to stop the attempt before anything is sent.
        """

    def after_call(self, request: ClarityRequest, outcome: str) -> None:
        """Run after every attempt.

        ``outcome`` is the HTTP status as a string, or ``timeout`` / ``connection_error``.
        """


class ClarityHook(HttpHook):
    """Call the Microsoft Clarity Data Export API through an Airflow connection.

    The connection's password is the API token (a JWT). Its host defaults to
    ``https://www.clarity.ms``. Extras configure the quota ledger (``project_id``,
    ``daily_limit``, ``reserve``, ``quota_window``, ``rolling_window_seconds``) and, unlike
    ``HttpHook``, are never sent as HTTP headers.

    :param clarity_conn_id: the Airflow connection of type ``clarity``.
    :param timeout: seconds to wait for Clarity's answer; connecting waits at most 10 s.
    :param max_retries: how many times a 5xx, timeout or dropped connection is retried. Each
        retry may cost one of the project's daily calls.
    :param retry_backoff: the first wait between attempts in seconds; it doubles each time.
    """

    conn_name_attr = "clarity_conn_id"
    default_conn_name = "clarity_default"
    conn_type = "clarity"
    hook_name = "Microsoft Clarity"
    default_host = DEFAULT_HOST
    default_headers: dict[str, str] = {
        "Accept": "application/json",
        "User-Agent": f"airflow-provider-clarity/{__version__}",
    }

    def __init__(
        self,
        clarity_conn_id: str = default_conn_name,
        *,
        timeout: float = 60.0,
        max_retries: int = 2,
        retry_backoff: float = 2.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(method="GET", http_conn_id=clarity_conn_id, **kwargs)
        if not timeout > 0:
            raise ValueError(f"timeout must be positive; got {timeout!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an int >= 0; got {max_retries!r}")
        if not retry_backoff >= 0:
            raise ValueError(f"retry_backoff must be >= 0; got {retry_backoff!r}")
        self.clarity_conn_id = clarity_conn_id
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.retry_backoff = float(retry_backoff)

    # ----------------------------------------------------------------- connection settings

    @cached_property
    def connection(self) -> Connection:
        """The Airflow connection, fetched once per hook."""
        return self.get_connection(self.clarity_conn_id)

    @cached_property
    def quota_settings(self) -> QuotaSettings:
        """The connection's quota settings (``project_id``, ``daily_limit``, ``reserve``,
        ``quota_window``, ``rolling_window_seconds`` extras), read once per hook.

        :raises ClarityRequestError: an extra that does not parse, naming how to fix it.
        """
        return QuotaSettings.from_extras(
            self.connection.extra_dejson, conn_id=self.clarity_conn_id, conn_type=self.conn_type
        )

    @property
    def project_id(self) -> str:
        """The Clarity project for the quota ledger: extra ``project_id``, else the conn id."""
        return self.quota_settings.project_id

    @property
    def daily_limit(self) -> int:
        """Calls Clarity allows the project per window (extra ``daily_limit``, default 10)."""
        return self.quota_settings.daily_limit

    @property
    def reserve(self) -> int:
        """Calls per window left for people and tools outside Airflow (extra ``reserve``)."""
        return self.quota_settings.reserve

    @property
    def quota_window(self) -> Window:
        """``utc_day`` (resets at 00:00 UTC, the default) or ``rolling``."""
        return self.quota_settings.window

    @property
    def rolling_window_seconds(self) -> int:
        """Length of a rolling quota window in seconds (default one day)."""
        return self.quota_settings.rolling_window_seconds

    @property
    def base_url(self) -> str:
        """The Clarity base URL, e.g. ``https://www.clarity.ms``, resolved from the connection."""
        if not getattr(self, "_base_url_initialized", False):
            self._set_base_url(self.connection)
        return self._clarity_base_url

    @base_url.setter
    def base_url(self, value: str) -> None:
        # HttpHook assigns base_url in __init__ and _set_base_url; keep that working.
        self._clarity_base_url = value

    def _extra(self, name: str) -> Any:
        return connection_extra(self.connection.extra_dejson, name, conn_type=self.conn_type)

    # ------------------------------------------------------------ HttpHook customisation

    def _set_base_url(self, connection: Any) -> None:
        # Unlike HttpHook: default to Clarity, a bare host means https, and no SRV lookup.
        self.base_url = base_url_from(connection.host, connection.port)
        self._srv_lookup_enabled = False
        self._base_url_initialized = True

    def _configure_session_from_auth(self, session: Session, connection: Any) -> Session:
        session.auth = BearerAuth(self._token_from(connection))
        return session

    def _configure_session_from_extra(
        self, session: Session, connection: Any, extra_options: dict[str, Any]
    ) -> Session:
        # HttpHook turns every non-reserved extra into a header, which would send project_id,
        # daily_limit... to Clarity. Keep its transport settings (verify, proxies, cert,
        # trust_env), then put the headers back as they were.
        headers_before = CaseInsensitiveDict(session.headers)
        session = super()._configure_session_from_extra(session, connection, extra_options)
        session.headers = headers_before
        return session

    def _token_from(self, connection: Any) -> str:
        token = (connection.password or "").strip()
        if not token:
            raise ClarityAuthError(
                f"Connection '{self.clarity_conn_id}' has no API token. Generate one in Clarity > "
                f"Settings > Data Export and paste it in the connection's API token field."
            )
        return token

    def _token_field(self) -> str:
        """Where the user fixes this connection's token, for error messages."""
        variable = f"AIRFLOW_CONN_{self.clarity_conn_id.upper()}"
        if variable in os.environ:
            return (
                f"the password of the environment variable {variable}, which defines connection "
                f"'{self.clarity_conn_id}'"
            )
        return (
            f"the API token field of connection '{self.clarity_conn_id}' (Admin > Connections in "
            f"the Airflow UI, or your secrets backend)"
        )

    def _require_safe_transport(self) -> None:
        """Refuse to send the token in clear text anywhere but a local emulator."""
        parts = urlsplit(self.base_url)
        if parts.scheme == "https" and parts.hostname:
            return
        if parts.scheme == "http" and parts.hostname and is_loopback(parts.hostname):
            return
        raise ClarityRequestError(
            f"Connection '{self.clarity_conn_id}' host {self.base_url!r} is not an https URL. "
            f"Use https://www.clarity.ms (or leave the host empty); plain http is only allowed "
            f"for a local emulator on 127.0.0.1, ::1 or localhost."
        )

    def _refuse_expired_token(self) -> None:
        """Fail before sending when the token's own ``exp`` says Clarity would answer 401."""
        check = inspect_token(self._token_from(self.connection))
        if check.expired:
            raise ClarityAuthError(
                f"{check.problem} {GET_A_NEW_ONE} {self._token_field()}. No Clarity call was made."
            )

    # ---------------------------------------------------------------------- the API call

    def get_live_insights(
        self,
        num_of_days: int | str = 1,
        dimensions: Iterable[str] | str | None = (),
        *,
        request: ClarityRequest | None = None,
        observer: CallObserver | None = None,
    ) -> list[dict[str, Any]]:
        """Fetch the live-insights snapshot: a list of ``{"metricName", "information"}`` blocks.

        The request is validated before anything is sent. ``request``, when given, is used
        instead of ``num_of_days`` and ``dimensions``. ``observer`` is told about every HTTP
        attempt, retries included.

        :raises ClarityRequestError: invalid request or connection (nothing sent), or a 400.
        :raises ClarityAuthError: 401, or no token in the connection (nothing sent).
        :raises ClarityPermissionError: 403.
        :raises ClarityQuotaExceededError: 429 (never retried), or raised by ``observer``.
        :raises ClarityServerError: 5xx or no connection, after ``max_retries`` retries.
        :raises ClarityResponseError: a 200 whose body is not the expected JSON.
        :raises ClarityDimensionFallbackError: Clarity ignored the requested dimensions.
        """
        request = request or ClarityRequest.build(num_of_days, dimensions)
        session = self.get_conn()
        self._require_safe_transport()
        self._refuse_expired_token()
        prepared = session.prepare_request(
            requests.Request("GET", self.url_from_endpoint(API_ENDPOINT), params=request.params())
        )
        response = self._send_with_retries(session, prepared, request, observer)
        self._raise_forstatus_of(response, request)
        return self._parse(response, request)

    def _send_with_retries(
        self,
        session: Session,
        prepared: PreparedRequest,
        request: ClarityRequest,
        observer: CallObserver | None,
    ) -> Response:
        attempts = self.max_retries + 1
        retrying = Retrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=self.retry_backoff, max=_MAX_BACKOFF_SECONDS),
            retry=retry_if_exception(is_retryable),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._send_once(
                        session,
                        prepared,
                        request,
                        observer,
                        attempt=attempt.retry_state.attempt_number,
                        attempts=attempts,
                    )
            raise AssertionError("tenacity stopped without an outcome")  # pragma: no cover
        except AttemptFailed as exc:
            failure = exc
        # Raised outside the except block so no requests exception (which holds the prepared
        # request, Authorization header included) is chained to what the user sees.
        raise self._error_for_failure(failure, request)

    def _send_once(
        self,
        session: Session,
        prepared: PreparedRequest,
        request: ClarityRequest,
        observer: CallObserver | None,
        *,
        attempt: int,
        attempts: int,
    ) -> Response:
        if observer is not None:
            observer.before_call(request)
        settings = session.merge_environment_settings(
            prepared.url,
            proxies=session.proxies,
            stream=session.stream,
            verify=session.verify,
            cert=session.cert,
        )
        response: Response | None = None
        failure: AttemptFailed | None = None
        try:
            response = session.send(
                prepared,
                timeout=(min(_CONNECT_TIMEOUT_SECONDS, self.timeout), self.timeout),
                allow_redirects=True,
                **settings,
            )
        except requests.Timeout as exc:
            failure = AttemptFailed(
                "timeout",
                f"no answer within {self.timeout:g} s ({type(exc).__name__})",
                attempt=attempt,
                retryable=True,
            )
        except requests.ConnectionError as exc:
            failure = AttemptFailed(
                "connection_error",
                f"the connection failed or was dropped before an answer ({type(exc).__name__})",
                attempt=attempt,
                retryable=True,
            )
        except requests.RequestException as exc:
            # The answer started (so the call most likely counted) but its body broke off.
            failure = AttemptFailed(
                "connection_error",
                f"the answer broke off while its body was being read ({type(exc).__name__})",
                attempt=attempt,
                retryable=False,
            )
        if response is not None and response.status_code >= 500:
            failure = AttemptFailed(
                str(response.status_code),
                f"HTTP {response.status_code}",
                attempt=attempt,
                retryable=True,
                body=response.content,
            )
        # Not `if response`: a Response is falsy for any 4xx/5xx status.
        outcome = failure.outcome if failure is not None else str(status_of(response))
        level = logging.INFO if outcome.startswith("2") else logging.WARNING
        self.log.log(
            level,
            "Clarity call %s for project '%s' -> %s (attempt %d/%d)",
            request.describe(),
            self.project_id,
            outcome,
            attempt,
            attempts,
        )
        if observer is not None:
            observer.after_call(request, outcome)
        if failure is not None:
            raise failure
        assert response is not None
        return response

    def _error_for_failure(self, failure: AttemptFailed, request: ClarityRequest) -> ClarityError:
        spent = (
            f"{failure.attempt} attempt{'s' if failure.attempt != 1 else ''} "
            f"(each may have cost one of the project's daily calls)"
        )
        if not failure.retryable and failure.outcome == "connection_error":
            return ClarityResponseError(
                f"Clarity's answer to {request.describe()} on connection "
                f"'{self.clarity_conn_id}' broke off: {failure.detail}. The call most likely "
                f"counted against today's quota. Not retried; try again later."
            )
        if failure.outcome.isdigit():
            return ClarityServerError(
                f"Clarity answered HTTP {failure.outcome} to {request.describe()} after {spent}; "
                f"body: {excerpt(failure.body)}. This is a problem on Clarity's side and has "
                f"lasted for days in the past: try again later, and check the Clarity status "
                f"and forums if it persists."
            )
        return ClarityServerError(
            f"Could not get an answer from Clarity at {self.base_url} for {request.describe()} "
            f"after {spent}: {failure.detail}. Check network access to the host, proxies and "
            f"the connection's host; if they are fine, Clarity may be down: try again later."
        )

    def _raise_forstatus_of(self, response: Response, request: ClarityRequest) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        conn = self.clarity_conn_id
        if status == 401:
            token_check = inspect_token(self._token_from(self.connection))
            why = token_check.problem or (
                f"The API token looks like an unexpired Clarity Data Export token (project "
                f"{token_check.subject or '(unknown)'}), but Clarity rejected it: it may have been "
                f"revoked in Clarity, or only part of it was pasted."
            )
            raise ClarityAuthError(
                f"Clarity answered 401 (unauthorised) for connection '{conn}'. {why} "
                f"{GET_A_NEW_ONE} {self._token_field()}."
            )
        if status == 403:
            subject = inspect_token(self._token_from(self.connection)).subject
            named = self._extra("project_id") not in (None, "")
            mismatch = (
                f" (the token names project '{subject}', the connection's project_id is "
                f"'{self.project_id}')"
                if named and subject and subject != self.project_id
                else ""
            )
            raise ClarityPermissionError(
                f"Clarity answered 403 (forbidden) for connection '{conn}': its API token may not "
                f"export project '{self.project_id}'. The token belongs to another project"
                f"{mismatch} or lacks the Data.Export scope. In the Clarity project you want to "
                f"export, generate a token in Settings > Data Export and paste it into "
                f"{self._token_field()}."
            )
        if status == 429:
            reset_at = self.quota_settings.reset_after_429(datetime.now(UTC), margin=False)
            if self.quota_window is Window.ROLLING:
                when = (
                    f"With the connection's rolling window, a call is expected to be free again "
                    f"by {utc_text(reset_at)}."
                )
            else:
                when = (
                    f"Clarity does not say when; the daily window is assumed to restart at "
                    f"00:00 UTC ({utc_text(reset_at)})."
                )
            raise ClarityQuotaExceededError(
                f"Clarity answered 429: project '{self.project_id}' has spent its daily limit of "
                f"{self.daily_limit} calls (calls from outside Airflow count too). {when} Not "
                f"retried, since every retry would be refused too. See who spent today's calls "
                f"with `python -m airflow_provider_clarity.quota usage {conn}`; to leave calls "
                f"for people and scripts outside Airflow, set the connection's 'reserve' extra.",
                reset_at=reset_at,
                source="api",
            )
        if status == 400:
            raise ClarityRequestError(
                f"Clarity answered 400 (bad request) to {request.params()} on connection "
                f"'{conn}'; body: {excerpt(response.content)}. Check num_of_days (1-3) and the "
                f"dimension names ({valid_names()})."
            )
        raise ClarityRequestError(
            f"Clarity answered HTTP {status} to {request.describe()} at "
            f"{self.url_from_endpoint(API_ENDPOINT)}; body: {excerpt(response.content)}. "
            f"Check the connection's host: it should be {DEFAULT_HOST} (or empty)."
        )

    def _parse(self, response: Response, request: ClarityRequest) -> list[dict[str, Any]]:
        body = response.content
        problem: str | None = None
        payload: Any = None
        try:
            payload = json.loads(body)
        except ValueError:
            problem = "is not valid JSON (it may have been cut off)"
        if problem is None:
            problem = payload_problem(payload)
        if problem is not None:
            raise ClarityResponseError(
                f"Clarity answered {response.status_code} to {request.describe()} but the body "
                f"{problem}: {len(body)} bytes, starting {excerpt(body)}. The call counted "
                f"against today's quota; it was not retried. Try again later; if it persists, "
                f"Clarity's format may have changed."
            )
        if request.dimensions and _ignored_dimensions(payload, request.dimensions):
            raise ClarityDimensionFallbackError(
                f"Clarity ignored the requested dimensions ({', '.join(request.dimensions)}) and "
                f"sent the no-dimension snapshot ({len(payload)} blocks, no row carries them). The "
                f"call counted against today's quota; the raw answer is kept on the exception's "
                f"'payload'. Check the dimension names against {valid_names()}.",
                payload=payload,
                dimensions=request.dimensions,
            )
        return payload

    # ----------------------------------------------------------------- test_connection

    def test_connection(self) -> tuple[bool, str]:
        """Check the connection without calling Clarity (each call is one of ten a day).

        Checks the token is present, is a JWT for ``clarity.data-exporter`` and has not
        expired, that the host is https (plain http only on loopback), and that the extras
        parse. A successful result also says when the ``clarity_api`` pool is missing, since
        Clarity export tasks would then never be scheduled.
        """
        try:
            token = self._token_from(self.connection)
            self._require_safe_transport()
            self.quota_settings  # noqa: B018  (reading the extras is the check)
        except ClarityError as exc:
            return False, str(exc)
        except Exception as exc:
            return False, f"Could not read connection '{self.clarity_conn_id}': {exc}"

        token_check = inspect_token(token)
        if token_check.problem is not None:
            fix = f"{GET_A_NEW_ONE} the connection's API token field."
            return False, f"{token_check.problem} {fix}"
        if token_check.expires is None:
            expiry_text = "has no expiry date"
        else:
            expiry_text = f"expires on {utc_text(token_check.expires, minutes=True)}"
        message = (
            f"Token for project {token_check.subject or '(unknown)'} is valid; {expiry_text}. "
            f"No API call was made (Clarity allows 10 a day)."
        )
        note = missing_pool_note()
        return True, message if note is None else f"{message} {note}"


def _ignored_dimensions(payload: list[dict[str, Any]], dimensions: tuple[str, ...]) -> bool:
    """True when the payload has rows but none carries a requested dimension key."""
    wanted = {name.lower() for name in dimensions}
    has_rows = False
    for block in payload:
        for row in block["information"]:
            has_rows = True
            if any(str(key).lower() in wanted for key in row):
                return False
    return has_rows
