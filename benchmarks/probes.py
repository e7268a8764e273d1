"""What runs inside the benchmark's fresh subprocesses. ``run.py`` starts them; not for direct use.

Each probe prints one line ``@@RESULT <json>`` on stdout (task logs may share stdout).

- ``parse ROUNDS DAG_FILE...``: import ``airflow.sdk`` (timed), then, ROUNDS times and in
  alternating order, fork a child per DAG file that runs the file with ``runpy`` (timed,
  modules counted). Forking after ``airflow.sdk`` is loaded is what Airflow's DAG processor
  does on Linux for every file it parses, so each child starts from the same state a real
  parse starts from, and the two files are compared inside one process.
- ``export SIDE SIZE WARM [--profile]``: the common imports, then one cold export (the
  first in this process, as on a fresh worker) and WARM more, each into a fresh folder.
  Peak RSS is ``ru_maxrss`` after the cold export; the RSS before it is read from
  ``/proc/self/statm``. With ``--profile``: only pyinstrument's tree of the cold export.
- ``normalize REPS``: the normalisers and the naive baseline on the 9 x 1000 payload.
- ``projects N``: N exports in a row, one per project (connections ``clarity_p0`` ..), as
  the single ``clarity_api`` slot runs them, each against its own ledger; each export
  paired with a bare ``requests.get`` of the same project (the call alone).
- ``calls``: Clarity calls counted by an in-process emulator for two plans, each run as
  written today (every task its own call: ``max_snapshot_age=0``, no derive) and with the
  provider's sharing and derived breakdowns.
- ``plan``: the plan command's suggestion for a DAG folder of 8 single-dimension exports,
  before and after one day of kept answers, each suggestion run for real (calls counted).
"""

from __future__ import annotations

import gc
import json
import os
import resource
import runpy
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

RESULT_MARK = "@@RESULT "
CONN_ID = "clarity_bench"

# Nothing under these may be imported by parsing a Clarity DAG file.
HEAVY_PREFIXES = (
    "pandas",
    "pyarrow",
    "numpy",
    "s3fs",
    "gcsfs",
    "adlfs",
    "openlineage",
    "airflow.providers.openlineage",
    "airflow.providers.amazon",
    "airflow.providers.google",
    "airflow_provider_clarity.testing",
)

# What the export probe's request asks for, by size name.
SIZES: dict[str, tuple[str, ...]] = {"snapshot": (), "url": ("URL",)}


def heavy_modules(names: set[str] | list[str]) -> list[str]:
    """The names in ``names`` that are, or are under, one of ``HEAVY_PREFIXES``."""
    return sorted(
        name
        for name in names
        if any(name == prefix or name.startswith(prefix + ".") for prefix in HEAVY_PREFIXES)
    )


def _emit(result: dict[str, Any]) -> None:
    sys.stdout.write(RESULT_MARK + json.dumps(result) + "\n")
    sys.stdout.flush()


def _forked(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``work`` in a forked child and return what it returned (through a pipe)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_end)
        code = 0
        try:
            payload = json.dumps(work()).encode()
        except BaseException as exc:
            payload = json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode()
            code = 1
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(payload)
        os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    result: dict[str, Any] = json.loads(data)
    if "error" in result:
        raise RuntimeError(f"forked probe failed: {result['error']}")
    return result


def parse_once(dag_file: str) -> dict[str, Any]:
    """Run one DAG file (as the DAG processor's child does) and measure it."""
    from airflow.sdk import DAG

    before = set(sys.modules)
    start = time.perf_counter()
    namespace = runpy.run_path(dag_file, run_name="__dag_file__")
    seconds = time.perf_counter() - start
    new = set(sys.modules) - before
    dags = [value for value in namespace.values() if isinstance(value, DAG)]
    return {
        "seconds": seconds,
        "modules": len(new),
        "dags": [dag.dag_id for dag in dags],
        "tasks": sum(len(dag.tasks) for dag in dags),
        "heavy_new": heavy_modules(new),
        "heavy_loaded": heavy_modules(list(sys.modules)),
    }


def parse_probe(rounds: int, dag_files: list[str]) -> dict[str, Any]:
    start = time.perf_counter()
    import airflow.sdk  # noqa: F401  (the import is what is timed)

    sdk_seconds = time.perf_counter() - start
    runs: dict[str, list[dict[str, Any]]] = {path: [] for path in dag_files}
    for round_number in range(rounds):
        order = dag_files if round_number % 2 == 0 else list(reversed(dag_files))
        for path in order:
            runs[path].append(_forked(lambda path=path: parse_once(path)))  # type: ignore[misc]
    return {"sdk_seconds": sdk_seconds, "sdk_modules": len(sys.modules), "runs": runs}


# ------------------------------------------------------------------ export


def _rss_kb() -> int:
    """The current resident set size, in KiB."""
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") // 1024


def _peak_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def _clarity_runner(dimensions: tuple[str, ...]) -> Callable[[str], dict[str, Any]]:
    from airflow.sdk.execution_time.context import OutletEventAccessors

    from airflow_provider_clarity.operators.export import ClarityExportOperator
    from airflow_provider_clarity.quota import MemoryLedgerStore, QuotaLedger

    # The ledger normally lives in an Airflow Variable, read and written through the
    # Execution API of a real worker; here it is in memory (no API server in the benchmark).
    store = MemoryLedgerStore()
    for_hook = QuotaLedger.for_hook.__func__  # type: ignore[attr-defined]

    def with_memory_store(cls: type[QuotaLedger], hook: Any, **kwargs: Any) -> QuotaLedger:
        kwargs.setdefault("store", store)
        return for_hook(cls, hook, **kwargs)

    QuotaLedger.for_hook = classmethod(with_memory_store)  # type: ignore[method-assign,assignment]
    # The shared-snapshot index lives beside the ledger, in a Variable; in memory here too.
    from airflow_provider_clarity.snapshots import index as shared_index

    index = MemoryLedgerStore()
    shared_index.VariableLedgerStore = lambda key, **_: index  # type: ignore[assignment,misc]

    def run(folder: str) -> dict[str, Any]:
        os.makedirs(folder)
        operator = ClarityExportOperator(
            task_id="export",
            clarity_conn_id=CONN_ID,
            num_of_days=1,
            dimensions=dimensions,
            destination=f"file://{folder}/table.parquet",
        )
        now = datetime.now(UTC)
        ti = SimpleNamespace(dag_id="bench", task_id="export", run_id="bench", map_index=-1)
        context = {
            "ti": ti,
            "outlet_events": OutletEventAccessors(),
            "data_interval_end": now,
            "logical_date": now,
        }
        start = time.perf_counter()
        summary = operator.execute(context)  # type: ignore[arg-type]
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "rows": summary["rows"]}

    return run


def _baseline_runner(dimensions: tuple[str, ...]) -> Callable[[str], dict[str, Any]]:
    from baseline import export_task

    def run(folder: str) -> dict[str, Any]:
        os.makedirs(folder)
        start = time.perf_counter()
        summary = export_task(
            CONN_ID, dimensions, f"{folder}/table.raw.json", f"{folder}/table.parquet"
        )
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "rows": summary["rows"]}

    return run


def _profiled(run: Callable[[str], dict[str, Any]], folder: str) -> str:
    """pyinstrument's call tree of one run, as text (the first 45 lines)."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.001)
    profiler.start()
    run(folder)
    profiler.stop()
    text = profiler.output_text(unicode=False, color=False)
    return "\n".join(line for line in text.splitlines() if line.strip())[:6000]


def export_probe(side: str, size: str, warm: int, profile: bool = False) -> dict[str, Any]:
    # The imports both sides need on a worker, done before anything is measured.
    import airflow.sdk  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow
    import pyarrow.parquet  # noqa: F401
    import requests  # noqa: F401

    dimensions = SIZES[size]
    run = _clarity_runner(dimensions) if side == "clarity" else _baseline_runner(dimensions)
    with tempfile.TemporaryDirectory(prefix=f"clarity-bench-{side}-") as root:
        if profile:
            return {"profile": _profiled(run, f"{root}/profiled")}
        rss_before = _rss_kb()
        peak_before = _peak_rss_kb()
        cold = run(f"{root}/0")
        peak_after = _peak_rss_kb()
        warm_runs = [run(f"{root}/{n}") for n in range(1, warm + 1)]
    return {
        "side": side,
        "size": size,
        "cold_seconds": cold["seconds"],
        "warm_seconds": [r["seconds"] for r in warm_runs],
        "rows": cold["rows"],
        "rss_before_kb": rss_before,
        "peak_before_kb": peak_before,
        "peak_kb": peak_after,
        "peak_delta_kb": peak_after - rss_before,
    }


# ------------------------------------------------------------------ normalisation


def normalize_probe(reps: int) -> dict[str, Any]:
    """Time to_dataframe, to_records and the naive baseline on the 9 x 1000 URL payload."""
    from baseline import naive_dataframe

    from airflow_provider_clarity import normalize
    from airflow_provider_clarity.testing.emulator import ClarityEmulator

    emulator = ClarityEmulator()  # not started: payload() needs no server
    emulator.configure_project("bench", url_count=1200)
    payload = emulator.payload("bench", num_of_days=1, dimensions=("URL",))
    exported_at = datetime.now(UTC)
    candidates: dict[str, Callable[[], int]] = {
        "to_dataframe": lambda: len(
            normalize.to_dataframe(payload, exported_at=exported_at, num_of_days=1)
        ),
        "to_records": lambda: len(
            normalize.to_records(payload, exported_at=exported_at, num_of_days=1)
        ),
        "naive": lambda: len(naive_dataframe(payload)),
    }
    rows = {name: work() for name, work in candidates.items()}  # warm-up, and a check
    times: dict[str, list[float]] = {name: [] for name in candidates}
    names = list(candidates)
    for rep in range(reps):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            gc.collect()
            start = time.perf_counter()
            candidates[name]()
            times[name].append(time.perf_counter() - start)
    return {"rows": rows, "blocks": len(payload), "times": times}


# ------------------------------------------------------------------ many projects


def projects_probe(count: int) -> dict[str, Any]:
    """Slot-hold time of N one-export projects in a row, against the bare HTTP call of each."""
    import airflow.sdk  # noqa: F401
    import requests
    from airflow.sdk import Connection
    from airflow.sdk.execution_time.context import OutletEventAccessors

    from airflow_provider_clarity.operators.export import ClarityExportOperator
    from airflow_provider_clarity.quota import MemoryLedgerStore, QuotaLedger

    # One in-memory ledger per project (on a worker: one Variable per project).
    stores: dict[str, MemoryLedgerStore] = {}
    for_hook = QuotaLedger.for_hook.__func__  # type: ignore[attr-defined]

    def with_memory_store(cls: type[QuotaLedger], hook: Any, **kwargs: Any) -> QuotaLedger:
        kwargs.setdefault("store", stores.setdefault(hook.project_id, MemoryLedgerStore()))
        return for_hook(cls, hook, **kwargs)

    QuotaLedger.for_hook = classmethod(with_memory_store)  # type: ignore[method-assign,assignment]
    now = datetime.now(UTC)
    holds: list[float] = []
    calls: list[float] = []
    with tempfile.TemporaryDirectory(prefix="clarity-bench-projects-") as root:
        started = time.perf_counter()
        for index in range(count):
            conn_id = f"clarity_p{index}"
            operator = ClarityExportOperator(
                task_id="export",
                clarity_conn_id=conn_id,
                dimensions=("OS",),
                destination=f"file://{root}/{conn_id}/os.parquet",
            )
            ti = SimpleNamespace(dag_id="bench", task_id="export", run_id=conn_id, map_index=-1)
            context = {
                "ti": ti,
                "outlet_events": OutletEventAccessors(),
                "data_interval_end": now,
                "logical_date": now,
            }
            start = time.perf_counter()
            operator.execute(context)  # type: ignore[arg-type]
            holds.append(time.perf_counter() - start)
            conn = Connection.get(conn_id)
            start = time.perf_counter()
            response = requests.get(
                f"{conn.host}/export-data/api/v1/project-live-insights",
                params={"numOfDays": "1", "dimension1": "OS"},
                headers={"Authorization": f"Bearer {conn.password}"},
                timeout=120,
            )
            response.raise_for_status()
            calls.append(time.perf_counter() - start)
        wall = time.perf_counter() - started
    return {"holds": holds, "calls": calls, "wall_seconds": wall, "projects": len(stores)}


SINGLES = ("Browser", "Device", "Country", "OS", "Source", "Medium", "Campaign", "Channel")
PAIRS = (("Device", "OS"), ("Browser", "Country"), ("Source", "Medium"), ("Campaign", "Channel"))


def _context(dag_id: str) -> Any:
    """The minimal task context an export or a derive needs outside a worker."""
    from airflow.sdk.execution_time.context import OutletEventAccessors

    now = datetime.now(UTC)
    ti = SimpleNamespace(dag_id=dag_id, task_id="t", run_id="bench", map_index=-1)
    return {
        "ti": ti,
        "outlet_events": OutletEventAccessors(),
        "data_interval_end": now,
        "logical_date": now,
    }


def _export(folder: str, name: str, dims: Any, dag_id: str, age: int | None) -> None:
    from airflow_provider_clarity.operators.export import ClarityExportOperator

    ClarityExportOperator(
        task_id=name,
        clarity_conn_id=CONN_ID,
        dimensions=list(dims),
        destination=f"file://{folder}/{dag_id}/{name}.parquet",
        max_snapshot_age=age,
    ).execute(_context(dag_id))


def _derive(folder: str, source: str, tables: Any, dag_id: str) -> None:
    from airflow_provider_clarity.operators.derive import ClarityDeriveOperator

    ClarityDeriveOperator(
        task_id="derive",
        source=f"file://{folder}/{dag_id}/{source}.raw.json",
        outputs={t: f"file://{folder}/{dag_id}/{t}.parquet" for t in tables},
    ).execute(_context(dag_id))


def _tables(folder: str) -> int:
    return sum(f.endswith(".parquet") for _, _, fs in os.walk(folder) for f in fs)


def calls_probe() -> dict[str, Any]:
    """Calls and tables for the 8 session dimensions plus 4 pairs, and for 3 DAGs asking
    ``Device``; the ledger and the shared-snapshot index are in memory (no API server)."""
    from airflow_provider_clarity.snapshots import index as shared_index
    from airflow_provider_clarity.testing.emulator import ClarityEmulator

    _clarity_runner(())  # puts the in-memory ledger and shared-snapshot index in place

    result: dict[str, Any] = {}
    with ClarityEmulator(daily_limit=1_000_000) as emulator:
        os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = emulator.airflow_conn_json(
            emulator.issue_token("bench"), project_id="bench", daily_limit=1_000_000
        )
        for side in ("baseline", "clarity"):
            with tempfile.TemporaryDirectory() as folder:
                shared_index.VariableLedgerStore("index").data = None  # each plan starts empty
                before = emulator.calls("bench")
                if side == "baseline":
                    for dims in [(d,) for d in SINGLES] + list(PAIRS):
                        _export(folder, "_".join(dims), dims, side, 0)
                else:
                    for dims in PAIRS:
                        _export(folder, "_".join(dims), dims, side, None)
                        _derive(folder, "_".join(dims), dims, side)
                result[f"plan_{side}"] = {
                    "calls": emulator.calls("bench") - before,
                    "tables": _tables(folder),
                }
            with tempfile.TemporaryDirectory() as folder:
                shared_index.VariableLedgerStore("index").data = None
                before = emulator.calls("bench")
                for dag in ("team_1", "team_2", "team_3"):
                    _export(
                        folder,
                        "device",
                        ("Device",),
                        f"{side}_{dag}",
                        0 if side == "baseline" else None,
                    )
                result[f"three_{side}"] = {
                    "calls": emulator.calls("bench") - before,
                    "tables": _tables(folder),
                }
    return result


EIGHT_SINGLES_DAG = """
from airflow.sdk import DAG

from airflow_provider_clarity.operators.export import ClarityExportOperator

with DAG("singles", schedule="@daily", catchup=False):
    for d in {singles!r}:
        ClarityExportOperator(
            task_id=d.lower(),
            clarity_conn_id={conn_id!r},
            dimensions=[d],
            destination=f"file://{kept}/singles/{{d}}.parquet",
        )
"""


def plan_probe() -> dict[str, Any]:
    """The plan command's code on a DAG folder of 8 single-dimension exports: its suggestion
    before any answer is kept (pairs, fit assumed) and after the DAG ran once (its 8 answers
    listed in the shared-snapshot index: triples where the measured rows fit). Each
    suggestion is then run for real, export and derive, counting the emulator's calls and
    the tables written."""
    from airflow_provider_clarity.plan import plan_dags
    from airflow_provider_clarity.plan.rows import kept_rows
    from airflow_provider_clarity.snapshots import index as shared_index
    from airflow_provider_clarity.testing.emulator import ClarityEmulator
    from airflow_provider_clarity.version_compat import dag_bag

    _clarity_runner(())  # the in-memory ledger and index, which kept_rows reads too
    result: dict[str, Any] = {}
    with ClarityEmulator(daily_limit=1_000_000) as emulator, tempfile.TemporaryDirectory() as root:
        os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = emulator.airflow_conn_json(
            emulator.issue_token("bench"), project_id="bench", daily_limit=1_000_000
        )
        dags, kept = os.path.join(root, "dags"), os.path.join(root, "kept")
        os.makedirs(dags)
        with open(os.path.join(dags, "eight_singles.py"), "w") as file:
            file.write(EIGHT_SINGLES_DAG.format(singles=SINGLES, conn_id=CONN_ID, kept=kept))
        bag = dag_bag(dags)
        if bag.import_errors:
            raise RuntimeError(f"the plan's DAG folder does not import: {bag.import_errors}")

        def suggestion() -> list[Any]:
            (plan,), _ = plan_dags(bag.dags.values(), rows_of=kept_rows)
            result["as_written"] = plan.spent
            return plan.suggestion

        shared_index.VariableLedgerStore("index").data = None
        sides = {"baseline": suggestion()}  # nothing kept yet: today's pairs
        before = emulator.calls("bench")
        for d in SINGLES:  # the DAG as written runs once: 8 calls, 8 answers kept
            _export(kept, d, (d,), "singles", None)
        result["first_day_calls"] = emulator.calls("bench") - before
        sides["clarity"] = suggestion()
        for side, calls in sides.items():
            with tempfile.TemporaryDirectory() as folder:
                before = emulator.calls("bench")
                for n, call in enumerate(calls):
                    _export(folder, f"call{n}", call.dimensions, side, 0)
                    _derive(folder, f"call{n}", [t for t in call.tables if "," not in t], side)
                result[side] = {
                    "suggested": sum(c.calls for c in calls),
                    "calls": emulator.calls("bench") - before,
                    "tables": _tables(folder) - len(calls),
                    "lines": [
                        f"{c.calls} x {','.join(c.dimensions)} "
                        f"({c.fit.kind.value if c.fit else 'as written'})"
                        for c in calls
                    ],
                }
    return result


def main(argv: list[str]) -> None:
    kind, *args = argv
    if kind == "parse":
        _emit(parse_probe(int(args[0]), args[1:]))
    elif kind == "normalize":
        _emit(normalize_probe(int(args[0])))
    elif kind == "projects":
        _emit(projects_probe(int(args[0])))

    elif kind == "calls":
        _emit(calls_probe())
    elif kind == "plan":
        _emit(plan_probe())
    elif kind == "export":
        _emit(export_probe(args[0], args[1], int(args[2]), profile="--profile" in args))
    else:
        raise SystemExit(f"unknown probe {kind!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
