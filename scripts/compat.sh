#!/usr/bin/env bash
# One compatibility run: `scripts/compat.sh AIRFLOW_MINOR PYTHON [PYTEST_ARGS...]`, e.g. `3.1 3.11`.
#
# 1. Builds an Airflow environment as a user has one: .venv-compat/airflow-<minor>-py<python>,
#    from tests/compat/airflow-<minor>.txt (resolved as of that release, see tests/compat/README.md).
# 2. Installs the provider's wheel into it with plain pip, dependencies and all, and fails if
#    apache-airflow, apache-airflow-core or apache-airflow-task-sdk changed version.
# 3. Runs the main job there (scripts/demo.py: the emulator, the example DAG, Parquet files), then
#    the suite (all of tests/ but the PostgreSQL + Celery integration tests, which run on the
#    locked newest Airflow in .venv); with PYTEST_ARGS, only pytest with those.
set -euo pipefail

minor=${1:?usage: compat.sh AIRFLOW_MINOR PYTHON [PYTEST_ARGS...]}
pyver=${2:?usage: compat.sh AIRFLOW_MINOR PYTHON [PYTEST_ARGS...]}
shift 2
UV=${UV:-uv}
export UV_PYTHON_DOWNLOADS=never
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
requirements="tests/compat/airflow-$minor.txt"
[ -f "$requirements" ] || { echo "compat: no $requirements (supported: $(ls tests/compat | sed -n 's/^airflow-\(.*\)\.txt$/\1/p' | tr '\n' ' '))"; exit 2; }

python=$(ls -d "$HOME"/.pyenv/versions/"$pyver".*/bin/python3 2>/dev/null | sort -V | tail -n 1 || true)
[ -n "$python" ] || python=$(command -v "python$pyver" || true)
[ -n "$python" ] || { echo "compat: no Python $pyver on this machine"; exit 2; }

started=$SECONDS
venv=".venv-compat/airflow-$minor-py$pyver"
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    rm -rf "$venv"
    $UV venv --quiet --seed --python "$python" "$venv"
    $UV pip sync --quiet --python "$venv/bin/python" "$requirements"
    echo "$want" >"$stamp"
else
    # Back to exactly the resolved set (drops the provider installed by the previous run).
    $UV pip sync --quiet --python "$venv/bin/python" "$requirements"
fi
$UV pip install --quiet --python "$venv/bin/python" pip

versions() {
    "$venv/bin/python" -m pip list --format=freeze 2>/dev/null |
        grep -iE '^apache[-_]airflow([-_]core|[-_]task[-_]sdk)?==' | sort
}
before=$(versions)

work=$(mktemp -d -t clarity-compat-XXXXXX)
trap 'rm -rf "$work"' EXIT
$UV build --quiet --wheel --out-dir "$work" .
wheel=$(ls "$work"/*.whl)
# Plain pip, as a user on a managed Airflow would run it: nothing pinned, nothing skipped.
# With the extras this environment has, so their ranges are checked against it too.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$wheel[amazon,openlineage]"
after=$(versions)
if [ "$before" != "$after" ]; then
    echo "compat: installing the wheel changed Airflow in the $minor environment:"
    diff <(echo "$before") <(echo "$after") || true
    exit 1
fi
echo "compat: Airflow $minor on Python $("$venv/bin/python" -c 'import platform; print(platform.python_version())'):" \
    "the wheel installed with pip, Airflow unchanged ($(echo "$after" | tr '\n' ' '))"

status=0
if [ $# -eq 0 ]; then
    # The main job, as `make demo` runs it (the emulator, the example DAG, Parquet), on this Airflow.
    echo "compat: Airflow $minor: the demo job (scripts/demo.py) ..."
    CLARITY_DEMO_AIRFLOW_HOME="$work/demo-airflow" CLARITY_DEMO_OUTPUT="$work/demo-output" \
        CLARITY_API_TOKEN='' "$venv/bin/python" scripts/demo.py || status=$?
    set -- tests --ignore=tests/integration -q
fi
# The source tree is imported first (tests use it); the wheel provides the entry points.
"$venv/bin/python" -m pytest -p no:cacheprovider "$@" || status=$?
echo "compat: Airflow $minor on Python $pyver: pytest exit $status in $((SECONDS - started)) s"
exit $status
