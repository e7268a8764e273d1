#!/usr/bin/env bash
# Make Debian's PostgreSQL and Redis available to the integration suite (tests/integration),
# which runs Airflow on a private PostgreSQL cluster with CeleryExecutor and a Redis broker.
# Both servers are started by the tests themselves on loopback ports; nothing runs as a
# system service. Always exits 0: without them the integration tests skip and say why.
set -u

PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
REDIS=/usr/bin/redis-server
SKIP="the PostgreSQL + Celery integration tests in tests/integration will be skipped"

have_postgres() { [ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ]; }
have_redis() { [ -x "$REDIS" ]; }

missing=()
have_postgres || missing+=(postgresql)
have_redis || missing+=(redis-server)

if [ ${#missing[@]} -eq 0 ]; then
    echo "install_services: using PostgreSQL $("$PG_BIN/postgres" --version 2>/dev/null | awk '{print $3}') ($PG_BIN) and $("$REDIS" --version 2>/dev/null | awk '{print $1, $3}')"
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "install_services: ${missing[*]} missing and this is not root: $SKIP (install with: sudo apt-get install ${missing[*]})"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_services: ${missing[*]} missing and there is no apt-get: $SKIP"
    exit 0
fi

echo "install_services: installing Debian's ${missing[*]} with apt-get (once, under a minute)"
log=$(mktemp)
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d 101: apt must not start the packaged services; the tests run their own.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
fi
if apt-get update -qq >"$log" 2>&1 &&
   apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
fi
[ "$made_policy" = 1 ] && rm -f "$policy"
if have_postgres && have_redis; then
    echo "install_services: installed ${missing[*]}"
else
    echo "install_services: apt-get could not install ${missing[*]}: $SKIP. Last lines of its output:"
    tail -n 5 "$log" | sed 's/^/    /'
fi
rm -f "$log"
exit 0
