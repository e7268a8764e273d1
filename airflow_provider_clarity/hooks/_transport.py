"""The hook's HTTP pieces: bearer auth, base URLs, attempt failures, body excerpts.

STYLE: small, stateless helpers of ``hooks/clarity.py``; nothing here knows about quota or
Airflow. Nothing here may put the token into a repr, a message or an exception.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from requests.auth import AuthBase

from airflow_provider_clarity._api import DEFAULT_HOST

if TYPE_CHECKING:
    from requests import PreparedRequest, Response

__all__ = [
    "AttemptFailed",
    "BearerAuth",
    "base_url_from",
    "excerpt",
    "is_loopback",
    "is_retryable",
    "status_of",
]

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


class AttemptFailed(Exception):
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


def is_retryable(exc: BaseException) -> bool:
    """Retry predicate: 5xx, timeouts and dropped connections, never 4xx or a spent 200."""
    return isinstance(exc, AttemptFailed) and exc.retryable


def is_loopback(hostname: str) -> bool:
    if hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def base_url_from(host: str | None, port: int | None) -> str:
    """Build the base URL from a connection host given with or without a scheme."""
    text = (host or "").strip().rstrip("/") or DEFAULT_HOST
    if "://" not in text:
        text = f"https://{text}"
    if port and urlsplit(text).port is None:
        text = f"{text}:{port}"
    return text


def status_of(response: Response | None) -> int:
    return response.status_code if response is not None else 0


def excerpt(body: bytes) -> str:
    """A short printable excerpt of a response body for error messages."""
    if not body:
        return "(empty)"
    text = body[:_EXCERPT_CHARS].decode("utf-8", errors="replace")
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    more = "..." if len(body) > _EXCERPT_CHARS else ""
    return repr(text) + more
