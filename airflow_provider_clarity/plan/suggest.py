"""A plan with fewer calls: as few calls as cover every breakdown, the rest derived."""

from __future__ import annotations

from airflow_provider_clarity.derive import validate_roll_up
from airflow_provider_clarity.exceptions import ClarityError


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


def cover(
    targets: dict[frozenset[str], int], candidates: set[frozenset[str]]
) -> list[tuple[frozenset[str], list[frozenset[str]]]]:
    """Greedy set cover: the candidate serving most breakdowns first, fewer dimensions on a tie."""
    chosen: list[tuple[frozenset[str], list[frozenset[str]]]] = []
    left = set(targets)
    while left:
        best = max(
            sorted(candidates, key=sorted),
            key=lambda c: (sum(covers(c, t) for t in left), -len(c)),
        )
        served = sorted((t for t in left if covers(best, t)), key=lambda t: (len(t), sorted(t)))
        left -= set(served)
        chosen.append((best, served))
    return chosen


def suggest(
    needs: dict[tuple[int, frozenset[str]], int],
) -> list[tuple[tuple[str, ...], int, list[str]]]:
    """As few calls as serve every breakdown. Two greedy covers: from the requested
    breakdowns alone, and also from unions of two that fit one call (at most 3 dimensions);
    the first wins a tie, since finer answers reach Clarity's 1000-row cap sooner."""
    from airflow_provider_clarity.api_facts import MAX_DIMENSIONS, VALID_DIMENSIONS

    def name(dims: frozenset[str]) -> str:
        return ",".join(d for d in VALID_DIMENSIONS if d in dims) or "no dimension"

    plan: list[tuple[tuple[str, ...], int, list[str]]] = []
    for days in sorted({d for d, _ in needs}):
        targets = {dims: calls for (d, dims), calls in needs.items() if d == days}
        unions = {a | b for a in targets for b in targets if len(a | b) <= MAX_DIMENSIONS}
        covers = [cover(targets, set(targets)), cover(targets, set(targets) | unions)]
        cost = [sum(max(targets[t] for t in served) for _, served in c) for c in covers]
        suffix = f" ({days} days)" if days > 1 else ""
        for source, served in covers[0] if cost[0] <= cost[1] else covers[1]:
            order = tuple(d for d in VALID_DIMENSIONS if d in source)
            calls = max(targets[t] for t in served)
            plan.append((order, calls, [name(t) + suffix for t in served]))
    return plan
