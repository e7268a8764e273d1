"""What the hook tells an observer, such as the quota ledger, about each attempt and answer.

The hook never counts calls itself: it tells a ``CallObserver`` before and after every HTTP
attempt (retries included), and, when the observer has an ``after_answer`` method, the final
answer. The quota ledger is the observer the operator passes, and the one a direct hook call
gets by default (``quota/direct.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from airflow_provider_clarity.hooks._transport import ClarityAnswer
    from airflow_provider_clarity.request import ClarityRequest


@runtime_checkable
class CallObserver(Protocol):
    """Something that wants to know about every HTTP attempt, such as the quota ledger.

    It may also define ``after_answer(answer)``, told once the call is over with the
    ``ClarityAnswer`` the caller gets (the ledger starts its outage cool-down there).
    """

    def before_call(self, request: ClarityRequest) -> None:
        """Run right before every attempt, retries included.

        Raise ClarityQuotaExceededError to stop the attempt before anything is sent.
        """

    def after_call(self, request: ClarityRequest, outcome: str) -> None:
        """Run after every attempt.

        ``outcome`` is the HTTP status as a string, or one of ``timeout``,
        ``connection_error`` (may have reached Clarity), ``dns_error``,
        ``connection_refused``, ``connect_timeout``, ``tls_error``, ``not_sent`` (certainly
        did not).
        """


def notify_answer(observer: Any, answer: ClarityAnswer, log: Any) -> None:
    """Call ``observer.after_answer(answer)`` if it has one; never raise, since the answer is
    the caller's to keep whatever happens (a failure is logged to ``log``)."""
    after_answer = getattr(observer, "after_answer", None)
    if after_answer is None:
        return
    try:
        after_answer(answer)
    except Exception as exc:
        log.warning("The Clarity call's observer could not take its answer: %s", exc)


def notify_outcome(observer: CallObserver, request: ClarityRequest, outcome: str, log: Any) -> None:
    """Call ``observer.after_call``; never raise: the attempt is over, and whatever it brought
    back is the caller's to keep. A ledger that cannot record the outcome keeps the call as
    ``pending``, which still counts, so nothing is undercounted (the failure is logged)."""
    try:
        observer.after_call(request, outcome)
    except Exception as exc:
        log.warning(
            "The Clarity call's outcome (%s) could not be recorded by its observer: %s. A quota "
            "ledger keeps the call as pending, which still counts against the project.",
            outcome,
            exc,
        )
