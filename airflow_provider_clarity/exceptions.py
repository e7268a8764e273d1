"""Exceptions raised by the Clarity provider.

Each exception stands for one thing a user can act on, and its message says what to do
next. None of them ever carries the API token.

Errors that cannot get better by retrying (a bad token, a refused request, an unusable
answer) are also ``AirflowFailException``: the task fails at once instead of spending a
call on each Airflow retry. ``ClarityServerError`` (Clarity or the network failing) and
``ClarityQuotaExceededError`` (the operator decides: wait, skip or fail) are not.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from airflow_provider_clarity.version_compat import AirflowException, AirflowFailException

__all__ = [
    "ClarityAuthError",
    "ClarityDegradedError",
    "ClarityDimensionFallbackError",
    "ClarityError",
    "ClarityLedgerError",
    "ClarityLockTimeoutError",
    "ClarityPermanentError",
    "ClarityPermissionError",
    "ClarityQuotaExceededError",
    "ClarityRequestError",
    "ClarityResponseError",
    "ClarityServerError",
    "QuotaSource",
]


class ClarityError(AirflowException):
    """Base class of every error raised by the Clarity provider."""


class ClarityPermanentError(ClarityError, AirflowFailException):
    """An error retrying cannot fix: Airflow fails the task without using its retries."""


class ClarityAuthError(ClarityPermanentError):
    """Clarity answered 401: the token is missing, invalid or expired."""


class ClarityPermissionError(ClarityPermanentError):
    """Clarity answered 403: the token lacks the Data.Export scope or is for another project."""


class ClarityRequestError(ClarityPermanentError):
    """The request is invalid: rejected locally before any call, or by Clarity with a 400."""


class ClarityLedgerError(ClarityPermanentError):
    """The quota ledger cannot count this call safely: its document is unreadable, or this
    process could write it at the same time as another host. Nothing was sent; the message
    says what to fix."""


class ClarityLockTimeoutError(ClarityError):
    """Another process held a project's quota lock longer than this one would wait. Nothing
    was sent; trying again later can help, so this is not a permanent error."""


class QuotaSource(StrEnum):
    """Who refused a call: Clarity (a 429), the local ledger, or the ledger's 5xx cool-down."""

    API = "api"
    LEDGER = "ledger"
    DEGRADED = "degraded"


class ClarityQuotaExceededError(ClarityError):
    """No call may be made now: Clarity answered 429, or the local ledger says the day is spent.

    :param reset_at: when the quota is expected to be available again (UTC), if known.
    :param source: ``QuotaSource.API`` when Clarity answered 429, ``QuotaSource.LEDGER`` when
        the local ledger refused the call before anything was sent.
    """

    def __init__(
        self,
        message: str,
        *,
        reset_at: datetime | None = None,
        source: QuotaSource = QuotaSource.API,
    ) -> None:
        super().__init__(message)
        self.reset_at = reset_at
        self.source = source


class ClarityDegradedError(ClarityQuotaExceededError):
    """Clarity failed every attempt of a recent call with a 5xx: calls wait for a cool-down.

    ``reset_at`` is the end of the cool-down, when one probe call checks whether Clarity is
    back. ``source`` is ``QuotaSource.DEGRADED``.
    """


class ClarityServerError(ClarityError):
    """Clarity answered 5xx, or could not be reached, after every retry was spent."""


class ClarityResponseError(ClarityPermanentError):
    """Clarity answered 200 with a body this provider cannot use (not JSON, wrong shape...)."""


class ClarityDimensionFallbackError(ClarityResponseError):
    """Clarity ignored the requested dimensions and sent the no-dimension snapshot instead.

    The live API does this, with a 200, for dimension names it does not know. The call was
    still counted against the quota, so the payload is kept on the exception as ``payload``.
    """

    def __init__(self, message: str, *, payload: Any, dimensions: tuple[str, ...]) -> None:
        super().__init__(message)
        self.payload = payload
        self.dimensions = dimensions
