"""ClarityHook: an Airflow connection in, the parsed Clarity Data Export JSON out.

The hook owns everything about talking to Clarity: validating the request before any
traffic, the bearer token, timeouts, bounded retries, and turning every failure into one of
the exceptions in :mod:`airflow_provider_clarity.exceptions`. Clarity allows 10 calls per
project per day, so nothing here spends a call that could have been refused locally, and
``test_connection`` spends none at all.
"""

from __future__ import annotations

import ast
import base64
import binascii
import difflib
import ipaddress
import json
import logging
import numbers
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

import requests
from airflow.providers.http.hooks.http import HttpHook
from requests.auth import AuthBase
from requests.structures import CaseInsensitiveDict
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from airflow_provider_clarity import __version__
from airflow_provider_clarity._api import (
    API_ENDPOINT,
    CLARITY_AUDIENCE,
    DEFAULT_HOST,
    DIMENSION_ALIASES,
    DIMENSION_HINTS,
    MAX_DIMENSIONS,
    VALID_DIMENSIONS,
)
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

_CANONICAL = {name.lower(): name for name in VALID_DIMENSIONS}
_ALIASES = DIMENSION_ALIASES
_HINTS = DIMENSION_HINTS
_MAX_BACKOFF_SECONDS = 60.0
_CONNECT_TIMEOUT_SECONDS = 10.0
_EXCERPT_CHARS = 200


def _valid_names() -> str:
    return ", ".join(VALID_DIMENSIONS)


def _suggest(name: str) -> str | None:
    """Return the valid dimension a user most likely meant by ``name``, if any is close."""
    key = name.strip().lower()
    compact = key.replace(" ", "").replace("-", "").replace("_", "")
    for candidate in (key, compact):
        if candidate in _HINTS:
            return _HINTS[candidate]
    close = difflib.get_close_matches(key, list(_CANONICAL), n=1, cutoff=0.6)
    if close:
        return _CANONICAL[close[0]]
    for lowered, canonical in _CANONICAL.items():
        if len(lowered) > 2 and lowered in key:
            return canonical
    return None


def _parse_num_of_days(value: object) -> int:
    days: int | None = None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        days = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        days = int(value.strip())
    if days not in (1, 2, 3):
        raise ClarityRequestError(
            f"num_of_days must be 1, 2 or 3; got {value!r}. Clarity returns only the last 24, 48 "
            f"or 72 hours and keeps no history. For a longer period, run the task daily with "
            f"num_of_days=1 and keep each day's output, e.g. "
            f"destination='file:///data/clarity/{{{{ ds }}}}/os.parquet'."
        )
    return days


def _names_from_string(text: str) -> list[str]:
    """Read "OS", "OS,Device", or a list a template rendered to a string ("['OS', 'Device']")."""
    text = text.strip()
    bracketed = text[:1] + text[-1:] in ("[]", "()")
    if not bracketed:
        if text[:1] in ("[", "(") or text[-1:] in ("]", ")"):
            raise ClarityRequestError(
                f"dimensions {text!r} looks like a list but its brackets do not match. Pass a "
                f"list such as ['OS', 'Device'] or a string such as 'OS,Device'. "
                f"Valid: {_valid_names()}."
            )
        return [part.strip() for part in text.split(",") if part.strip()]
    try:
        parsed = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        # "[OS, Device]": rendered without quotes, still unambiguous.
        return [part.strip().strip("'\"").strip() for part in text[1:-1].split(",") if part.strip()]
    if isinstance(parsed, str):
        parsed = [parsed]
    if not isinstance(parsed, list | tuple) or not all(isinstance(p, str) for p in parsed):
        raise ClarityRequestError(
            f"dimensions {text!r} is not a list of names. Pass a list such as ['OS', 'Device'] "
            f"or a string such as 'OS,Device'. Valid: {_valid_names()}."
        )
    return [name.strip() for name in parsed]


def _split_dimensions(value: Iterable[str] | str | None) -> list[str]:
    """Turn every accepted spelling of a dimension list into a list of raw names."""
    if value is None:
        return []
    if isinstance(value, str):
        return _names_from_string(value)
    if isinstance(value, dict) or not isinstance(value, Iterable):
        raise ClarityRequestError(
            f"dimensions must be a list of names or a comma-separated string; got "
            f"{type(value).__name__}. Valid: {_valid_names()}."
        )
    names: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise ClarityRequestError(
                f"dimension names must be strings; got {item!r}. Valid: {_valid_names()}."
            )
        names.append(item.strip())
    return names


def _check_dimensions(value: Iterable[str] | str | None) -> None:
    """Validate dimension names like ``ClarityRequest.build``, without logging anything.

    For checks at DAG parse time, which run every few seconds on the DAG processor.

    :raises ClarityRequestError: as ``ClarityRequest.build`` does.
    """
    _canonical_dimensions(_split_dimensions(value), announce=False)


def _canonical_dimensions(raw_names: list[str], *, announce: bool = True) -> tuple[str, ...]:
    canonical: list[str] = []
    problems: list[str] = []
    for name in raw_names:
        key = name.lower()
        if key in _CANONICAL:
            resolved = _CANONICAL[key]
        elif key in _ALIASES:
            resolved = _ALIASES[key]
            if announce:
                log.info(
                    "Sending dimension %r as %r: the live Clarity API ignores %r and answers with "
                    "the no-dimension snapshot, while %r breaks down by geography.",
                    name,
                    resolved,
                    name,
                    resolved,
                )
        else:
            if not name:
                problems.append("A dimension name is empty")
                continue
            suggestion = _suggest(name)
            hint = f"; did you mean {suggestion!r}?" if suggestion else ""
            problems.append(f"Clarity has no dimension {name!r}{hint}")
            continue
        if resolved not in canonical:
            canonical.append(resolved)
    if problems:
        text = "; ".join(problems)
        raise ClarityRequestError(
            f"{text}{'' if text.endswith('?') else '.'} Valid: {_valid_names()}."
        )
    if len(canonical) > MAX_DIMENSIONS:
        raise ClarityRequestError(
            f"Clarity accepts at most {MAX_DIMENSIONS} dimensions per call; got {len(canonical)} "
            f"({', '.join(canonical)}). Split them over several calls, keeping in mind each "
            f"call is one of the project's 10 a day."
        )
    return tuple(canonical)


@dataclass(frozen=True)
class ClarityRequest:
    """One validated call to Clarity's live-insights endpoint.

    Build it with ``build``, which accepts the loose forms templates produce. Creating it
    directly requires the canonical form and validates it too, so an instance is always a
    request Clarity will honour.

    :raises ClarityRequestError: when the request is invalid; nothing has been sent.
    """

    num_of_days: int
    dimensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if _parse_num_of_days(self.num_of_days) != self.num_of_days or not isinstance(
            self.num_of_days, int
        ):
            raise ClarityRequestError(
                f"num_of_days must be the int 1, 2 or 3; got {self.num_of_days!r}. "
                f"ClarityRequest.build() accepts numeric strings."
            )
        if not isinstance(self.dimensions, tuple) or (
            _canonical_dimensions(list(self.dimensions)) != self.dimensions
        ):
            raise ClarityRequestError(
                f"dimensions must be a tuple of distinct names spelled as Clarity expects "
                f"({_valid_names()}); got {self.dimensions!r}. ClarityRequest.build() "
                f"normalises case, aliases and duplicates."
            )

    @classmethod
    def build(
        cls, num_of_days: int | str = 1, dimensions: Iterable[str] | str | None = ()
    ) -> ClarityRequest:
        """Validate and normalise loose input into a request.

        ``dimensions`` may be a list or tuple, a string ``"OS"`` or ``"OS,Device"``, or a
        Python list rendered to a string by a template (``"['OS', 'Device']"``). Names are
        matched case-insensitively, ``Country/Region`` becomes ``Country`` and duplicates
        are dropped, keeping the first occurrence's position.

        :raises ClarityRequestError: with the valid names and, when one is close, a suggestion.
        """
        days = _parse_num_of_days(num_of_days)
        return cls(
            num_of_days=days, dimensions=_canonical_dimensions(_split_dimensions(dimensions))
        )

    def params(self) -> dict[str, str]:
        """Return the query string as a dict: ``{"numOfDays": "1", "dimension1": "OS"}``."""
        query = {"numOfDays": str(self.num_of_days)}
        for position, name in enumerate(self.dimensions, start=1):
            query[f"dimension{position}"] = name
        return query

    def describe(self) -> str:
        """Return a short description for logs, e.g. ``numOfDays=1 dimensions=OS,Device``."""
        return f"numOfDays={self.num_of_days} dimensions={','.join(self.dimensions) or 'none'}"


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


class _BearerAuth(AuthBase):
    """Send the Clarity API token as ``Authorization: Bearer``."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "_BearerAuth(token=***)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _BearerAuth) and other._token == self._token

    def __hash__(self) -> int:
        return hash(self._token)


class _AttemptFailed(Exception):
    """One HTTP attempt that did not produce a usable response; internal to the retry loop."""

    def __init__(
        self, outcome: str, detail: str, *, attempt: int, retryable: bool, body: bytes = b""
    ) -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.detail = detail
        self.attempt = attempt
        self.retryable = retryable
        self.body = body


def _is_retryable(exc: BaseException) -> bool:
    """Retry predicate: 5xx, timeouts and dropped connections, never 4xx or a spent 200."""
    return isinstance(exc, _AttemptFailed) and exc.retryable


def _is_loopback(hostname: str) -> bool:
    if hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def _base_url_from(host: str | None, port: int | None) -> str:
    """Build the base URL from a connection host given with or without a scheme."""
    text = (host or "").strip().rstrip("/") or DEFAULT_HOST
    if "://" not in text:
        text = f"https://{text}"
    if port and urlsplit(text).port is None:
        text = f"{text}:{port}"
    return text


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
    def project_id(self) -> str:
        """The Clarity project for the quota ledger: extra ``project_id``, else the conn id."""
        value = self._extra("project_id")
        text = str(value).strip() if value is not None else ""
        return text or self.clarity_conn_id

    @cached_property
    def daily_limit(self) -> int:
        """Calls Clarity allows the project per window (extra ``daily_limit``, default 10)."""
        return self._int_extra("daily_limit", default=10, minimum=1)

    @cached_property
    def reserve(self) -> int:
        """Calls per window left for people and tools outside Airflow (extra ``reserve``)."""
        return self._int_extra("reserve", default=0, minimum=0)

    @cached_property
    def quota_window(self) -> str:
        """``utc_day`` (resets at 00:00 UTC, the default) or ``rolling``."""
        value = self._extra("quota_window")
        text = str(value).strip().lower() if value is not None else ""
        if not text:
            return "utc_day"
        if text not in ("utc_day", "rolling"):
            raise ClarityRequestError(
                f"Connection '{self.clarity_conn_id}': extra 'quota_window' must be 'utc_day' or "
                f"'rolling'; got {value!r}. Fix it in the connection's extras."
            )
        return text

    @cached_property
    def rolling_window_seconds(self) -> int:
        """Length of a rolling quota window in seconds (default one day)."""
        return self._int_extra("rolling_window_seconds", default=86400, minimum=1)

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
        """One connection extra; forms of older Airflow versions stored it prefixed."""
        extras = self.connection.extra_dejson
        if not isinstance(extras, dict):
            return None
        value = extras.get(name)
        return extras.get(f"extra__{self.conn_type}__{name}") if value is None else value

    def _int_extra(self, name: str, *, default: int, minimum: int) -> int:
        value = self._extra(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            return default
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        elif isinstance(value, str) and value.strip().isdigit():
            number = int(value.strip())
        if number is None or number < minimum:
            raise ClarityRequestError(
                f"Connection '{self.clarity_conn_id}': extra {name!r} must be a whole number "
                f">= {minimum}; got {value!r}. Fix it in the connection's extras, or remove it "
                f"to use the default ({default})."
            )
        return number

    # ------------------------------------------------------------ HttpHook customisation

    def _set_base_url(self, connection: Any) -> None:
        # Unlike HttpHook: default to Clarity, a bare host means https, and no SRV lookup.
        self.base_url = _base_url_from(connection.host, connection.port)
        self._srv_lookup_enabled = False
        self._base_url_initialized = True

    def _configure_session_from_auth(self, session: Session, connection: Any) -> Session:
        session.auth = _BearerAuth(self._token_from(connection))
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
        if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
            return
        raise ClarityRequestError(
            f"Connection '{self.clarity_conn_id}' host {self.base_url!r} is not an https URL. "
            f"Use https://www.clarity.ms (or leave the host empty); plain http is only allowed "
            f"for a local emulator on 127.0.0.1, ::1 or localhost."
        )

    def _refuse_expired_token(self) -> None:
        """Fail before sending when the token's own ``exp`` says Clarity would answer 401."""
        check = _inspect_token(self._token_from(self.connection))
        if check.expires is not None and check.problem is not None:
            raise ClarityAuthError(
                f"{check.problem} {_GET_A_NEW_ONE} {self._token_field()}. No Clarity call was made."
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
        self._raise_for_status(response, request)
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
            retry=retry_if_exception(_is_retryable),
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
        except _AttemptFailed as exc:
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
        failure: _AttemptFailed | None = None
        try:
            response = session.send(
                prepared,
                timeout=(min(_CONNECT_TIMEOUT_SECONDS, self.timeout), self.timeout),
                allow_redirects=True,
                **settings,
            )
        except requests.Timeout as exc:
            failure = _AttemptFailed(
                "timeout",
                f"no answer within {self.timeout:g} s ({type(exc).__name__})",
                attempt=attempt,
                retryable=True,
            )
        except requests.ConnectionError as exc:
            failure = _AttemptFailed(
                "connection_error",
                f"the connection failed or was dropped before an answer ({type(exc).__name__})",
                attempt=attempt,
                retryable=True,
            )
        except requests.RequestException as exc:
            # The answer started (so the call most likely counted) but its body broke off.
            failure = _AttemptFailed(
                "connection_error",
                f"the answer broke off while its body was being read ({type(exc).__name__})",
                attempt=attempt,
                retryable=False,
            )
        if response is not None and response.status_code >= 500:
            failure = _AttemptFailed(
                str(response.status_code),
                f"HTTP {response.status_code}",
                attempt=attempt,
                retryable=True,
                body=response.content,
            )
        # Not `if response`: a Response is falsy for any 4xx/5xx status.
        outcome = failure.outcome if failure is not None else str(_status(response))
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

    def _error_for_failure(self, failure: _AttemptFailed, request: ClarityRequest) -> ClarityError:
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
                f"body: {_excerpt(failure.body)}. This is a problem on Clarity's side and has "
                f"lasted for days in the past: try again later, and check the Clarity status "
                f"and forums if it persists."
            )
        return ClarityServerError(
            f"Could not get an answer from Clarity at {self.base_url} for {request.describe()} "
            f"after {spent}: {failure.detail}. Check network access to the host, proxies and "
            f"the connection's host; if they are fine, Clarity may be down: try again later."
        )

    def _raise_for_status(self, response: Response, request: ClarityRequest) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        conn = self.clarity_conn_id
        if status == 401:
            token_check = _inspect_token(self._token_from(self.connection))
            why = token_check.problem or (
                f"The API token looks like an unexpired Clarity Data Export token (project "
                f"{token_check.subject or '(unknown)'}), but Clarity rejected it: it may have been "
                f"revoked in Clarity, or only part of it was pasted."
            )
            raise ClarityAuthError(
                f"Clarity answered 401 (unauthorised) for connection '{conn}'. {why} "
                f"{_GET_A_NEW_ONE} {self._token_field()}."
            )
        if status == 403:
            subject = _inspect_token(self._token_from(self.connection)).subject
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
            reset_at = self._next_reset()
            if self.quota_window == "rolling":
                when = (
                    f"With the connection's rolling window, a call is expected to be free again "
                    f"by {_utc_text(reset_at)}."
                )
            else:
                when = (
                    f"Clarity does not say when; the daily window is assumed to restart at "
                    f"00:00 UTC ({_utc_text(reset_at)})."
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
                f"'{conn}'; body: {_excerpt(response.content)}. Check num_of_days (1-3) and the "
                f"dimension names ({_valid_names()})."
            )
        raise ClarityRequestError(
            f"Clarity answered HTTP {status} to {request.describe()} at "
            f"{self.url_from_endpoint(API_ENDPOINT)}; body: {_excerpt(response.content)}. "
            f"Check the connection's host: it should be {DEFAULT_HOST} (or empty)."
        )

    def _next_reset(self) -> datetime:
        now = datetime.now(UTC)
        if self.quota_window == "rolling":
            return now + timedelta(seconds=self.rolling_window_seconds)
        return datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)

    def _parse(self, response: Response, request: ClarityRequest) -> list[dict[str, Any]]:
        body = response.content
        problem: str | None = None
        payload: Any = None
        try:
            payload = json.loads(body)
        except ValueError:
            problem = "is not valid JSON (it may have been cut off)"
        if problem is None:
            problem = _shape_problem(payload)
        if problem is not None:
            raise ClarityResponseError(
                f"Clarity answered {response.status_code} to {request.describe()} but the body "
                f"{problem}: {len(body)} bytes, starting {_excerpt(body)}. The call counted "
                f"against today's quota; it was not retried. Try again later; if it persists, "
                f"Clarity's format may have changed."
            )
        if request.dimensions and _ignored_dimensions(payload, request.dimensions):
            raise ClarityDimensionFallbackError(
                f"Clarity ignored the requested dimensions ({', '.join(request.dimensions)}) and "
                f"sent the no-dimension snapshot ({len(payload)} blocks, no row carries them). The "
                f"call counted against today's quota; the raw answer is kept on the exception's "
                f"'payload'. Check the dimension names against {_valid_names()}.",
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
            for setting in ("daily_limit", "reserve", "quota_window", "rolling_window_seconds"):
                getattr(self, setting)
        except ClarityError as exc:
            return False, str(exc)
        except Exception as exc:
            return False, f"Could not read connection '{self.clarity_conn_id}': {exc}"

        token_check = _inspect_token(token)
        if token_check.problem is not None:
            fix = f"{_GET_A_NEW_ONE} the connection's API token field."
            return False, f"{token_check.problem} {fix}"
        if token_check.expires is None:
            expiry_text = "has no expiry date"
        else:
            expiry_text = f"expires on {_utc_text(token_check.expires)}"
        message = (
            f"Token for project {token_check.subject or '(unknown)'} is valid; {expiry_text}. "
            f"No API call was made (Clarity allows 10 a day)."
        )
        from airflow_provider_clarity.quota import missing_pool_note

        note = missing_pool_note()
        return True, message if note is None else f"{message} {note}"


def _unverified_jwt(token: str) -> tuple[Any, Any] | None:
    """A JWT's header and claims, signature unchecked; ``None`` if it is not a JWT.

    Decoded by hand rather than with PyJWT, which imports ``cryptography`` (about 40
    modules) in every worker that runs an export just to read an expiry date.
    """
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        return None
    try:
        header, claims = (
            json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
            for part in parts[:2]
        )
    except (ValueError, binascii.Error):  # bad base64, bad UTF-8 or bad JSON
        return None
    return header, claims


@dataclass(frozen=True)
class _TokenCheck:
    """What can be told about an API token offline (signature unchecked); never the token."""

    problem: str | None
    subject: str | None = None
    expires: datetime | None = None


def _inspect_token(token: str) -> _TokenCheck:
    """Check the token is an unexpired Clarity Data Export JWT, without calling Clarity.

    ``problem`` is one sentence saying what is wrong (``None`` when nothing is); the fix is
    left to the caller, which knows where the token lives.
    """
    not_jwt = _TokenCheck(
        "This API token is not a JWT: a Clarity token is one long string of about 700 "
        "characters in three dot-separated parts, starting 'eyJ'."
    )
    decoded = _unverified_jwt(token)
    if decoded is None:
        return not_jwt
    header, claims = decoded
    if not isinstance(header, dict) or not header.get("alg") or not isinstance(claims, dict):
        return not_jwt
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if CLARITY_AUDIENCE not in audiences:
        return _TokenCheck(
            f"This API token is not a Clarity Data Export token (its audience is {audience!r}, "
            f"expected {CLARITY_AUDIENCE!r})."
        )
    subject = str(claims["sub"]) if claims.get("sub") else None
    expires: datetime | None = None
    raw_exp = claims.get("exp")
    if isinstance(raw_exp, int | float) and not isinstance(raw_exp, bool):
        try:
            expires = datetime.fromtimestamp(raw_exp, tz=UTC)
        except (OverflowError, OSError, ValueError):  # an exp no clock can reach: no expiry
            return _TokenCheck(None, subject)
        if expires <= datetime.now(UTC):
            return _TokenCheck(
                f"This API token (project {subject or '(unknown)'}) expired on "
                f"{_utc_text(expires)}.",
                subject,
                expires,
            )
    return _TokenCheck(None, subject, expires)


_GET_A_NEW_ONE = (
    "Generate a new token in Clarity > Settings > Data Export (Clarity shows it only once) "
    "and paste all of it into"
)


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _status(response: Response | None) -> int:
    return response.status_code if response is not None else 0


def _excerpt(body: bytes) -> str:
    """A short printable excerpt of a response body for error messages."""
    if not body:
        return "(empty)"
    text = body[:_EXCERPT_CHARS].decode("utf-8", errors="replace")
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    more = "..." if len(body) > _EXCERPT_CHARS else ""
    return repr(text) + more


def _shape_problem(payload: Any) -> str | None:
    """Say how ``payload`` differs from a list of ``{metricName, information}`` blocks."""
    if not isinstance(payload, list):
        return f"is JSON but a {type(payload).__name__}, not a list of metric blocks"
    for index, block in enumerate(payload):
        if not isinstance(block, dict):
            return f"has a {type(block).__name__} at position {index} instead of a metric block"
        if not isinstance(block.get("metricName"), str):
            return f"has a block without a 'metricName' string at position {index}"
        rows = block.get("information")
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            return f"has block {block['metricName']!r} whose 'information' is not a list of rows"
    return None


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
