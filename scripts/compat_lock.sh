#!/usr/bin/env bash
# Resolve tests/compat/airflow-<minor>.txt from airflow-<minor>.in as of the date that file names
# (`# exclude-newer: DATE`, a few days after the release): Airflow's own constraint files cannot be
# fetched here, and an unconstrained install today pulls libraries newer than the release that
# break it. `uv pip compile --exclude-newer` gives the set a user installing on that day got.
set -euo pipefail
UV=${UV:-uv}
cd "$(dirname "$0")/../tests/compat"
for input in airflow-*.in; do
    minor=${input#airflow-}
    minor=${minor%.in}
    date=$(sed -n 's/^# exclude-newer: *//p' "$input")
    [ -n "$date" ] || { echo "compat-lock: $input has no '# exclude-newer: DATE' line"; exit 2; }
    # Test tools that are not part of an Airflow environment may be newer (see requirements.in).
    newer=()
    while read -r package; do
        [ -n "$package" ] && newer+=(--exclude-newer-package "$package")
    done < <(sed -n 's/^# exclude-newer-package: *//p' requirements.in)
    $UV pip compile --quiet --universal --python-version 3.11 --exclude-newer "$date" --no-header \
        "${newer[@]}" --custom-compile-command "make compat-lock" -o "airflow-$minor.txt" "$input"
    echo "compat-lock: airflow-$minor.txt: $(grep -m1 '^apache-airflow==' "$input") as of $date"
done
