#!/usr/bin/env bash
# `make demo`: install judgealign and its embedded local model into .venv, then run the main
# job (cross-validated baseline vs aligned ml-notebook judges on the shipped demo set).
# Install time, demo time and peak memory go to bench/results/demo.json.
# Usage: scripts/demo.sh [--full] [other `judgealign demo` options]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
t0=$SECONDS
if [[ ! -x "$VENV/bin/python" ]]; then
  echo "demo: creating $VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
fi
echo "demo: installing judgealign"
"$VENV/bin/pip" install -q -e .
bash scripts/install-local.sh "$VENV"
install_s=$((SECONDS - t0))
echo "demo: installation took ${install_s}s; starting the evaluation"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
"$VENV/bin/judgealign" demo --timings bench/results/demo.json --install-seconds "$install_s" "$@"
