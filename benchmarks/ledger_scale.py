"""Ledger reads at scale: one 100,000-record document, and the quota page over 1,000 projects.

``.venv/bin/python benchmarks/ledger_scale.py`` (about 1-2 min on 2 cores). Every figure is
a ratio to a baseline timed in the same run, side by side:

* ``json.loads`` of the same stored text: the least any reader of the Variable pays.
* The window arithmetic this provider had before issue 20 (``_OldArithmetic`` below, copied
  from it: a recount of the whole window at every moment availability may change), on the
  same documents, at sizes it can finish (it is quadratic with a rolling window).

Prints a table and writes the "Ledger scale" section of ``benchmarks/results.md``
(``--no-write`` leaves the file alone). Nothing here is a test; ``make test`` asserts no time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sections import LEDGER_SCALE  # noqa: E402

from airflow_provider_clarity.connection.settings import QuotaSettings, Window  # noqa: E402
from airflow_provider_clarity.exceptions import ClarityQuotaExceededError  # noqa: E402
from airflow_provider_clarity.plugins import page_data, quota_page  # noqa: E402
from airflow_provider_clarity.quota import MemoryLedgerStore, QuotaLedger, ledger_key  # noqa: E402
from airflow_provider_clarity.quota.records import LedgerState  # noqa: E402
from airflow_provider_clarity.windows.utc import utc_iso  # noqa: E402

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
TARGET_SECONDS = 1.0


# ------------------------------------------------------------------ the old arithmetic


class _OldArithmetic(QuotaLedger):
    """The ledger with its window arithmetic as it was before issue 20 (the baseline)."""

    def _available_at(self, state: LedgerState, moment: datetime, used: int | None = None) -> int:
        if state.exhausted_until is not None and moment < state.exhausted_until:
            return 0
        if state.degraded_until is not None and moment < state.degraded_until:
            return 0
        used = sum(1 for r in state.calls if self._counts_at(r, moment))
        return max(0, self.capacity - used)

    def _next_reset(self, state: LedgerState, now: datetime, calls: int) -> datetime | None:
        if calls > self.capacity:
            return None
        if self._available_at(state, now) >= calls:
            return now
        settings = self.settings
        candidates: set[datetime] = set()
        for mark in (state.exhausted_until, state.degraded_until):
            if mark is not None:
                candidates.add(mark)
        if settings.window is Window.ROLLING:
            candidates.update(
                r.last_seen + settings.margin + settings.window_length for r in state.calls
            )
        else:
            first = settings.next_day_start(now)
            candidates.update({first, settings.next_day_start(first)})
        for moment in sorted(c for c in candidates if c > now):
            if self._available_at(state, moment) >= calls:
                return moment
        return None

    def _status(self, state: LedgerState, now: datetime) -> Any:
        from airflow_provider_clarity.quota.report import QuotaStatus

        return QuotaStatus(
            settings=self.settings,
            key=self.key,
            now=now,
            counted=tuple(r for r in state.calls if self._counts_at(r, now)),
            earlier=tuple(r for r in state.calls if not self._counts_at(r, now)),
            remaining=self._available_at(state, now),
            next_reset=self._next_reset(state, now, 1),
            exhausted_until=state.exhausted_until,
            degraded_until=state.degraded_until,
        )


# ------------------------------------------------------------------ documents


def _settings(window: str) -> QuotaSettings:
    return QuotaSettings("bench-project", window=Window(window))


def ledger_document(records: int, window: str, *, outcome: str = "200") -> dict[str, Any]:
    """``records`` calls spread evenly over the 47 h before ``NOW`` (all kept 48 h): with
    ``"200"`` the window is over-full (a refusal: the worst case of the next reset), with
    ``"401"`` nothing counts (the call is recorded and the document pruned)."""
    step = timedelta(hours=47) / records
    start = NOW - timedelta(hours=47)
    calls = []
    for n in range(records):
        at = start + n * step
        calls.append(
            {
                "id": f"{n:016x}",
                "at": utc_iso(at),
                "done_at": utc_iso(at + timedelta(seconds=1)),
                "caller": f"dag_{n % 50}/export/scheduled__2026-03-0{1 + n % 3}T00:00:00+00:00/-1",
                "outcome": outcome,
                "request": "numOfDays=1 dimensions=OS",
            }
        )
    return {
        "version": 2,
        "project_id": "bench-project",
        "settings": _settings(window).to_json(),
        "exhausted_until": None,
        "degraded_until": None,
        "waiting": {},
        "calls": calls,
    }


def page_variables(projects: int, calls: int) -> list[tuple[str, str]]:
    """``projects`` ledger Variables with ``calls`` calls each today, as the page reads them."""
    variables = []
    for p in range(projects):
        project_id = f"project-{p:04d}"
        document = ledger_document(calls, "utc_day")
        document["project_id"] = project_id
        for n, call in enumerate(document["calls"]):  # all today, spread over the morning
            at = NOW - timedelta(hours=11) + n * timedelta(minutes=30)
            call["at"], call["done_at"] = utc_iso(at), utc_iso(at + timedelta(seconds=2))
        variables.append((ledger_key(project_id), json.dumps(document)))
    return variables


# ------------------------------------------------------------------ timing


def _time(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def paired(
    name: str,
    clarity: Callable[[], Any],
    baseline: Callable[[], Any],
    reps: int,
    base_name: str,
    *,
    target: bool = True,
) -> dict[str, Any]:
    """Time ``clarity`` and ``baseline`` side by side ``reps`` times; the ratio of each pair."""
    ours, theirs, ratios = [], [], []
    for _ in range(reps):
        b = _time(baseline)
        c = _time(clarity)
        ours.append(c)
        theirs.append(b)
        ratios.append(c / b)
    return {
        "name": name,
        "clarity": ours,
        "baseline": theirs,
        "ratios": ratios,
        "baseline_name": base_name,
        "fn": clarity,
        "target": target,
    }


def _refuse(ledger: QuotaLedger) -> None:
    try:
        ledger.before_call(None)
    except ClarityQuotaExceededError:
        return
    raise AssertionError("expected a refusal from an over-full window")


def _profile(fn: Callable[[], Any]) -> list[str]:
    profiler = cProfile.Profile()
    profiler.enable()
    fn()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(14)
    return [line for line in out.getvalue().splitlines() if line.strip()][:30]


def run(records: int, reps: int, old_sizes: list[int]) -> tuple[list[dict[str, Any]], list[str]]:
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for window in ("rolling", "utc_day"):
        full = ledger_document(records, window)
        text = json.dumps(full)
        notes.append(f"{window}: the {records:,}-record document is {len(text) / 1e6:.1f} MB")

        def status(document: dict[str, Any] = full) -> None:
            QuotaLedger.from_document(document, clock=lambda: NOW).status()

        rows.append(
            paired(
                f"{records:,} records, {window}: from_document(doc).status()",
                status,
                lambda text=text: json.loads(text),
                reps,
                "json.loads of the document",
            )
        )

        full_store = MemoryLedgerStore(full)  # a refusal leaves it as it is

        def refuse(store: MemoryLedgerStore = full_store, window: str = window) -> None:
            ledger = QuotaLedger.from_settings(_settings(window), store=store, clock=lambda: NOW)
            _refuse(ledger)

        rows.append(
            paired(
                f"{records:,} records, {window}: before_call, window over-full (refused)",
                refuse,
                full_store.load,
                reps,
                "loading the stored document (json.loads)",
            )
        )
        # Nothing counts in this one: the call is recorded and the document pruned, so each
        # run needs a fresh store (made before the clock starts).
        idle = ledger_document(records, window, outcome="401")
        stores = [MemoryLedgerStore(idle) for _ in range(reps)]
        idle_store = MemoryLedgerStore(idle)

        def record(window: str = window, stores: list[MemoryLedgerStore] = stores) -> None:
            store = stores.pop()
            ledger = QuotaLedger.from_settings(_settings(window), store=store, clock=lambda: NOW)
            ledger.before_call(None)
            kept = len((store.data or {})["calls"])
            assert kept <= 1001, kept

        rows.append(
            paired(
                f"{records:,} records, {window}: before_call recorded, document pruned",
                record,
                idle_store.load,
                reps,
                "loading the stored document (json.loads)",
            )
        )
        for size in old_sizes:
            small = ledger_document(size, window)

            def new(document: dict[str, Any] = small) -> None:
                QuotaLedger.from_document(document, clock=lambda: NOW).status()

            def old(document: dict[str, Any] = small, window: str = window) -> None:
                store = MemoryLedgerStore(document)
                settings = _settings(window)
                _OldArithmetic.from_settings(settings, store=store, clock=lambda: NOW).status()

            rows.append(
                paired(
                    f"{size:,} records, {window}: status(), this provider vs before issue 20",
                    new,
                    old,
                    max(1, reps // 2),
                    "the arithmetic before issue 20",
                    target=False,
                )
            )

    variables = page_variables(1000, 10)
    every_text = [value for _, value in variables]

    def loads_all() -> None:
        for value in every_text:
            json.loads(value)

    def first_page() -> None:
        quota_page.render(page_data.report(variables, NOW))

    def every_page() -> None:
        pages = page_data.report(variables, NOW).get("pages", 1)
        for page in range(1, int(pages) + 1):
            quota_page.render(page_data.report(variables, NOW, page=page))

    rows.append(
        paired(
            "quota page, 1,000 projects x 10 calls: report() + render(), first page",
            first_page,
            loads_all,
            reps,
            "json.loads of the 1,000 Variables",
        )
    )
    rows.append(
        paired(
            "quota page, 1,000 projects x 10 calls: all 20 pages, 20 requests in a row",
            every_page,
            loads_all,
            max(1, reps // 2),
            "json.loads of the 1,000 Variables",
            target=False,
        )
    )
    data = page_data.report(variables, NOW)
    html = quota_page.render(data)
    notes.append(
        f"quota page: {len(data['projects'])} projects on the first page of "
        f"{data.get('pages', 1)}, {len(html) / 1e3:.0f} kB of HTML"
    )
    return rows, notes


# ------------------------------------------------------------------ output


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds >= 0.01 else f"{seconds * 1000:.2f} ms"


def _spread(values: list[float], fmt: Callable[[float], str]) -> str:
    return f"{fmt(statistics.median(values))} [{fmt(min(values))}-{fmt(max(values))}]"


def table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| Measure | Clarity provider | Baseline | Ratio | Target (< 1 s) |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        median = statistics.median(row["clarity"])
        target = "met" if median < TARGET_SECONDS else "**missed**"
        target = target if row["target"] else "-"
        lines.append(
            f"| {row['name']} | {_spread(row['clarity'], _ms)} | "
            f"{_spread(row['baseline'], _ms)} ({row['baseline_name']}) | "
            f"{_spread(row['ratios'], lambda r: f'{r:.2f}x')} | {target} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--old-sizes", default="500,1000,2000", help="sizes for the old code")
    parser.add_argument("--no-write", action="store_true", help="leave results.md alone")
    args = parser.parse_args(argv)
    old_sizes = [int(s) for s in args.old_sizes.split(",") if s]
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    started = time.perf_counter()
    rows, notes = run(args.records, args.reps, old_sizes)
    elapsed = time.perf_counter() - started
    load_end = " ".join(f"{x:.2f}" for x in os.getloadavg())
    missed = [r for r in rows if r["target"] and statistics.median(r["clarity"]) >= TARGET_SECONDS]
    lines = [
        "## Ledger scale",
        "",
        f"Written by `.venv/bin/python benchmarks/ledger_scale.py` on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC in {elapsed:.0f} s "
        f"({os.cpu_count()} CPUs, Python {platform.python_version()}; load average "
        f"{load} at start, {load_end} at end). Each figure is median [min-max] of "
        f"{args.reps} runs (the old arithmetic: fewer); each ratio pairs two runs taken side "
        "by side.",
        "",
        *table(rows),
        "",
        *[f"- {note}" for note in notes],
        f"- targets missed: {', '.join(r['name'] for r in missed) or 'none'}",
    ]
    if missed:
        worst = max(missed, key=lambda r: statistics.median(r["clarity"]))
        lines += ["", f"Profile of the slowest miss ({worst['name']}):", "", "```"]
        lines += _profile(worst["fn"])
        lines += ["```"]
    print("\n".join(lines))
    if not args.no_write:
        LEDGER_SCALE.write(lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
