"""ClarityQuotaSensor: wait until a Clarity project has enough API calls left today."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_clarity.connection.settings import DEFAULT_CONN_ID
from airflow_provider_clarity.exceptions import ClarityError
from airflow_provider_clarity.quota import QuotaLedger
from airflow_provider_clarity.utils.numbers import whole_number
from airflow_provider_clarity.version_compat import AirflowFailException, conf
from airflow_provider_clarity.windows.utc import utc_text

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_clarity.hooks.clarity import ClarityHook


__all__ = ["ClarityQuotaSensor"]


class ClarityQuotaSensor(BaseSensorOperator):
    """Wait until at least ``calls`` Clarity API calls remain in the project's quota ledger.

    It only reads the ledger (``airflow_provider_clarity.quota.QuotaLedger``), never
    calls the API, and needs no pool. When too few calls remain it sleeps straight to the
    moment the ledger says enough will be back (the next reset), rather than every
    ``poke_interval``: in ``reschedule`` mode (the default) the task is rescheduled for that
    moment, in ``poke`` mode it sleeps until then, and with ``deferrable=True`` it defers to a
    ``DateTimeTrigger`` at that moment and re-checks when it fires.

    The sensor's return value (XCom) is the number of calls remaining when it succeeded.

    :param clarity_conn_id: the Clarity connection; its project, limit, reserve and window
        select the ledger. (templated)
    :param calls: how many calls must remain. (templated)
    :param reserve: calls to keep unspent for people outside Airflow; overrides the
        connection's ``reserve`` for this check.
    :param deferrable: defer to the triggerer instead of rescheduling; default from
        ``[operators] default_deferrable``. Each deferral waits at most ``timeout`` seconds.
    :raises AirflowFailException: when ``calls`` exceeds ``daily_limit - reserve``: waiting
        would never help.
    """

    template_fields: Sequence[str] = ("clarity_conn_id", "calls")
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        clarity_conn_id: str = DEFAULT_CONN_ID,
        calls: int | str = 1,
        reserve: int | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        mode: str = "reschedule",
        poke_interval: timedelta | float = 300,
        **kwargs: Any,
    ) -> None:
        super().__init__(mode=mode, poke_interval=poke_interval, **kwargs)
        self.clarity_conn_id = clarity_conn_id
        self.calls = calls
        self.reserve = reserve
        self.deferrable = deferrable
        # Seconds from the last unsuccessful poke until the ledger expects enough calls.
        self._wait_seconds: float | None = None

    @cached_property
    def hook(self) -> ClarityHook:
        # Imported here: a DAG file with only the sensor need not load requests and HttpHook.
        from airflow_provider_clarity.hooks.clarity import ClarityHook

        return ClarityHook(clarity_conn_id=self.clarity_conn_id)

    def _make_ledger(self) -> QuotaLedger:
        return QuotaLedger.for_hook(self.hook, reserve=self.reserve)

    def _needed(self) -> int:
        needed = whole_number(self.calls)
        if needed is None or needed < 1:
            raise AirflowFailException(
                "ClarityQuotaSensor: calls must be a whole number of at least 1, "
                f"got {self.calls!r}"
            )
        return needed

    def _check(self) -> tuple[int, datetime | None]:
        """Return (calls remaining, None) when enough remain, else (remaining, when enough will)."""
        ledger = self._make_ledger()
        needed = self._needed()
        if needed > ledger.capacity:
            raise AirflowFailException(
                f"ClarityQuotaSensor waits for {needed} call(s) of project {ledger.project_id!r}, "
                f"but daily_limit {ledger.daily_limit} minus reserve {ledger.reserve} leaves only "
                f"{ledger.capacity} for Airflow, so it would wait forever. Lower `calls` or the "
                "reserve."
            )
        remaining = ledger.remaining()
        if remaining >= needed:
            self.log.info(
                "Clarity project %s has %d of %d call(s) left in its %s window; %d needed.",
                ledger.project_id,
                remaining,
                ledger.capacity,
                ledger.window,
                needed,
            )
            return remaining, None
        wake_at = ledger.next_reset(needed)
        self.log.info(
            "Clarity project %s has %d of %d call(s) left in its %s window; %d needed. "
            "Enough will be available at %s.",
            ledger.project_id,
            remaining,
            ledger.capacity,
            ledger.window,
            needed,
            utc_text(wake_at),
        )
        self._wait_seconds = max(0.0, (wake_at - ledger.now()).total_seconds())
        return remaining, wake_at

    def poke(self, context: Context) -> bool | PokeReturnValue:
        remaining, wake_at = self._check()
        if wake_at is None:
            return PokeReturnValue(is_done=True, xcom_value=remaining)
        return False

    def _get_next_poke_interval(self, started_at: Any, run_duration: Any, poke_count: int) -> float:
        # Polling every poke_interval while the quota is spent would only burn worker time:
        # wake when the ledger says enough calls are back, bounded by timeout and max_wait.
        if self._wait_seconds is None:
            return super()._get_next_poke_interval(started_at, run_duration, poke_count)
        interval = min(self._wait_seconds, self.timeout - int(run_duration()))
        if self.max_wait:
            interval = min(interval, self.max_wait.total_seconds())
        self.log.info("Next check in %d s", interval)
        return max(0.0, interval)

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        remaining, wake_at = self._check()
        if wake_at is None:
            return remaining
        self._defer(wake_at)

    def _defer(self, wake_at: datetime) -> NoReturn:
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        self.defer(
            trigger=DateTimeTrigger(moment=wake_at),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Context, event: Any = None) -> int:
        """Resume after the DateTimeTrigger fired: re-check, and defer again if still short.

        :raises ClarityError: when the trigger sent something other than its moment.
        """
        if isinstance(event, str):
            with contextlib.suppress(ValueError):
                event = datetime.fromisoformat(event)
        if not isinstance(event, datetime):
            raise ClarityError(
                f"ClarityQuotaSensor resumed with an unexpected trigger event {event!r}; "
                "expected the DateTimeTrigger's moment. Clear the task to check again."
            )
        self.log.info(
            "Woke up at the expected reset (%s); checking the quota ledger again.",
            utc_text(event),
        )
        remaining, wake_at = self._check()
        if wake_at is None:
            return remaining
        self._defer(wake_at)
