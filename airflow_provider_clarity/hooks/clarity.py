"""ClarityHook: an Airflow connection in, Clarity's answer out.

The hook owns talking to Clarity: the bearer token, the host, timeouts, bounded retries,
and turning every failure into one of the exceptions in
:mod:`airflow_provider_clarity.exceptions`. Clarity allows 10 calls per project per day, so
nothing here spends a call that could have been refused locally, and ``test_connection``
spends none at all.

Two steps, so a caller can keep Clarity's answer before anything can fail: ``fetch``
sends (retrying what may get better) and returns the raw ``ClarityAnswer``; ``interpret``
turns it into the payload or an exception. ``get_live_insights`` does both.

Request validation is ``request.py``, token reading ``connection/token.py``, quota settings
``connection/settings.py``, messages ``hooks/_errors.py``. The quota ledger is an observer
passed in, never imported here.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from functools import cached_property
from typing import TYPE_CHECKING, Any

import requests
from airflow.providers.http.hooks.http import HttpHook
from requests.structures import CaseInsensitiveDict
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from airflow_provider_clarity import __version__
from airflow_provider_clarity.api_facts import API_ENDPOINT, DEFAULT_HOST, VALID_DIMENSIONS
from airflow_provider_clarity.connection.settings import (
    DEFAULT_CONN_ID,
    QuotaSettings,
    Window,
    connection_extra,
)
from airflow_provider_clarity.connection.token import (
    GET_A_NEW_ONE,
    CleanToken,
    TokenCheck,
    clean_token,
    inspect_token,
    mask,
)
from airflow_provider_clarity.exceptions import (
    ClarityAuthError,
    ClarityError,
    ClarityRequestError,
)
from airflow_provider_clarity.hooks._errors import (
    RUN_REFUSED,
    Where,
    error_for_answer,
    error_for_failure,
)
from airflow_provider_clarity.hooks._transport import (
    AttemptFailed,
    BearerAuth,
    ClarityAnswer,
    Hidden,
    base_url_from,
    check_origin,
    failure_for,
    is_retryable,
    scrubbed,
    without_query,
)
from airflow_provider_clarity.hooks.observer import CallObserver, notify_answer, notify_outcome
from airflow_provider_clarity.quota.context import missing_pool_note, pool_fault
from airflow_provider_clarity.request import ClarityRequest
from airflow_provider_clarity.windows.utc import utc_text

if TYPE_CHECKING:
    from airflow.sdk import Connection
    from requests import PreparedRequest, Response, Session

__all__ = [
    "API_ENDPOINT",
    "DEFAULT_HOST",
    "VALID_DIMENSIONS",
    "CallObserver",
    "ClarityAnswer",
    "ClarityHook",
    "ClarityRequest",
]


DEFAULT_TIMEOUT_SECONDS = 60.0
_MAX_BACKOFF_SECONDS = 60.0
_CONNECT_TIMEOUT_SECONDS = 10.0


class ClarityHook(HttpHook):
    """Call the Microsoft Clarity Data Export API through an Airflow connection.

    The connection's password is the API token (a JWT); what was pasted is cleaned first
    (quotes, a ``Bearer`` prefix, line breaks). Its host defaults to
    ``https://www.clarity.ms``. Extras configure the quota ledger (``project_id``,
    ``daily_limit``, ``reserve``, ``quota_window``, ``rolling_window_seconds``,
    ``degraded_cooldown_seconds``), the read timeout (``timeout``) and, as for ``HttpHook``,
    TLS and proxies (``verify``, ``proxies``, ``cert``); unlike ``HttpHook``, extras are
    never sent as HTTP headers.

    :param clarity_conn_id: the Airflow connection of type ``clarity``.
    :param timeout: seconds to wait for Clarity's answer; default the connection's
        ``timeout`` extra, else 60. Connecting waits at most 10 s.
    :param max_retries: how many times a 5xx, timeout or dropped connection is retried. Each
        retry may cost one of the project's daily calls.
    :param retry_backoff: the first wait between attempts in seconds; it doubles each time.
    :param count_calls: count every call this hook makes without an ``observer`` in the
        project's quota ledger, as the operator's calls are (``quota/direct.py``): it is then
        refused when the ledger says no call is left or Clarity is in an outage cool-down.
        ``False`` sends uncounted, so the exports cannot know about the call: use it only for
        a project no Airflow task calls.
    """

    conn_name_attr = "clarity_conn_id"
    default_conn_name = DEFAULT_CONN_ID
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
        timeout: float | None = None,
        max_retries: int = 2,
        retry_backoff: float = 2.0,
        count_calls: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(method="GET", http_conn_id=clarity_conn_id, **kwargs)
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be positive; got {timeout!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an int >= 0; got {max_retries!r}")
        if not retry_backoff >= 0:
            raise ValueError(f"retry_backoff must be >= 0; got {retry_backoff!r}")
        self.clarity_conn_id = clarity_conn_id
        self._timeout_argument = None if timeout is None else float(timeout)
        self.max_retries = max_retries
        self.retry_backoff = float(retry_backoff)
        self.count_calls = bool(count_calls)

    # ----------------------------------------------------------------- connection settings

    @property
    def connection(self) -> Connection:
        """The Airflow connection, fetched once per hook (kept out of ``vars(hook)``'s repr,
        since a Connection's repr shows its password)."""
        held = self.__dict__.get("_connection")
        if held is None:
            held = self.__dict__["_connection"] = Hidden(self.get_connection(self.clarity_conn_id))
        return held.value

    @cached_property
    def token(self) -> CleanToken:
        """The token to send, cleaned from what was pasted (never printed or logged)."""
        cleaned = clean_token(self.connection.password)
        if cleaned.token is not None:
            mask(cleaned.token)
        return cleaned

    @cached_property
    def token_check(self) -> TokenCheck:
        """What the token's own claims say (offline); a problem when there is no token."""
        if self.token.token is None:
            return TokenCheck(self.token.problem)
        return inspect_token(self.token.token)

    @cached_property
    def quota_settings(self) -> QuotaSettings:
        """The connection's quota settings, read once per hook; ``project_id`` defaults to the
        project the token names, else the connection id.

        :raises ClarityRequestError: an extra that does not parse, naming how to fix it.
        """
        return QuotaSettings.from_extras(
            self.connection.extra_dejson,
            conn_id=self.clarity_conn_id,
            conn_type=self.conn_type,
            default_project=self.token_check.subject,
        )

    @cached_property
    def timeout(self) -> float:
        """Seconds to wait for Clarity's answer: the argument, the ``timeout`` extra, or 60."""
        if self._timeout_argument is not None:
            return self._timeout_argument
        value = self._extra("timeout")
        if value is None or (isinstance(value, str) and not value.strip()):
            return DEFAULT_TIMEOUT_SECONDS
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            seconds = 0.0
        if isinstance(value, bool) or not 0 < seconds < float("inf"):
            raise ClarityRequestError(
                f"Connection '{self.clarity_conn_id}': extra 'timeout' must be a number of "
                f"seconds above 0; got {value!r}. Fix it in the connection's extras, or remove "
                f"it to use the default ({DEFAULT_TIMEOUT_SECONDS:g})."
            )
        return seconds

    @property
    def project_id(self) -> str:
        """The Clarity project for the quota ledger: extra ``project_id``, else the token's."""
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
        session.auth = BearerAuth(self._token())
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

    # ------------------------------------------------------------ offline checks

    def _token(self) -> str:
        """The cleaned token, or an error that says what is wrong without showing it."""
        if self.token.token is None:
            raise self._token_error(self.token.problem)
        return self.token.token

    def _token_error(self, problem: str | None) -> ClarityAuthError:
        """A token refused offline: what is wrong, and where to paste a new one."""
        return ClarityAuthError(
            f"{problem} {GET_A_NEW_ONE} {self._token_field()}. No Clarity call was made."
        )

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

    def check_offline(self) -> None:
        """Everything that can be refused before a call: host, token, project, extras.

        :raises ClarityRequestError: a host that is not Clarity's shape (a path, plain http
            off loopback), an extra that does not parse, or a ``project_id`` that is not the
            project the token names.
        :raises ClarityAuthError: no usable token, a token for another audience, or one whose
            own expiry has passed (Clarity would certainly answer 401).
        """
        check_origin(self.base_url, self.clarity_conn_id)
        self._token()
        check = self.token_check
        if check.problem is not None and (check.expired or check.audience_wrong):
            raise self._token_error(check.problem)
        settings = self.quota_settings
        self.timeout  # noqa: B018  (reading the extra is the check)
        subject = check.subject
        if subject and settings.project_id != subject:
            raise ClarityRequestError(
                f"Connection '{self.clarity_conn_id}': its project_id extra is "
                f"'{settings.project_id}', but its API token is for project '{subject}' (the "
                f"token's own claim). Clarity would refuse the call, and the quota ledger would "
                f"count it under the wrong project. Set project_id to '{subject}' or leave it "
                f"empty, or paste the token of project '{settings.project_id}'. No Clarity call "
                f"was made."
            )
        if self.token.fixed:
            self.log.warning(
                "Connection '%s': removed %s from the pasted API token before sending it; "
                "paste the bare token to silence this.",
                self.clarity_conn_id,
                " and ".join(self.token.fixed),
            )

    def _where(self) -> Where:
        return Where(
            conn_id=self.clarity_conn_id,
            base_url=self.base_url,
            endpoint_url=self.url_from_endpoint(API_ENDPOINT),
            token_field=self._token_field(),
            settings=self.quota_settings,
            token_check=self.token_check,
            project_named=self._extra("project_id") not in (None, ""),
            token=self.token.token,
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
        attempt, retries included; without one, the call is counted in the project's quota
        ledger unless the hook has ``count_calls=False``.

        :raises ClarityRequestError: invalid request or connection (nothing sent), a 400, a
            redirect or another 4xx.
        :raises ClarityAuthError: 401, or no usable token in the connection (nothing sent).
        :raises ClarityPermissionError: 403.
        :raises ClarityQuotaExceededError: 429 (never retried), or the quota ledger (or
            ``observer``) refused the call: no call left, or an outage cool-down
            (``ClarityDegradedError``). Nothing was sent then.
        :raises ClarityLedgerError: the quota ledger cannot count the call safely.
        :raises ClarityServerError: 5xx or no connection, after ``max_retries`` retries.
        :raises ClarityResponseError: a 200 whose body is not the expected JSON.
        :raises ClarityDimensionFallbackError: Clarity ignored the requested dimensions.
        """
        request = request or ClarityRequest.build(num_of_days, dimensions)
        return self.interpret(self.fetch(request, observer=observer), request)

    def fetch(
        self, request: ClarityRequest, *, observer: CallObserver | None = None
    ) -> ClarityAnswer:
        """Send ``request`` and return whatever answered, unchanged (5xx after retries too).

        Refuses before sending what ``check_offline`` refuses. Redirects are never followed.
        Without ``observer``, the project's quota ledger observes the call
        (``quota.direct``), unless ``count_calls`` is off. An observer with an
        ``after_answer(answer)`` method is told the final answer too (the ledger starts its
        outage cool-down there).

        :raises ClarityError: nothing usable came back (no connection, a TLS failure, a body
            that broke off), or ``observer`` refused the attempt.
        """
        self.check_offline()
        if observer is None and self.count_calls:
            # The ledger stays beside the hook: it is asked for, never consulted in here.
            from airflow_provider_clarity.quota.direct import ledger_for_direct_call

            observer = ledger_for_direct_call(self)
        session = self.get_conn()
        prepared = session.prepare_request(
            requests.Request("GET", self.url_from_endpoint(API_ENDPOINT), params=request.params())
        )
        answer = self._send_with_retries(session, prepared, request, observer)
        notify_answer(observer, answer, self.log)
        return answer

    def interpret(self, answer: ClarityAnswer, request: ClarityRequest) -> list[dict[str, Any]]:
        """The payload of a usable answer, else the exception that says what to do.

        Needs no network: it reads the connection only for the wording of its messages.
        """
        error = error_for_answer(answer, request, self._where())
        if error is not None:
            raise error
        payload: list[dict[str, Any]] = answer.payload
        return payload

    def _send_with_retries(
        self,
        session: Session,
        prepared: PreparedRequest,
        request: ClarityRequest,
        observer: CallObserver | None,
    ) -> ClarityAnswer:
        attempts = self.max_retries + 1
        outcomes: list[str] = []
        retrying = Retrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=self.retry_backoff, max=_MAX_BACKOFF_SECONDS),
            retry=retry_if_exception(is_retryable),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    response = self._send_once(
                        session,
                        prepared,
                        request,
                        observer,
                        outcomes,
                        attempt=attempt.retry_state.attempt_number,
                        attempts=attempts,
                    )
                    return self._answer(response, outcomes)
            raise AssertionError("tenacity stopped without an outcome")  # pragma: no cover
        except AttemptFailed as exc:
            failure = exc
        if failure.outcome.isdigit():  # 5xx on the last attempt: an answer, kept like any other
            return ClarityAnswer(
                status=int(failure.outcome),
                body=failure.body,
                payload=None,
                host=without_query(self.base_url),
                outcomes=tuple(outcomes),
            )
        # Raised outside the except block so no requests exception (which holds the prepared
        # request, Authorization header included) is chained to what the user sees.
        raise error_for_failure(failure, request, self._where())

    def _answer(self, response: Response, outcomes: list[str]) -> ClarityAnswer:
        body = response.content
        payload: Any = None
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = None
        usable = 200 <= response.status_code < 300 and payload is not None
        if not usable:
            body = scrubbed(body, self.token.token)
        return ClarityAnswer(
            status=response.status_code,
            body=body,
            payload=payload if usable else None,
            host=without_query(self.base_url),
            location=response.headers.get("Location"),
            outcomes=tuple(outcomes),
        )

    def _send_once(
        self,
        session: Session,
        prepared: PreparedRequest,
        request: ClarityRequest,
        observer: CallObserver | None,
        outcomes: list[str],
        *,
        attempt: int,
        attempts: int,
    ) -> Response:
        if observer is not None:
            observer.before_call(request)
        response: Response | None = None
        failure: AttemptFailed | None = None
        try:
            settings = session.merge_environment_settings(
                prepared.url,
                proxies=session.proxies,
                stream=session.stream,
                verify=session.verify,
                cert=session.cert,
            )
            response = session.send(
                prepared,
                timeout=(min(_CONNECT_TIMEOUT_SECONDS, self.timeout), self.timeout),
                allow_redirects=False,
                **settings,
            )
        except Exception as exc:  # classified, never chained: it may hold the header
            failure = failure_for(exc, attempt=attempt, read_timeout=self.timeout)
        if response is not None and response.status_code >= 500:
            failure = AttemptFailed(
                str(response.status_code),
                f"HTTP {response.status_code}",
                attempt=attempt,
                retryable=True,
                body=scrubbed(response.content, self.token.token),
            )
        # Not `if response`: a Response is falsy for any 4xx/5xx status.
        outcome = failure.outcome if failure is not None else str(response.status_code)  # type: ignore[union-attr]
        outcomes.append(outcome)
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
            notify_outcome(observer, request, outcome, self.log)
        if failure is not None:
            raise failure
        assert response is not None
        return response

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """Refused: ``HttpHook.run`` would call Clarity uncounted; use ``get_live_insights``."""
        raise ClarityRequestError(RUN_REFUSED)

    run_with_advanced_retry = run

    # ----------------------------------------------------------------- test_connection

    def test_connection(self) -> tuple[bool, str]:
        """Check the connection without calling Clarity (each call is one of ten a day).

        The same checks as before every call (``check_offline``): a usable token (what was
        pasted is cleaned as for a call), a JWT for ``clarity.data-exporter`` that has not
        expired, a ``project_id`` that matches the token's project, an https origin as host
        (plain http only on loopback), and extras that parse. A successful result also says
        when the ``clarity_api`` pool is missing, since Clarity export tasks would then
        never be scheduled.
        """
        try:
            self.check_offline()
        except ClarityError as exc:
            return False, str(exc).replace(self._token_field(), "the connection's API token field")
        except Exception as exc:
            return (
                False,
                f"Could not read connection '{self.clarity_conn_id}': {type(exc).__name__}",
            )
        check = self.token_check
        if check.problem is not None:
            return False, f"{check.problem} {GET_A_NEW_ONE} the connection's API token field."
        if check.expires is None:
            expiry_text = "has no expiry date"
        else:
            expiry_text = f"expires on {utc_text(check.expires, minutes=True)}"
        message = (
            f"Token for project {check.subject or '(unknown)'} is valid; {expiry_text}. "
            f"No API call was made (Clarity allows 10 a day)."
        )
        if self.token.fixed:
            message += f" Removed {' and '.join(self.token.fixed)} from the pasted token."
        fault = pool_fault()
        if fault is not None:  # the token is fine, but calls could overspend the quota
            return False, f"{message} {fault}"
        note = missing_pool_note()
        return True, message if note is None else f"{message} {note}"
