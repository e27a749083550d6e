#!/usr/bin/env bash
# The README's commands: each creates (or reuses) the local virtual environment, then runs.
#   ./dev.sh demo  [args]   simulate shoppers under baseline policies and print the summary
#   ./dev.sh test  [args]   the test suite (fast by default; `-m slow` for the long ones, `-m browser` for the
#                           report in headless Chromium)
#   ./dev.sh bench [args]   the env benchmark
#   ./dev.sh verify RUN_DIR  re-run seed 0 of every agent kind of a committed run and compare it shopper for shopper
#   ./dev.sh lint           ruff: lint and format check (CI runs it)
set -euo pipefail
cd "$(dirname "$0")"
VENV="${STICKYREC_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

ensure_venv() {
  if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    echo "stickyrec needs Python 3.10 or newer; $PYTHON is $("$PYTHON" --version 2>&1)" >&2
    exit 1
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    echo "creating virtual environment in $VENV" >&2
    "$PYTHON" -m venv "$VENV"
  fi
  local want stamp="$VENV/.stickyrec-installed"
  want="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "installing stickyrec and its pinned dependencies into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -c constraints.txt -e ".[test,ray,browser]"
    echo "$want" > "$stamp"
  fi
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  demo)  ensure_venv; exec "$VENV/bin/stickyrec" simulate "$@" ;;
  test)  ensure_venv; exec "$VENV/bin/python" -m pytest "$@" ;;
  bench) ensure_venv; exec "$VENV/bin/stickyrec" bench "$@" ;;
  verify) ensure_venv; exec "$VENV/bin/stickyrec" verify "$@" ;;
  lint)  ensure_venv; "$VENV/bin/ruff" check . && exec "$VENV/bin/ruff" format --check . ;;
  setup) ensure_venv ;;
  *) echo "usage: ./dev.sh {demo|test|bench|verify|lint|setup} [args...]" >&2; exit 2 ;;
esac
