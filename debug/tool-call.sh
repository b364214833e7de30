#!/usr/bin/env bash
# Asks for the weather with a get_weather tool declared: the answer should be a tool call.
# Usage: debug/tool-call.sh NAME MODEL [--stream]
#   e.g. debug/tool-call.sh gemini gemini-2.5-flash --stream
set -euo pipefail
. "$(dirname "$0")/_common.sh"
if [ $# -lt 2 ]; then sed -n '2,4p' "$0" >&2; exit 2; fi
name=$1 model=$2 stream=${3:-}
url="$ROSETTA_URL/$name/v1/chat/completions"
body=$(MODEL="$model" STREAM="$stream" python3 -c 'import json,os
b={"model":os.environ["MODEL"],
   "messages":[{"role":"user","content":"What is the weather in Paris? Use the tool."}],
   "tools":[{"type":"function","function":{"name":"get_weather","description":"Current weather in a city",
     "parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]}
if os.environ["STREAM"]=="--stream":
    b["stream"]=True; b["stream_options"]={"include_usage":True}
print(json.dumps(b))')
echo "== POST $url (tools: get_weather)" >&2
if [ "$stream" = "--stream" ]; then
  call -N "$url" -H 'content-type: application/json' -d "$body"
else
  call "$url" -H 'content-type: application/json' -d "$body" | pretty
fi
