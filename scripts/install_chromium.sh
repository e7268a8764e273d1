#!/usr/bin/env bash
# Make Debian's Chromium available to the browser test (tests/ui), which drives it with
# Playwright. Never downloads a browser any other way (no `playwright install`).
# Always exits 0: without Chromium the browser tests skip and say why.
set -u

CHROMIUM=/usr/bin/chromium
SKIP="the browser tests in tests/ui will be skipped"

if [ -x "$CHROMIUM" ]; then
    echo "install_chromium: using $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "install_chromium: $CHROMIUM is missing and this is not root: $SKIP (install it with: sudo apt-get install chromium)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_chromium: $CHROMIUM is missing and there is no apt-get: $SKIP"
    exit 0
fi

echo "install_chromium: installing Debian's chromium with apt-get (once, about a minute)"
log=$(mktemp)
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq >"$log" 2>&1 &&
   apt-get install -y -qq --no-install-recommends chromium fonts-liberation >>"$log" 2>&1 &&
   [ -x "$CHROMIUM" ]; then
    echo "install_chromium: installed $("$CHROMIUM" --version 2>/dev/null || echo chromium)"
else
    echo "install_chromium: apt-get could not install chromium: $SKIP. Last lines of its output:"
    tail -n 5 "$log" | sed 's/^/    /'
fi
rm -f "$log"
exit 0
