"""``make bench``: what the provider costs, each figure a ratio against a baseline of the same run.

1. DAG parse cost: a DAG file with five Clarity tasks against the same DAG written with the
   http provider's ``HttpOperator`` (wall time, modules imported, ``python -X importtime``).
2. Export overhead: ``ClarityExportOperator.execute`` against a running Clarity emulator,
   against the hand-written task in ``baseline.py`` (time, peak RSS).
3. Normalisation: ``to_dataframe`` / ``to_records`` against ``json_normalize`` plus naive
   coercion.
4. Many projects: N projects x 1 export in a row through the one ``clarity_api`` slot, at
   two emulator latencies: slot-hold time per export against the bare HTTP call.

Prints a table and writes ``benchmarks/results.md``. Every figure is median [min-max] over
repetitions; every ratio is the median [min-max] of ratios paired within one process or
one round, so the drift of a busy machine hits both sides of each pair alike.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from probes import CONN_ID, RESULT_MARK, SIZES
from sections import OWNED

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CLARITY_DAG = HERE / "dags" / "clarity_five_tasks.py"
HTTP_DAG = HERE / "dags" / "http_five_tasks.py"
RESULTS = HERE / "results.md"
PROJECT = "bench"
UNLIMITED = 1_000_000  # daily calls, for the emulator and the connection: never the limit here

# The provider modules a Clarity DAG imports, and the baseline's, for -X importtime.
CLARITY_MODULES = (
    "airflow_provider_clarity.operators.export",
    "airflow_provider_clarity.sensors.quota",
)
HTTP_MODULES = ("airflow.providers.http.operators.http",)


@dataclass(frozen=True)
class Settings:
    """How many repetitions of each measurement."""

    parse_processes: int  # fresh processes importing airflow.sdk
    parse_rounds: int  # forked parses of each DAG file per process
    importtime_runs: int  # fresh `python -X importtime` processes per side
    export_processes: int  # fresh processes per side and size
    export_warm: int  # exports after the first, per process
    normalize_reps: int  # calls of each normaliser
    projects: int  # projects (one export each) per latency


FULL = Settings(3, 6, 2, 3, 5, 15, 10)
QUICK = Settings(2, 3, 1, 1, 3, 5, 4)
# Emulator answer delays for the many-projects benchmark (Clarity publishes none).
PROJECT_LATENCIES = (0.5, 4.0)
# The hook's worst case for one export: 3 attempts (max_retries=2) timing out at 60 s each,
# plus 2 + 4 s of backoff.
WORST_EXPORT_SECONDS = 3 * 60.0 + 2.0 + 4.0
PROJECTS_PER_DAY = 100


METHOD = """
## How each figure is measured

**1. DAG parse.** `dags/clarity_five_tasks.py` (four `ClarityExportOperator` tasks with a
templated `file://` destination and one `ClarityQuotaSensor`) against
`dags/http_five_tasks.py` (the same five Clarity calls as `HttpOperator` tasks). Each fresh
interpreter imports `airflow.sdk` (timed), then, round after round in alternating order,
forks one child per DAG file; the child runs the file with `runpy` and counts the modules
it added to `sys.modules`. On Linux, Airflow's DAG processor forks its parsing children the
same way from a process that has `airflow.sdk` loaded, so "DAG file run" is what every
parse pays, every 30 s, on every DAG processor. "airflow.sdk import + DAG file run" adds
that process's own `airflow.sdk` import time: what a fresh `python dag.py` pays. DAG
serialisation, the same for both, is not included. `-X importtime` runs in its own fresh
interpreters: `import airflow.sdk`, then the provider's modules; the sum of the top-level
cumulative times after `airflow.sdk` is what the provider's modules add (importtime's own
overhead inflates every figure alike).

**2. Export.** A Clarity emulator (a real HTTP server on 127.0.0.1, running in the
benchmark's own process; it builds each answer on request, so both sides wait for it
alike) answers either the no-dimension snapshot (16 blocks) or a `URL` breakdown (9 blocks
of 1000 rows, about 2 MB of JSON). Each sample is a fresh interpreter that first imports
what both sides need on a worker (`airflow.sdk`, `pandas`, `pyarrow`, `pyarrow.parquet`,
`requests`) plus its own module (for Clarity the operator module, which a worker has
loaded after parsing the DAG). It then runs one export ("first export": what a task on a
fresh worker process pays, lazy imports included) and a few more ("later exports"), each
into a fresh folder so the kept raw snapshot is never reused.

- Clarity: `ClarityExportOperator(dimensions=..., destination="file://<tmp>/table.parquet")`
  `.execute(context)` with a minimal context (ti, outlet_events, data interval), as
  `tests/operators/test_export.py` does: connection lookup (from an environment
  variable), request validation, quota-ledger check and record, the HTTP call, the raw
  snapshot written beside the output (temp file, fsync, rename), typed normalisation,
  Parquet written the same way, asset event. The quota ledger uses its in-memory store;
  on a real worker it is an Airflow Variable read and written through the Execution API,
  which is not part of this figure.
- Baseline: `baseline.export_task`: the same connection lookup, `requests.get` with the
  bearer header, `json.dump` to a file, `pandas.json_normalize`, `pd.to_numeric` on the
  count columns (without it `to_parquet` fails on Clarity's mix of string and integer
  counts), `to_parquet`.
- Memory: "peak RSS of the process" is `ru_maxrss` after the first export: the
  high-water mark of the whole worker process, imports included. "Peak RSS above the RSS
  before the export" is that minus the RSS read from `/proc/self/statm` just before the
  export: what the export itself needs at its worst moment. Later exports are not used for
  memory (the high-water mark only moves up).

**3. Normalisation.** One interpreter, the 9 x 1000 `URL` payload in memory (from
`ClarityEmulator.payload`, no HTTP), one warm-up call of each, then the three in rotating
order with `gc.collect()` before each call. `to_dataframe` and `to_records` also add the
`exported_at` and `num_of_days` columns and validate every value; the baseline is
`baseline.naive_dataframe` (`json_normalize` + `to_numeric` on the count columns).

**4. Many projects.** The emulator (in the benchmark's process) delays every answer by a
fixed latency (its `slow` fault). One fresh interpreter runs N exports in a row, one per
project (connections `clarity_p0` .. from environment variables), each with its own
in-memory ledger: what the single 1-slot `clarity_api` pool does with N projects' daily
exports, since it runs one at a time. "Slot-hold time" is `execute()` from start to end
(ledger, call, raw snapshot, normalisation, Parquet). The baseline, paired with each export,
is a bare `requests.get` of the same project at the same latency: the part no client can
avoid. Under a real scheduler each task also holds the slot while its worker process
starts (not included here). The verdict for 100 projects a day uses the median hold and
the hook's worst case per export (3 attempts timing out at 60 s, plus backoff).

**4. Clarity calls spent.** Counts, not timings: the emulator counts the calls it
answers, so one run is exact. "8 session dimensions + 4 pairs" and "3 DAGs asking Device"
run each plan's exports (and derives) as written today, every task its own call
(`max_snapshot_age=0`, no derive), against the same plan with sharing and derived
breakdowns. "The plan for 8 single session dimensions" runs the `plan` command's code
(`plan_dags` with the kept answers' row counts, as `python -m airflow_provider_clarity.plan`
does) on a DAG folder of 8 `@daily` single-dimension exports: once before any answer is
kept (today's suggestion: pairs, their fit assumed), once after the DAG ran as written
(8 calls; its 8 answers listed in the shared-snapshot index, in memory here). Each
suggestion is then run for real, one export per suggested call and a
`ClarityDeriveOperator` writing its single tables, and the calls and tables are counted.

Timings come from a shared 2-core machine; the load average above says how busy it was.
Pairing cancels most of the drift, but ranges widen when the load is high.
"""


# ------------------------------------------------------------------ figures


@dataclass
class Row:
    """One line of the table: a measure of each side, their paired ratios, the target."""

    section: str
    measure: str
    clarity: list[float]
    baseline: list[float]
    ratios: list[float]
    unit: str
    target: float | None = None  # the ratio must be <= this
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.ratio <= self.target


def _digits(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def spread(values: Sequence[float], unit: str) -> str:
    """``median [min-max] unit``; seconds are shown in ms."""
    scale, shown = (1000.0, "ms") if unit == "s" else (1.0, unit)
    low, mid, high = (scale * v for v in (min(values), statistics.median(values), max(values)))
    text = _digits(mid) if low == high else f"{_digits(mid)} [{_digits(low)}-{_digits(high)}]"
    return f"{text} {shown}".rstrip()


def ratio_text(row: Row) -> str:
    low, high = min(row.ratios), max(row.ratios)
    if round(low, 2) == round(high, 2):
        return f"{row.ratio:.2f}x"
    return f"{row.ratio:.2f}x [{low:.2f}-{high:.2f}]"


def target_text(row: Row) -> str:
    if row.target is None:
        return "-"
    return f"<= {row.target:.2f}x"


def met_text(row: Row) -> str:
    return {None: "", True: "yes", False: "**no**"}[row.met]


def compare(
    section: str,
    measure: str,
    clarity: list[float],
    baseline: list[float],
    unit: str,
    target: float | None = None,
) -> Row:
    """A row whose samples are paired in order (same process, round or position)."""
    ratios = [mine / theirs for mine, theirs in zip(clarity, baseline, strict=True)]
    return Row(section, measure, clarity, baseline, ratios, unit, target)


# ------------------------------------------------------------------ subprocesses


def _progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_probe(args: Sequence[str], env: dict[str, str]) -> dict[str, Any]:
    """Run ``probes.py ARGS`` in a fresh interpreter and return its result."""
    completed = subprocess.run(
        [sys.executable, str(HERE / "probes.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
        check=False,
    )
    for line in reversed(completed.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            result: dict[str, Any] = json.loads(line[len(RESULT_MARK) :])
            return result
    raise RuntimeError(
        f"probe {' '.join(args)} failed (exit {completed.returncode}):\n"
        f"{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
    )


@contextmanager
def airflow_env() -> Iterator[dict[str, str]]:
    """A throwaway AIRFLOW_HOME for every subprocess (nothing here needs a metadata DB)."""
    with tempfile.TemporaryDirectory(prefix="clarity-bench-airflow-home-") as home:
        env = dict(os.environ)
        env.update(
            {
                "AIRFLOW_HOME": home,
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_FOLDER": str(HERE / "dags"),
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
            }
        )
        yield env


# ------------------------------------------------------------------ 1. parse cost


def bench_parse(settings: Settings, env: dict[str, str]) -> list[Row]:
    seconds: dict[str, list[float]] = {"clarity": [], "http": []}
    with_sdk: dict[str, list[float]] = {"clarity": [], "http": []}
    modules: dict[str, list[float]] = {"clarity": [], "http": []}
    all_modules: dict[str, list[float]] = {"clarity": [], "http": []}
    sdk_seconds: list[float] = []
    heavy: set[str] = set()
    tasks: set[int] = set()
    files = {"clarity": str(CLARITY_DAG), "http": str(HTTP_DAG)}
    for number in range(settings.parse_processes):
        _progress(f"parse: process {number + 1}/{settings.parse_processes}")
        result = run_probe(["parse", str(settings.parse_rounds), *files.values()], env)
        sdk_seconds.append(result["sdk_seconds"])
        for side, path in files.items():
            for run in result["runs"][path]:
                seconds[side].append(run["seconds"])
                with_sdk[side].append(result["sdk_seconds"] + run["seconds"])
                modules[side].append(run["modules"])
                all_modules[side].append(result["sdk_modules"] + run["modules"])
                tasks.add(run["tasks"])
                if side == "clarity":
                    heavy.update(run["heavy_new"])
    if tasks != {5}:
        raise RuntimeError(f"the benchmark DAGs should have 5 tasks each, found {tasks}")
    section = "1. DAG parse (5 tasks)"
    rows = [
        compare(
            section,
            "DAG file run, airflow.sdk already imported",
            seconds["clarity"],
            seconds["http"],
            "s",
            1.05,
        ),
        compare(
            section,
            "airflow.sdk import + DAG file run",
            with_sdk["clarity"],
            with_sdk["http"],
            "s",
            1.05,
        ),
        compare(
            section,
            "modules imported by the DAG file",
            modules["clarity"],
            modules["http"],
            "",
            1.05,
        ),
        compare(
            section,
            "modules loaded in all (airflow.sdk + DAG file)",
            all_modules["clarity"],
            all_modules["http"],
            "",
        ),
    ]
    rows[0].notes.append(f"airflow.sdk import alone: {spread(sdk_seconds, 's')}")
    rows[2].notes.append(
        "pandas, pyarrow, numpy, fsspec backends, cloud SDKs, OpenLineage or the emulator "
        f"imported by the Clarity DAG: {', '.join(sorted(heavy)) or 'none'}"
    )
    return rows


_IMPORTTIME = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")
_MARK = "@@MARK"


def importtime(modules: Sequence[str], env: dict[str, str]) -> tuple[float, float, dict[str, int]]:
    """``-X importtime`` of airflow.sdk, then of ``modules`` on top of it.

    Returns (airflow.sdk cumulative s, modules' cumulative s, cumulative µs of every module
    imported after airflow.sdk).
    """
    code = f"import sys\nimport airflow.sdk\nsys.stderr.write('{_MARK}\\n')\n" + "".join(
        f"import {name}\n" for name in modules
    )
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
        check=True,
    )
    before, after = 0, 0
    seen_mark = False
    cumulative: dict[str, int] = {}
    for line in completed.stderr.splitlines():
        if line.strip() == _MARK:
            seen_mark = True
            continue
        match = _IMPORTTIME.match(line)
        if match is None:
            continue
        micros, depth, name = int(match[2]), len(match[3]) - 1, match[4]
        if seen_mark:
            cumulative[name] = micros
        if depth == 0:  # a top-level import: its cumulative covers everything under it
            if seen_mark:
                after += micros
            else:
                before += micros
    return before / 1e6, after / 1e6, cumulative


def bench_importtime(settings: Settings, env: dict[str, str]) -> tuple[list[Row], list[str]]:
    """``-X importtime`` rows, and the imports only the Clarity side pays, biggest first."""
    sdk: dict[str, list[float]] = {"clarity": [], "http": []}
    added: dict[str, list[float]] = {"clarity": [], "http": []}
    operator_share: list[float] = []
    cumulative: dict[str, dict[str, int]] = {}
    for number in range(settings.importtime_runs):
        _progress(f"importtime: run {number + 1}/{settings.importtime_runs}")
        for side, modules in (("clarity", CLARITY_MODULES), ("http", HTTP_MODULES)):
            sdk_seconds, added_seconds, cumulative[side] = importtime(modules, env)
            sdk[side].append(sdk_seconds)
            added[side].append(added_seconds)
        operator = cumulative["clarity"][CLARITY_MODULES[0]] / 1e6
        operator_share.append(operator / sdk["clarity"][-1])
    section = "1. DAG parse (5 tasks)"
    rows = [
        compare(section, "-X importtime: airflow.sdk", sdk["clarity"], sdk["http"], "s"),
        compare(
            section,
            "-X importtime: the provider's modules after airflow.sdk",
            added["clarity"],
            added["http"],
            "s",
        ),
    ]
    rows[1].notes.append(
        f"Clarity: {', '.join(CLARITY_MODULES)}; baseline: {', '.join(HTTP_MODULES)}. "
        f"{CLARITY_MODULES[0]} alone costs "
        f"{statistics.median(operator_share):.0%} of airflow.sdk's import time."
    )
    only_clarity = {
        name: micros
        for name, micros in cumulative["clarity"].items()
        if name not in cumulative["http"]
    }
    top = sorted(only_clarity.items(), key=lambda item: -item[1])[:12]
    profile = ["-X importtime cumulative (nested: parents include children), one run:"]
    profile += [f"{micros / 1000:8.1f} ms  {name}" for name, micros in top]
    return rows, profile


# ------------------------------------------------------------------ 2. export overhead


def bench_export(settings: Settings, env: dict[str, str]) -> tuple[list[Row], list[str]]:
    """The export rows, and a profile of the slowest first export when a time target is missed."""
    from airflow_provider_clarity.testing.emulator import ClarityEmulator

    rows: list[Row] = []
    profile: list[str] = []
    with ClarityEmulator(daily_limit=UNLIMITED) as emulator:
        emulator.configure_project(PROJECT, url_count=1200, daily_limit=UNLIMITED)
        token = emulator.issue_token(PROJECT)
        env = dict(env)
        env[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = emulator.airflow_conn_json(
            token, project_id=PROJECT, daily_limit=UNLIMITED
        )
        results: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for number in range(settings.export_processes):
            for size in SIZES:
                sides = ("clarity", "baseline") if number % 2 == 0 else ("baseline", "clarity")
                for side in sides:
                    _progress(
                        f"export: {size} {side} process {number + 1}/{settings.export_processes}"
                    )
                    result = run_probe(["export", side, size, str(settings.export_warm)], env)
                    results.setdefault((side, size), []).append(result)
        rows = _export_rows(results)
        slow = [row for row in rows if row.unit == "s" and row.met is False]
        if slow:
            worst = max(slow, key=lambda row: row.ratio)
            size = "url" if "URL" in worst.section else "snapshot"
            _progress(f"export: profiling the Clarity {size} export")
            result = run_probe(["export", "clarity", size, "0", "--profile"], env)
            profile = [f"{worst.section}, {worst.measure}:", *result["profile"].splitlines()]
    return rows, profile


def _export_rows(results: dict[tuple[str, str], list[dict[str, Any]]]) -> list[Row]:
    rows: list[Row] = []
    titles = {"snapshot": "16-block snapshot", "url": "9 x 1000-row URL breakdown"}
    measures = (
        # (measure, result key, scale, unit, target)
        ("time, first export in a fresh process", "cold_seconds", 1.0, "s", 1.5),
        ("time, later exports in the same process", "warm_seconds", 1.0, "s", 1.5),
        ("peak RSS of the process", "peak_kb", 1 / 1024, "MiB", 1.2),
        ("peak RSS above the RSS before the export", "peak_delta_kb", 1 / 1024, "MiB", 1.2),
    )
    for size in SIZES:
        mine, theirs = results[("clarity", size)], results[("baseline", size)]
        rows_seen = sorted({r["rows"] for r in mine + theirs})
        section = f"2. Export: {titles[size]} ({'/'.join(map(str, rows_seen))} rows)"
        for measure, key, scale, unit, target in measures:
            rows.append(
                compare(
                    section,
                    measure,
                    [scale * value for r in mine for value in _as_list(r[key])],
                    [scale * value for r in theirs for value in _as_list(r[key])],
                    unit,
                    target,
                )
            )
    return rows


def _as_list(value: Any) -> list[float]:
    return list(value) if isinstance(value, list) else [value]


# ------------------------------------------------------------------ 3. normalisation


def bench_normalize(settings: Settings, env: dict[str, str]) -> list[Row]:
    _progress("normalize")
    result = run_probe(["normalize", str(settings.normalize_reps)], env)
    times = result["times"]
    rows_seen = sorted(set(result["rows"].values()))
    section = f"3. Normalise the 9 x 1000 payload ({'/'.join(map(str, rows_seen))} rows)"
    naive = times["naive"]
    return [
        compare(
            section,
            "to_dataframe vs json_normalize + to_numeric",
            times["to_dataframe"],
            naive,
            "s",
            1.0,
        ),
        compare(
            section,
            "to_records vs json_normalize + to_numeric",
            times["to_records"],
            naive,
            "s",
            1.0,
        ),
    ]


# ------------------------------------------------------------------ 4. calls per table


def bench_calls(env: dict[str, str]) -> list[Row]:
    """Clarity calls for two plans, as written today and with sharing + derived breakdowns.

    Counts, not timings: one run is exact. The baseline is the same plan with every task
    spending its own call (``max_snapshot_age=0``, no derive), as every other client does.
    """
    _progress("calls: 12 tables, and 3 DAGs asking Device")
    result = run_probe(["calls"], env)
    rows: list[Row] = []
    cases = (
        ("plan", "the 8 session dimensions + 4 pairs (12 tables)", 4 / 12),
        ("three", "3 DAGs asking Device within max_snapshot_age", 1 / 3),
    )
    for key, measure, target in cases:
        mine, theirs = result[f"{key}_clarity"], result[f"{key}_baseline"]
        row = compare(
            "4. Clarity calls spent",
            measure,
            [mine["calls"]],
            [theirs["calls"]],
            "calls",
            round(target, 2) + 0.005,
        )
        row.notes.append(
            f"tables delivered per call: {mine['tables'] / mine['calls']:.2f} against "
            f"{theirs['tables'] / theirs['calls']:.2f} ({mine['tables']} and {theirs['tables']} "
            "tables written)"
        )
        rows.append(row)
    _progress("calls: the plan's suggestion for 8 single dimensions, before and after rows kept")
    plan = run_probe(["plan"], env)
    mine, theirs = plan["clarity"], plan["baseline"]
    row = compare(
        "4. Clarity calls spent",
        "the plan for 8 single session dimensions (8 tables)",
        [mine["calls"]],
        [theirs["calls"]],
        "calls",
        round(3 / 4, 2) + 0.005,
    )
    row.notes.append(
        f"as written: {plan['as_written']} calls; the plan with no kept answer (pairs, fit "
        f"assumed): {theirs['suggested']} suggested, {theirs['calls']} spent, "
        f"{theirs['tables']} tables ({'; '.join(theirs['lines'])}); after the DAG ran once "
        f"({plan['first_day_calls']} calls, 8 answers kept): {mine['suggested']} suggested, "
        f"{mine['calls']} spent, {mine['tables']} tables derived ({'; '.join(mine['lines'])})"
    )
    rows.append(row)
    return rows


# ------------------------------------------------------------------ report


# ------------------------------------------------------------------ 4. many projects


def bench_projects(settings: Settings, env: dict[str, str]) -> list[Row]:
    from airflow_provider_clarity.testing.emulator import ClarityEmulator

    rows: list[Row] = []
    for latency in PROJECT_LATENCIES:
        with ClarityEmulator(daily_limit=UNLIMITED) as emulator:
            emulator.inject_fault("slow", delay=latency, permanent=True)
            probe_env = dict(env)
            for index in range(settings.projects):
                project = f"bench-p{index}"
                probe_env[f"AIRFLOW_CONN_CLARITY_P{index}"] = emulator.airflow_conn_json(
                    emulator.issue_token(project), project_id=project, daily_limit=UNLIMITED
                )
            _progress(f"projects: {settings.projects} x 1 export at {latency:g} s latency")
            result = run_probe(["projects", str(settings.projects)], probe_env)
        section = (
            f"4. Many projects: {result['projects']} projects x 1 export through one slot, "
            f"answers after {latency:g} s"
        )
        row = compare(section, "slot-hold time per export", result["holds"], result["calls"], "s")
        hold = statistics.median(result["holds"])
        overhead = hold - statistics.median(result["calls"])
        day = 86400.0
        row.notes.append(
            f"at {latency:g} s latency: {result['projects']} exports took "
            f"{result['wall_seconds']:.1f} s of wall time in a row (both sides); a median "
            f"export holds the slot {hold:.2f} s ({overhead * 1000:.0f} ms beyond the bare "
            f"call), so {PROJECTS_PER_DAY} projects hold it {PROJECTS_PER_DAY * hold / 60:.1f} "
            f"min a day and one slot fits {day / hold:.0f} exports a day"
        )
        rows.append(row)
    worst = PROJECTS_PER_DAY * (WORST_EXPORT_SECONDS + overhead)
    rows[-1].notes.append(
        f"worst case, every export timing out {3}x ({WORST_EXPORT_SECONDS:.0f} s each): "
        f"{PROJECTS_PER_DAY} projects hold the slot {worst / 3600:.1f} h a day, so the last "
        f"of {PROJECTS_PER_DAY} exports scheduled together starts {worst / 3600:.1f} h late"
    )
    return rows


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {
        "CPU": f"{cpu}, {usable} cores usable ({os.cpu_count()} online)",
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "Versions": ", ".join(
            f"{name} {version(name)}"
            for name in (
                "apache-airflow",
                "apache-airflow-providers-http",
                "pandas",
                "pyarrow",
                "numpy",
                "requests",
                "airflow-provider-clarity",
            )
        ),
    }


def table(rows: list[Row]) -> list[str]:
    lines = [
        "| Measure | Clarity provider | Baseline | Ratio | Target | Met |",
        "|---|---|---|---|---|---|",
    ]
    section = None
    for row in rows:
        if row.section != section:
            section = row.section
            lines.append(f"| **{section}** | | | | | |")
        lines.append(
            f"| {row.measure} | {spread(row.clarity, row.unit)} | {spread(row.baseline, row.unit)} "
            f"| {ratio_text(row)} | {target_text(row)} | {met_text(row)} |"
        )
    return lines


def console_table(rows: list[Row]) -> str:
    out = [f"  {'':<58} {'Clarity provider':>26} {'Baseline':>26}  {'Ratio':<20} {'Target':>8}"]
    section = None
    for row in rows:
        if row.section != section:
            section = row.section
            out.append(f"\n{section}")
        verdict = "" if row.met is None else ("  ok" if row.met else "  MISSED")
        out.append(
            f"  {row.measure:<58} {spread(row.clarity, row.unit):>26} "
            f"{spread(row.baseline, row.unit):>26}  {ratio_text(row):<20} "
            f"{target_text(row):>8}{verdict}"
        )
    return "\n".join(out)


def write_results(
    rows: list[Row],
    profiles: dict[str, list[str]],
    settings: Settings,
    command: str,
    seconds: float,
    loads: tuple[str, str],
) -> None:
    missed = [row for row in rows if row.met is False]
    lines = [
        "# Benchmark results",
        "",
        f"Written by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC in {seconds:.0f} s. "
        "Do not edit by hand: run it again.",
        "",
        *(f"- **{key}**: {value}" for key, value in machine().items()),
        f"- **Load average** (1, 5, 15 min) at start: {loads[0]}; at end: {loads[1]}",
        f"- **Repetitions**: {settings}",
        "",
        "Each figure is median [min-max] over the repetitions. Each ratio is Clarity / baseline, "
        "median [min-max] of ratios paired within one process or one round (so a busy machine "
        "slows both sides of each pair alike); lower is better. A target is met when the "
        "median ratio is at or below it.",
        "",
        *table(rows),
        "",
    ]
    notes = [f"- {row.measure}: {note}" for row in rows for note in row.notes]
    if notes:
        lines += ["Notes from this run:", "", *notes, ""]
    lines += ["## Targets missed", ""]
    lines += [
        f"- {row.section}, {row.measure}: {ratio_text(row)} (target {target_text(row)})"
        for row in missed
    ] or ["None."]
    lines.append("")
    if missed:
        lines += ["See `benchmarks/README.md` for the causes found and their fixes.", ""]
    for title, profile in profiles.items():
        lines += [f"### {title}", "", "```", *profile, "```", ""]
    lines += [METHOD.strip(), ""]
    # parallel_projects.py and ledger_scale.py (later steps of `make bench`) own their sections.
    for section in OWNED:
        kept = section.kept()
        if kept:
            lines += [kept, ""]
    RESULTS.write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (about 1 minute)")
    parser.add_argument(
        "--only",
        choices=("parse", "export", "normalize", "projects", "calls"),
        action="append",
        help="run only these benchmarks (repeatable); results.md is not written",
    )
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    command = shlex.join(["python", "benchmarks/run.py", *(sys.argv[1:] if argv is None else argv)])
    only = set(args.only or ("parse", "export", "normalize", "projects", "calls"))
    started = time.perf_counter()
    load_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    rows: list[Row] = []
    profiles: dict[str, list[str]] = {}
    with airflow_env() as env:
        if "parse" in only:
            rows += bench_parse(settings, env)
            importtime_rows, imports = bench_importtime(settings, env)
            rows += importtime_rows
            profiles["Imports the Clarity DAG pays and the HttpOperator DAG does not"] = imports
        if "export" in only:
            export_rows, export_profile = bench_export(settings, env)
            rows += export_rows
            if export_profile:
                profiles["Profile of the slowest Clarity export (pyinstrument)"] = export_profile
        if "normalize" in only:
            rows += bench_normalize(settings, env)
        if "projects" in only:
            rows += bench_projects(settings, env)
        if "calls" in only:
            rows += bench_calls(env)
    seconds = time.perf_counter() - started
    load_end = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(console_table(rows))
    for row in rows:
        for note in row.notes:
            print(f"  note: {note}")
    for title, profile in profiles.items():
        print(f"\n{title}:\n" + "\n".join(profile))
    print(f"\n{seconds:.0f} s; load average {load_start} -> {load_end}")
    if args.only is None:
        write_results(rows, profiles, settings, command, seconds, (load_start, load_end))
        print(f"wrote {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
