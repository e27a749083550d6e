#!/usr/bin/env bash
# Debian's chromium for the report's browser test (tests/test_report_view.py, `-m browser`).
#
#   source .ci/chromium.sh    # install chromium from Debian's packages when missing (needs root); fails loudly
#
# Playwright drives this system Chromium (`executable_path`), so no browser is downloaded.

_stickyrec_chromium() (
  set -euo pipefail
  fail() { echo "chromium.sh: $*" >&2; exit 1; }
  if command -v chromium >/dev/null; then
    echo "chromium.sh: using $(command -v chromium) ($(chromium --version 2>/dev/null || echo 'version unknown'))" >&2
    return 0
  fi
  [ "$(id -u)" = 0 ] || fail "chromium is not installed and installing it needs root: apt-get install -y chromium"
  echo "chromium.sh: installing chromium from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 || fail "apt-get update failed"
  apt-get install -y -qq chromium >&2 || fail "apt-get install -y chromium failed"
  command -v chromium >/dev/null || fail "chromium installed but not on PATH"
)

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
  _stickyrec_chromium || return 1
else
  _stickyrec_chromium || exit 1
fi
