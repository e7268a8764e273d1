"""Turn Clarity's answers and failed attempts into exceptions a user can act on.

``hooks/clarity.py`` decides what to send and when to stop, this module
says what went wrong and what to do. Every message names where to fix the problem and
whether a call was spent. Bodies are shown only through ``excerpt``, which scrubs the
token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from airflow_provider_clarity.api_facts import DEFAULT_HOST
from airflow_provider_clarity.connection.settings import QuotaSettings, Window
from airflow_provider_clarity.connection.token import GET_A_NEW_ONE, TokenCheck
from airflow_provider_clarity.exceptions import (
    ClarityAuthError,
    ClarityDimensionFallbackError,
    ClarityError,
    ClarityPermissionError,
    ClarityQuotaExceededError,
    ClarityRequestError,
    ClarityResponseError,
    ClarityServerError,
    QuotaSource,
)
from airflow_provider_clarity.hooks._transport import (
    AttemptFailed,
    ClarityAnswer,
    excerpt,
    without_query,
)
from airflow_provider_clarity.normalize import payload_problem
from airflow_provider_clarity.request import ClarityRequest, valid_names
from airflow_provider_clarity.windows.utc import utc_text


@dataclass(frozen=True)
class Where:
    """The facts about the connection that error messages need (never the token)."""

    conn_id: str
    base_url: str
    endpoint_url: str
    token_field: str
    settings: QuotaSettings
    token_check: TokenCheck
    project_named: bool
    token: str | None  # only to scrub excerpts; never printed


RUN_REFUSED = (
    "ClarityHook does not support HttpHook's run() or run_with_advanced_retry(): they would send "
    "a request to Clarity that the quota ledger never counts, with no validation. Use "
    "get_live_insights(num_of_days, dimensions) for the parsed answer, or fetch(request) for "
    "the raw one. No Clarity call was made."
)


def _spent(attempts: int, sent: bool) -> str:
    """``3 attempts (each may have cost ...)``: what a run of attempts may have cost."""
    text = f"{attempts} attempt{'s' if attempts != 1 else ''}"
    if not sent:
        return f"{text} (none reached a server, so no call was spent)"
    return f"{text} (each may have cost one of the project's daily calls)"


def error_for_failure(
    failure: AttemptFailed, request: ClarityRequest, where: Where
) -> ClarityError:
    """The exception for the last failed attempt, after retries."""
    host = without_query(where.base_url)
    if not failure.retryable and failure.outcome == "connection_error":
        return ClarityResponseError(
            f"Clarity's answer to {request.describe()} on connection '{where.conn_id}' broke "
            f"off: {failure.detail}. The call most likely counted against today's quota. Not "
            f"retried; try again later."
        )
    if failure.outcome == "tls_error":
        plain = "wrong version number" in failure.detail.lower() or "record" in failure.detail
        hint = (
            "The server does not speak TLS: if it is a local emulator, set the host to "
            "http://127.0.0.1:<port>."
            if plain
            else "If a proxy on your network inspects TLS, point the connection's 'verify' extra "
            "at its CA bundle (a file path on every worker) instead of turning verification off."
        )
        return ClarityRequestError(
            f"The TLS handshake with {host} (connection '{where.conn_id}') failed: "
            f"{failure.detail}. No request was sent, so no Clarity call was spent. {hint} "
            f"Clarity's own host is {DEFAULT_HOST}."
        )
    if failure.outcome == "not_sent":
        return ClarityRequestError(
            f"The request to {host} (connection '{where.conn_id}') could not be sent: "
            f"{failure.detail}. Nothing left this machine, so no Clarity call was spent. Check "
            f"the connection's host and API token."
        )
    causes = {
        "dns_error": f"the host name '{host}' did not resolve (DNS). Check the connection's host "
        f"(Clarity's is {DEFAULT_HOST}) and the worker's DNS",
        "connection_refused": f"nothing accepted a connection at {host}. Check the connection's "
        "host and port, and any proxy",
        "connect_timeout": f"no connection to {host} could be made within the connect timeout. "
        "Check network access from the worker, proxies and firewalls",
    }
    spent = _spent(failure.attempt, failure.sent)
    if failure.outcome in causes:
        return ClarityServerError(
            f"Could not reach Clarity for {request.describe()} after {spent}: "
            f"{causes[failure.outcome]}."
        )
    return ClarityServerError(
        f"Could not get an answer from Clarity at {host} for {request.describe()} after "
        f"{spent}: {failure.detail}. Check network access to the host, proxies and "
        f"the connection's host; if they are fine, Clarity may be down: try again later."
    )


def error_for_answer(
    answer: ClarityAnswer, request: ClarityRequest, where: Where
) -> ClarityError | None:
    """The exception for ``answer``, or ``None`` when it is a usable Clarity payload."""
    status = answer.status
    conn = where.conn_id
    project = where.settings.project_id
    if 200 <= status < 300:
        return _error_for_payload(answer, request, where.token)
    if 300 <= status < 400:
        pointed = without_query(answer.location) if answer.location else "(no Location)"
        return ClarityRequestError(
            f"{without_query(where.base_url)} answered {status} (a redirect to {pointed}) for "
            f"connection '{conn}'. Clarity's endpoint does not redirect, so the redirect was not "
            f"followed and the token was sent nowhere else. Set the connection's host to "
            f"{DEFAULT_HOST} (or leave it empty)."
        )
    if status == 401:
        check = where.token_check
        why = check.problem or (
            f"The API token looks like an unexpired Clarity Data Export token (project "
            f"{check.subject or '(unknown)'}), but Clarity rejected it: it may have been revoked "
            f"in Clarity, or only part of it was pasted."
        )
        return ClarityAuthError(
            f"Clarity answered 401 (unauthorised) for connection '{conn}'. {why} "
            f"{GET_A_NEW_ONE} {where.token_field}."
        )
    if status == 403:
        subject = where.token_check.subject
        mismatch = (
            f" (the token names project '{subject}', the connection's project_id is '{project}')"
            if where.project_named and subject and subject != project
            else ""
        )
        return ClarityPermissionError(
            f"Clarity answered 403 (forbidden) for connection '{conn}': its API token may not "
            f"export project '{project}'. The token belongs to another project{mismatch} or "
            f"lacks the Data.Export scope. In the Clarity project you want to export, generate a "
            f"token in Settings > Data Export and paste it into {where.token_field}."
        )
    if status == 429:
        reset_at = where.settings.reset_after_429(datetime.now(UTC), margin=False)
        if where.settings.window is Window.ROLLING:
            when = (
                f"With the connection's rolling window, a call is expected to be free again by "
                f"{utc_text(reset_at)}."
            )
        else:
            when = (
                f"Clarity does not say when; the daily window is assumed to restart at 00:00 UTC "
                f"({utc_text(reset_at)})."
            )
        return ClarityQuotaExceededError(
            f"Clarity answered 429: project '{project}' has spent its daily limit of "
            f"{where.settings.daily_limit} calls (calls from outside Airflow count too). {when} "
            f"Not retried, since every retry would be refused too. See who spent today's calls "
            f"with `python -m airflow_provider_clarity.quota usage {conn}`; to leave calls for "
            f"people and scripts outside Airflow, set the connection's 'reserve' extra.",
            reset_at=reset_at,
            source=QuotaSource.API,
        )
    body = excerpt(answer.body, where.token)  # only the answers below show their body
    if status >= 500:
        return ClarityServerError(
            f"Clarity answered HTTP {status} to {request.describe()} after "
            f"{_spent(len(answer.outcomes) or 1, True)}; body: {body}. This is a problem on "
            f"Clarity's side and has lasted for days in the past: try again later, and check the "
            f"Clarity status and forums if it persists."
        )
    if status == 400:
        return ClarityRequestError(
            f"Clarity answered 400 (bad request) to {request.params()} on connection '{conn}'; "
            f"body: {body}. Check num_of_days (1-3) and the dimension names ({valid_names()})."
        )
    return ClarityRequestError(
        f"Clarity answered HTTP {status} to {request.describe()} at "
        f"{without_query(where.endpoint_url)}; body: {body}. Check the connection's host: it "
        f"should be {DEFAULT_HOST} (or empty)."
    )


def _error_for_payload(
    answer: ClarityAnswer, request: ClarityRequest, token: str | None
) -> ClarityError | None:
    payload = answer.payload
    problem = (
        "is not valid JSON (it may have been cut off)"
        if payload is None
        else payload_problem(payload)
    )
    if problem is not None:
        return ClarityResponseError(
            f"Clarity answered {answer.status} to {request.describe()} but the body {problem}: "
            f"{len(answer.body)} bytes, starting {excerpt(answer.body, token)}. The call "
            f"counted against today's quota; it was not retried, and the answer is kept, so "
            f"running the task "
            f"again re-reads it without a call (force_refresh=True spends a new one). If it "
            f"persists, Clarity's format may have changed."
        )
    if request.dimensions and ignored_dimensions(payload, request.dimensions):
        return ClarityDimensionFallbackError(
            f"Clarity ignored the requested dimensions ({', '.join(request.dimensions)}) and "
            f"sent the no-dimension snapshot ({len(payload)} blocks, no row carries them). The "
            f"call counted against today's quota; the raw answer is kept on the exception's "
            f"'payload'. Check the dimension names against {valid_names()}.",
            payload=payload,
            dimensions=request.dimensions,
        )
    return None


def ignored_dimensions(payload: list[dict[str, object]], dimensions: tuple[str, ...]) -> bool:
    """True when the payload has rows but none carries a requested dimension key."""
    wanted = {name.lower() for name in dimensions}
    has_rows = False
    for block in payload:
        for row in block["information"]:  # type: ignore[attr-defined]
            has_rows = True
            if any(str(key).lower() in wanted for key in row):
                return False
    return has_rows
