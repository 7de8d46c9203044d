#!/usr/bin/env bash
# System packages the test suite uses for real (not mocks): headless Chromium for the browser
# tests of the labelling app and the HTML reports, a Java runtime for Spark in local mode.
# Idempotent: installs only what is missing, with apt-get when running as root; otherwise it
# prints the command to run and the tests that need the package skip, naming it.
# Usage: scripts/install-system.sh
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi
if [[ "$(id -u)" != "0" ]] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-system: missing ${missing[*]}; install them (Debian: sudo apt-get install ${missing[*]})" \
    "or the tests that need them skip" >&2
  exit 0
fi
echo "install-system: apt-get install ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
