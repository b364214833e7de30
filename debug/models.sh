#!/usr/bin/env bash
# The models a mapping serves (declared, then what its upstream lists), or all mappings' models.
# Usage: debug/models.sh [NAME]     e.g. debug/models.sh ollama
set -euo pipefail
. "$(dirname "$0")/_common.sh"
if [ $# -ge 1 ]; then url="$ROSETTA_URL/$1/v1/models"; else url="$ROSETTA_URL/v1/models"; fi
echo "== GET $url"
call "$url" 2>/dev/null | pretty
