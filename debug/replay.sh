#!/usr/bin/env bash
# Sends a saved OpenAI request body (a JSON file) again, e.g. one copied from a trace or from
# LibreChat's logs. Streams if the file says "stream": true.
# Usage: debug/replay.sh FILE NAME [ROUTE]
#   ROUTE is chat/completions (default), completions or embeddings.
#   NAME "-" sends to the unified surface /v1/..., where the file's model picks the mapping.
#   Add TRACE=1 to ask for a trace of this request (Rosetta must run with --trace header).
set -euo pipefail
. "$(dirname "$0")/_common.sh"
if [ $# -lt 2 ]; then sed -n '2,8p' "$0" >&2; exit 2; fi
file=$1 name=$2 route=${3:-chat/completions}
[ -r "$file" ] || { echo "cannot read $file" >&2; exit 2; }
if [ "$name" = "-" ]; then url="$ROSETTA_URL/v1/$route"; else url="$ROSETTA_URL/$name/v1/$route"; fi
extra=()
if [ "${TRACE:-}" = "1" ]; then extra=(-H 'x-rosetta-trace: 1'); fi
echo "== POST $url < $file" >&2
if grep -Eq '"stream"[[:space:]]*:[[:space:]]*true' "$file"; then
  call -N "$url" -H 'content-type: application/json' "${extra[@]}" --data-binary "@$file"
else
  call "$url" -H 'content-type: application/json' "${extra[@]}" --data-binary "@$file" | pretty
fi
