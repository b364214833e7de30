#!/usr/bin/env bash
# One chat completion through a mapping, streamed or not, printed as it arrives.
# Usage: debug/chat.sh NAME MODEL "message" [--stream]
#   e.g. debug/chat.sh anthropic claude-sonnet-4-5 "Hello" --stream
# With --stream you see the raw SSE chunks (include_usage is on, so the last chunk has usage).
set -euo pipefail
. "$(dirname "$0")/_common.sh"
if [ $# -lt 3 ]; then sed -n '2,5p' "$0" >&2; exit 2; fi
name=$1 model=$2 message=$3 stream=${4:-}
url="$ROSETTA_URL/$name/v1/chat/completions"
body=$(MODEL="$model" MESSAGE="$message" STREAM="$stream" python3 -c 'import json,os
b={"model":os.environ["MODEL"],"messages":[{"role":"user","content":os.environ["MESSAGE"]}]}
if os.environ["STREAM"]=="--stream":
    b["stream"]=True; b["stream_options"]={"include_usage":True}
print(json.dumps(b))')
echo "== POST $url" >&2
echo "$body" >&2
if [ "$stream" = "--stream" ]; then
  call -N "$url" -H 'content-type: application/json' -d "$body"
else
  call "$url" -H 'content-type: application/json' -d "$body" | pretty
fi
