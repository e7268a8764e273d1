#!/usr/bin/env bash
# Build the wheel and sdist from the tree, check what they ship, and install the wheel with
# plain pip into Airflow environments on Python 3.11 and 3.12 (pyenv's, when present): Airflow's
# version must not change, the provider must import and `airflow providers list` must show it.
# (The older Airflow minors get the same install check in `make compat`.) Dependencies are
# pinned to uv.lock (exported as constraints), so the check is repeatable offline once
# uv's cache is warm. A Python that is not installed is reported and skipped.
set -euo pipefail

UV=${UV:-uv}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d -t clarity-wheel-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$ROOT"

$UV build --quiet --out-dir "$WORK/dist" .
wheel=$(ls "$WORK"/dist/*.whl)
sdist=$(ls "$WORK"/dist/*.tar.gz)

# What the archives carry: the licence in the wheel; no dev-only files in the sdist.
unzip -l "$wheel" | grep -q 'dist-info/licenses/LICENSE' || { echo "check_wheel: no LICENSE in $wheel"; exit 1; }
if unzip -l "$wheel" | grep -q 'airflow_provider_clarity/triggers/'; then
    echo "check_wheel: the wheel ships an empty triggers/ package"; exit 1
fi
unwanted=$(tar tzf "$sdist" | grep -E '/(\.ci|benchmarks|scripts)/|/uv\.lock$|/Makefile$' || true)
if [ -n "$unwanted" ]; then echo "check_wheel: the sdist ships dev-only files:"; echo "$unwanted"; exit 1; fi
echo "check_wheel: built $(basename "$wheel") and $(basename "$sdist")"

$UV export --quiet --frozen --no-dev --no-hashes --no-emit-project --all-extras -o "$WORK/constraints.txt"

airflow_versions() {
    "$1/bin/python" -m pip list --format=freeze 2>/dev/null |
        grep -iE '^apache[-_]airflow([-_]core|[-_]task[-_]sdk)?==' | sort
}

for version in 3.11 3.12; do
    python=$(ls -d "$HOME"/.pyenv/versions/"$version".*/bin/python3 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -z "$python" ]; then
        python=$(command -v "python$version" || true)
    fi
    if [ -z "$python" ]; then
        echo "check_wheel: no Python $version on this machine; skipped"
        continue
    fi
    venv="$WORK/venv-$version"
    started=$SECONDS
    $UV venv --quiet --seed --python "$python" "$venv"
    # An Airflow environment as a user has one (pinned to uv.lock), then the wheel with plain pip:
    # installing the provider must leave Airflow's own packages as they were.
    $UV pip install --quiet --python "$venv/bin/python" --constraint "$WORK/constraints.txt" \
        apache-airflow apache-airflow-providers-http apache-airflow-providers-standard
    before=$(airflow_versions "$venv")
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        --constraint "$WORK/constraints.txt" "$wheel"
    after=$(airflow_versions "$venv")
    if [ "$before" != "$after" ]; then
        echo "check_wheel: Python $version: installing the wheel changed Airflow:"
        diff <(echo "$before") <(echo "$after") || true
        exit 1
    fi
    AIRFLOW_HOME="$WORK/home-$version" "$venv/bin/python" -c \
        "import airflow_provider_clarity as p, airflow_provider_clarity.operators.export; print(p.__version__)" >/dev/null
    listed=$(AIRFLOW_HOME="$WORK/home-$version" AIRFLOW__CORE__LOAD_EXAMPLES=False \
        "$venv/bin/airflow" providers list --output plain 2>/dev/null | grep 'airflow-provider-clarity' || true)
    if [ -z "$listed" ]; then
        echo "check_wheel: Python $version: \`airflow providers list\` does not show airflow-provider-clarity"
        exit 1
    fi
    echo "check_wheel: Python $("$venv/bin/python" -c 'import platform; print(platform.python_version())'): installed, imports, registered ($(echo "$listed" | tr -s ' ')) in $((SECONDS - started)) s"
done
