"""The hook's HTTP pieces: bearer auth, base URLs, one attempt's failure, body excerpts.

Small, stateless helpers of ``hooks/clarity.py``; nothing here knows about quota or
Airflow. Nothing here may put the token into a repr, a message or an exception: a failure
keeps only its class name and a short reason, never the requests exception (which holds
the prepared request, ``Authorization`` header included).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.auth import AuthBase

from airflow_provider_clarity.api_facts import API_ENDPOINT, DEFAULT_HOST
from airflow_provider_clarity.connection.token import scrub
from airflow_provider_clarity.exceptions import ClarityRequestError
from airflow_provider_clarity.quota.records import Outcome

if TYPE_CHECKING:
    from requests import PreparedRequest

_EXCERPT_CHARS = 200


class BearerAuth(AuthBase):
    """Send the Clarity API token as ``Authorization: Bearer``."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "BearerAuth(token=***)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BearerAuth) and other._token == self._token

    def __hash__(self) -> int:
        return hash(self._token)


@dataclass(frozen=True)
class ClarityAnswer:
    """What Clarity (or whatever answered at the connection's host) sent back, unchanged.

    ``payload`` is the parsed JSON body, or ``None`` when the body is not JSON. ``body`` is
    the raw body; for anything but a 2xx JSON answer it has been scrubbed of the token (a
    gateway may echo the request). ``outcomes`` are the ledger outcomes of every attempt
    that led here, retries included.
    """

    status: int
    body: bytes
    payload: Any
    host: str
    location: str | None = None
    outcomes: tuple[str, ...] = ()

    @property
    def all_attempts_failed_on_clarity(self) -> bool:
        """True when every attempt got a 5xx: Clarity itself is failing, not the network."""
        return bool(self.outcomes) and all(Outcome.is_server_error(o) for o in self.outcomes)


class AttemptFailed(Exception):
    """One HTTP attempt that did not produce a usable response; internal to the retry loop.

    ``sent`` is ``False`` when the request certainly never left this machine or never
    reached a server (name resolution, refused, connect timeout, TLS handshake): the ledger
    does not charge it. Failures that cannot get better by retrying (an untrusted
    certificate, a request that cannot be encoded) are not ``retryable``.
    """

    def __init__(
        self,
        outcome: str,
        detail: str,
        *,
        attempt: int,
        retryable: bool,
        body: bytes = b"",
        sent: bool = True,
    ) -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.detail = detail
        self.attempt = attempt
        self.retryable = retryable
        self.body = body
        self.sent = sent


def is_retryable(exc: BaseException) -> bool:
    """Retry predicate: 5xx, timeouts and dropped connections, never 4xx or a spent 200."""
    return isinstance(exc, AttemptFailed) and exc.retryable


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps: requests puts urllib3's reason in ``args``, not ``__cause__``."""
    seen: list[BaseException] = []
    pending: list[BaseException] = [exc]
    while pending and len(seen) < 20:
        current = pending.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        reason = getattr(current, "reason", None)
        for nested in (*current.args, reason, current.__cause__, current.__context__):
            if isinstance(nested, BaseException):
                pending.append(nested)
    return seen


_SSL_REASON = re.compile(r"\[SSL(?::\s*([A-Z_]+))?\]\s*([^(\]]+)")


def _tls_reason(exc: BaseException) -> str:
    for cause in _causes(exc):
        match = _SSL_REASON.search(str(cause))
        if match:
            return match.group(2).strip().rstrip(".") or (match.group(1) or "").lower()
    return "the handshake failed"


def failure_for(exc: BaseException, *, attempt: int, read_timeout: float) -> AttemptFailed:
    """Classify what ``session.send`` raised; keep the class name, never the exception."""
    import urllib3.exceptions as u3

    name = type(exc).__name__
    causes = _causes(exc)

    def caused_by(kind: type[BaseException] | tuple[type[BaseException], ...]) -> bool:
        return any(isinstance(cause, kind) for cause in causes)

    if isinstance(exc, requests.exceptions.SSLError):
        return AttemptFailed(
            "tls_error",
            _tls_reason(exc),
            attempt=attempt,
            retryable=False,
            sent=False,
        )
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return AttemptFailed(
            "connect_timeout",
            f"no connection ({name})",
            attempt=attempt,
            retryable=True,
            sent=False,
        )
    if isinstance(exc, requests.exceptions.ConnectionError) and caused_by(u3.NameResolutionError):
        return AttemptFailed(
            "dns_error",
            "the host name did not resolve",
            attempt=attempt,
            retryable=True,
            sent=False,
        )
    if isinstance(exc, requests.exceptions.ConnectionError) and caused_by(u3.NewConnectionError):
        return AttemptFailed(
            "connection_refused",
            f"nothing accepted the connection ({name})",
            attempt=attempt,
            retryable=True,
            sent=False,
        )
    if isinstance(exc, requests.Timeout):
        return AttemptFailed(
            Outcome.TIMEOUT,
            f"no answer within {read_timeout:g} s ({name})",
            attempt=attempt,
            retryable=True,
        )
    if isinstance(exc, requests.ConnectionError):
        return AttemptFailed(
            Outcome.CONNECTION_ERROR,
            f"the connection failed or was dropped before an answer ({name})",
            attempt=attempt,
            retryable=True,
        )
    if isinstance(exc, requests.RequestException):
        # The answer started (so the call most likely counted) but its body broke off.
        return AttemptFailed(
            Outcome.CONNECTION_ERROR,
            f"the answer broke off while its body was being read ({name})",
            attempt=attempt,
            retryable=False,
        )
    # Anything else was raised while the request was being encoded, before any byte left:
    # e.g. http.client refusing a header. Its text may hold the header: keep only the name.
    return AttemptFailed(
        "not_sent",
        f"the request could not be encoded ({name})",
        attempt=attempt,
        retryable=False,
        sent=False,
    )


def is_loopback(hostname: str) -> bool:
    if hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def base_url_from(host: str | None, port: int | None) -> str:
    """Build the base URL from a connection host given with or without a scheme.

    A pasted endpoint path (``https://www.clarity.ms/export-data/api/v1/...``) is cut back
    to the origin; ``check_base_url`` refuses any other path.
    """
    text = (host or "").strip().rstrip("/") or DEFAULT_HOST
    if "://" not in text:
        text = f"https://{text}"
    parts = urlsplit(text)
    path = parts.path.rstrip("/")
    if path and API_ENDPOINT.startswith(path):
        text = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
    if port and urlsplit(text).port is None:
        text = f"{text}:{port}"
    return text


def without_query(url: str) -> str:
    """``url`` without user info, query or fragment: safe to show in a message."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def scrubbed(body: bytes, token: str | None) -> bytes:
    """A whole response body with every long run shared with the token removed, to keep."""
    return scrub(body.decode("utf-8", errors="replace"), token).encode("utf-8")


def excerpt(body: bytes, token: str | None = None) -> str:
    """A short printable excerpt of a response body for error messages, token scrubbed."""
    if not body:
        return "(empty)"
    text = scrub(body[: _EXCERPT_CHARS * 8].decode("utf-8", errors="replace"), token)
    more = "..." if len(text) > _EXCERPT_CHARS else ""
    text = "".join(ch if ch.isprintable() else " " for ch in text[:_EXCERPT_CHARS])
    return repr(text) + more


class Hidden:
    """Holds a value without ever showing it in a repr (a Connection's repr shows its
    password, and ``vars(hook)`` must not)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<hidden>"


def check_origin(base_url: str, conn_id: str) -> None:
    """Refuse to send the token in clear text, or to any URL that is not an origin.

    :raises ClarityRequestError: naming connection ``conn_id`` and how to fix its host.
    """
    parts = urlsplit(base_url)
    safe = parts.hostname and (
        parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname))
    )
    if not safe:
        raise ClarityRequestError(
            f"Connection '{conn_id}' host {without_query(base_url)!r} is "
            f"not an https URL. Use https://www.clarity.ms (or leave the host empty); plain "
            f"http is only allowed for a local emulator on 127.0.0.1, ::1 or localhost."
        )
    if parts.path.strip("/") or parts.query:
        raise ClarityRequestError(
            f"Connection '{conn_id}' host {without_query(base_url)!r} has "
            f"a path; the host is only the origin, e.g. {DEFAULT_HOST}, and the provider adds "
            f"{API_ENDPOINT} itself. Fix the connection's host. No Clarity call was made."
        )
