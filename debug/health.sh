#!/usr/bin/env bash
# Is Rosetta up, which mappings did it load, what is missing, and its rosetta_* metrics.
# Usage: debug/health.sh            (ROSETTA_URL defaults to http://127.0.0.1:8080)
set -euo pipefail
. "$(dirname "$0")/_common.sh"
echo "== GET $ROSETTA_URL/health"
call "$ROSETTA_URL/health" 2>/dev/null | pretty
echo
echo "== GET $ROSETTA_URL/metrics (rosetta_* series with a value)"
call "$ROSETTA_URL/metrics" 2>/dev/null | grep '^rosetta_' | grep -v '_bucket{' | grep -v ' 0$' || echo "(no requests counted yet)"
