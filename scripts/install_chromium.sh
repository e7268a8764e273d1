#!/usr/bin/env bash
# Make Debian's Chromium available for the browser test (tests/ui). Never downloads a browser
# any other way (no `playwright install`). Always exits 0: without Chromium the test skips
# itself with a visible reason.
set -u

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    echo "install_chromium: $CHROMIUM is present ($("$CHROMIUM" --version 2>/dev/null || echo 'version unknown'))"
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "install_chromium: $CHROMIUM missing and not root: the browser tests in tests/ui will be skipped" \
         "(as root: apt-get install chromium)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_chromium: $CHROMIUM missing and no apt-get: the browser tests in tests/ui will be skipped"
    exit 0
fi

echo "install_chromium: installing chromium with apt-get (one-time, about a minute)"
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null; then
    echo "install_chromium: installed $("$CHROMIUM" --version 2>/dev/null || echo chromium)"
else
    echo "install_chromium: apt-get install chromium failed: the browser tests in tests/ui will be skipped"
fi
exit 0
