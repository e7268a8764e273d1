"""The ledger a direct hook call is counted in, unless the hook was told not to count.

``ClarityHook.fetch`` (and so ``get_live_insights``) asks this module for its observer when
the caller passes none: a hand-written ``@task`` with the hook spends the same daily calls as
the operator, so it is counted in the same per-project ledger, meets the same refusals and the
same outage cool-down. ``ClarityHook(count_calls=False)`` opts out.

Inside a task, a ledger that cannot be read stops the call (fail closed). Outside a task (a
script, a notebook) the ledger lives in the metadata DB, which a script may not reach: the
call is then made uncounted, and the log says so, as it says when the call was counted.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow_provider_clarity.quota.context import current_caller
from airflow_provider_clarity.quota.ledger import QuotaLedger
from airflow_provider_clarity.quota.store import in_task

if TYPE_CHECKING:
    from airflow_provider_clarity.request import ClarityRequest

log = logging.getLogger(__name__)


def ledger_for_direct_call(hook: Any) -> QuotaLedger | ScriptLedger:
    """The observer that counts a call the hook makes on its own.

    ``hook`` is the ``ClarityHook`` (its ``quota_settings``). Inside a task, the project's
    ``QuotaLedger`` itself: what it refuses is refused.
    Elsewhere a ``ScriptLedger`` around it, which sends uncounted (and says so) when the
    metadata DB cannot be reached.
    """
    ledger = QuotaLedger.for_hook(hook, caller=current_caller())
    return ledger if in_task() else ScriptLedger(ledger)


class ScriptLedger:
    """Count a call made outside a task, where the metadata DB may not be reachable.

    Refusals (no call left, a cool-down, an unreadable ledger) stop the call as in a task.
    Only a ledger that cannot be reached at all (no metadata DB configured) lets the call go
    uncounted, with a warning; either way the log says whether the call was counted.
    """

    def __init__(self, ledger: QuotaLedger) -> None:
        self.ledger = ledger
        self.counting: bool | None = None  # decided by the first attempt

    def before_call(self, request: ClarityRequest) -> None:
        if self.counting is None:
            self.counting = self._reachable()
        if self.counting:
            self.ledger.before_call(request)  # from here on, any failure refuses the call

    def _reachable(self) -> bool:
        """Whether this process reaches the ledger's store at all (its ``probe``, if it has one).

        Only a store that cannot be reached lets the call go uncounted; a ledger that is
        reached but cannot be read or written refuses the call in ``before_call``, as in a
        task (which also does the first read, before taking the lock).
        """
        probe = getattr(self.ledger.store, "probe", None)
        try:
            if probe is not None:
                probe()
        except Exception as exc:  # no metadata DB here (a plain script): say so, don't guess
            log.warning(
                "The call for project '%s' is NOT counted in the Clarity quota ledger "
                "(Variable %s): the ledger cannot be reached from this process (%s). Run it "
                "inside an Airflow task, or where the Airflow metadata DB is configured, to count "
                "it; the exports cannot see calls they do not count and may meet 429s.",
                self.ledger.project_id,
                self.ledger.key,
                type(exc).__name__,
            )
            return False
        return True

    def after_call(self, request: ClarityRequest, outcome: str) -> None:
        if not self.counting:
            return
        self.ledger.after_call(request, outcome)
        log.info(
            "The call for project '%s' is counted in the Clarity quota ledger (Variable %s), as "
            "the exports' calls are; %s call(s) left. Pass count_calls=False to the hook not to "
            "count it.",
            self.ledger.project_id,
            self.ledger.key,
            self.ledger.remaining_after_last_call,
        )

    def after_answer(self, answer: Any) -> None:
        if self.counting:
            self.ledger.after_answer(answer)
