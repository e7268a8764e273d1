"""A plan with fewer calls: as few calls as cover every breakdown, the rest derived.

Each suggested call says what it replaces (the tasks asking each breakdown it serves, and
their calls a day) and why its answer fits under Clarity's 1000-row cap:

- **as requested**: a breakdown some task already asks for;
- **measured**: a merge whose rows, bounded from kept answers (``rows.RowCounts``), stay at
  or under ``rows.FIT_ROWS``; a pair or a triple;
- **assumed**: a pair of session dimensions no kept answer measured. Pairs are what the
  provider's docs recommend as a source (``docs/ten-calls.md``). A triple is never assumed,
  and nothing with ``URL`` (a site has thousands) is merged unmeasured.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from airflow_provider_clarity.derive import validate_roll_up
from airflow_provider_clarity.exceptions import ClarityError
from airflow_provider_clarity.plan.rows import FIT_ROWS, RowCounts

#: Breakdowns (of one ``numOfDays``) up to which the cover is searched exhaustively; past
#: it, a greedy cover (the candidate serving most breakdowns first).
EXACT_UP_TO = 14


def covers(source: frozenset[str], target: frozenset[str]) -> bool:
    if source == target:
        return True
    if not target:  # the no-dimension snapshot has 7 blocks no breakdown holds
        return False
    try:
        validate_roll_up(sorted(source), sorted(target))
    except ClarityError:
        return False
    return True


class FitKind(StrEnum):
    """Why a suggested call's answer is expected to stay under the row cap."""

    REQUESTED = "as requested"
    MEASURED = "measured"
    ASSUMED = "assumed"


@dataclass(frozen=True)
class Fit:
    kind: FitKind
    text: str
    rows: int = 0  # the bound on one block's rows (FIT_ROWS when assumed, 0 when unknown)


@dataclass(frozen=True)
class Asker:
    """A task asking one breakdown: its calls on the busiest day, and its schedule."""

    label: str
    calls: int
    schedule: str


@dataclass(frozen=True)
class Need:
    """One requested breakdown (``table``) and the tasks that ask it."""

    table: str
    dimensions: frozenset[str]
    askers: tuple[Asker, ...]

    @property
    def calls(self) -> int:
        return sum(a.calls for a in self.askers)


@dataclass(frozen=True)
class SuggestedCall:
    """One request of the suggested plan, made ``calls`` times a day, serving ``serves``."""

    dimensions: tuple[str, ...]
    calls: int
    serves: tuple[Need, ...]
    fit: Fit | None = None  # None: not a Clarity request (templated, counted as written)

    @property
    def tables(self) -> list[str]:
        return [n.table for n in self.serves]


def _fit(
    union: frozenset[str], requested: set[frozenset[str]], days: int, rows: RowCounts
) -> Fit | None:
    """How ``union`` fits one answer; ``None`` when it may not (then it is not suggested)."""
    from airflow_provider_clarity.api_facts import SESSION_DIMENSIONS

    bound = rows.estimate(union, days)
    if union in requested:
        measured = f" (measured: at most {bound[1]} rows a block)" if bound else ""
        return Fit(
            FitKind.REQUESTED,
            "a task asks this breakdown already" + measured,
            bound[0] if bound else 0,
        )
    if bound is not None:
        if bound[0] > FIT_ROWS:
            return None
        return Fit(
            FitKind.MEASURED,
            f"at most {bound[0]} rows a block ({bound[1]}), under {FIT_ROWS}",
            bound[0],
        )
    if len(union) == 2 and union <= set(SESSION_DIMENSIONS):
        missing = sorted(union - rows.dimensions)
        return Fit(
            FitKind.ASSUMED,
            f"a pair of session dimensions; no kept answer measured {', '.join(missing)}",
            FIT_ROWS,
        )
    return None


Cover = list[tuple[frozenset[str], list[frozenset[str]]]]


def _greedy(targets: dict[frozenset[str], int], fits: dict[frozenset[str], Fit]) -> Cover:
    candidates = sorted(fits, key=lambda c: (len(c), sorted(c)))
    chosen: Cover = []
    left = set(targets)
    while left:
        best = max(candidates, key=lambda c: (sum(covers(c, t) for t in left), -len(c)))
        served = [t for t in left if covers(best, t)]
        left -= set(served)
        chosen.append((best, served))
    return chosen


def _exact(targets: dict[frozenset[str], int], fits: dict[frozenset[str], Fit]) -> Cover:
    """The cheapest cover, each call serving every breakdown left that it holds: fewest
    calls a day, then fewest dimensions in all (finer answers reach the row cap sooner),
    then the fewest rows expected in all (the most room under the cap)."""
    candidates = sorted(fits, key=lambda c: (len(c), sorted(c)))
    order = sorted(targets, key=lambda t: (len(t), sorted(t)))
    serve = {c: frozenset(i for i, t in enumerate(order) if covers(c, t)) for c in candidates}

    @cache
    def best(left: frozenset[int]) -> tuple[int, int, int, tuple[frozenset[str], ...]]:
        if not left:
            return 0, 0, 0, ()
        first = min(left)
        found: tuple[int, int, int, tuple[frozenset[str], ...]] | None = None
        for c in candidates:
            if first not in serve[c]:
                continue
            taken = left & serve[c]
            calls, dims, rows, rest = best(left - taken)
            here = (
                calls + max(targets[order[i]] for i in taken),
                dims + len(c),
                rows + fits[c].rows,
                (c, *rest),
            )
            if found is None or here[:3] < found[:3]:
                found = here
        assert found is not None  # every target is its own candidate
        return found

    chosen: Cover = []
    left = frozenset(range(len(order)))
    for c in best(left)[3]:
        served = sorted(left & serve[c])
        chosen.append((c, [order[i] for i in served]))
        left -= set(served)
    return chosen


def suggest(
    needs: Iterable[tuple[int, Need]], rows: RowCounts | None = None
) -> list[SuggestedCall]:
    """As few calls as serve every breakdown in ``needs`` (``(numOfDays, Need)``), choosing
    among the requested breakdowns and their unions of two or three (at most
    ``MAX_DIMENSIONS``) whose fit is measured or assumed (see the module docs)."""
    from airflow_provider_clarity.api_facts import MAX_DIMENSIONS, VALID_DIMENSIONS

    rows = rows if rows is not None else RowCounts()
    by_days: dict[int, dict[frozenset[str], Need]] = {}
    for days, need in needs:
        by_days.setdefault(days, {})[need.dimensions] = need
    plan: list[SuggestedCall] = []
    for days in sorted(by_days):
        group = by_days[days]
        targets = {dims: need.calls for dims, need in group.items()}
        requested = set(targets)
        unions = set(requested)
        for _ in range(MAX_DIMENSIONS - 1):  # unions of two, then of three requested ones
            unions |= {u | t for u in unions for t in requested if len(u | t) <= MAX_DIMENSIONS}
        fits = {u: f for u in unions if (f := _fit(u, requested, days, rows)) is not None}
        search = _exact if len(targets) <= EXACT_UP_TO else _greedy
        for source, served in search(targets, fits):
            plan.append(
                SuggestedCall(
                    dimensions=tuple(d for d in VALID_DIMENSIONS if d in source),
                    calls=max(targets[t] for t in served),
                    serves=tuple(group[t] for t in served),
                    fit=fits[source],
                )
            )
    return plan
