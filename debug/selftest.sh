#!/usr/bin/env bash
# Runs every debug script against a Rosetta started here in front of a fake Anthropic upstream,
# and checks what each prints. Part of scripts/test. Needs the release binaries.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
rosetta=${ROSETTA_BIN:-$target/release/rosetta}
fake=${FAKE_UPSTREAM_BIN:-$target/release/fake-upstream}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# Waits for "listening on http://..." in a log file and prints the URL.
url_in() {
  for _ in $(seq 100); do
    u=$(grep -o 'listening on http://[0-9.:]*' "$1" | head -1 | sed 's/listening on //') || true
    if [ -n "$u" ]; then echo "$u"; return 0; fi
    sleep 0.1
  done
  echo "no address in $1:" >&2; cat "$1" >&2; return 1
}

"$fake" --provider anthropic --listen 127.0.0.1:0 --api-key sk-selftest >"$work/fake.log" 2>&1 &
pids+=($!)
fake_url=$(url_in "$work/fake.log")
mkdir "$work/mappings"
cp "$root/mappings/anthropic.yaml" "$work/mappings/"
ANTHROPIC_BASE_URL=$fake_url ANTHROPIC_API_KEY=sk-selftest NO_COLOR=1 \
  "$rosetta" serve --mappings "$work/mappings" --listen 127.0.0.1:0 --trace header >"$work/rosetta.log" 2>&1 &
pids+=($!)
export ROSETTA_URL=$(url_in "$work/rosetta.log")

passed=0 failed=0
check() { # name, expected text, command...
  local name=$1 want=$2; shift 2
  local out
  if out=$("$@" 2>&1) && grep -qF -- "$want" <<<"$out"; then
    echo "PASS $name"; passed=$((passed + 1))
  else
    echo "FAIL $name: wanted $want in:"; echo "$out" | tail -20; failed=$((failed + 1))
  fi
}
d=$root/debug
check health '"name": "anthropic"' "$d/health.sh"
check models '"id": "claude-sonnet-4-5"' "$d/models.sh" anthropic
check models-unified '"id": "anthropic/claude-haiku-4-5"' "$d/models.sh"
check chat '"content": "Hello! You said: ping"' "$d/chat.sh" anthropic claude-sonnet-4-5 ping
check chat-stream 'data: [DONE]' "$d/chat.sh" anthropic claude-sonnet-4-5 ping --stream
check tool-call '"name": "get_weather"' "$d/tool-call.sh" anthropic claude-sonnet-4-5
check tool-call-stream '"finish_reason":"tool_calls"' "$d/tool-call.sh" anthropic claude-sonnet-4-5 --stream
echo '{"model":"claude-haiku-4-5","messages":[{"role":"user","content":"replayed"}]}' >"$work/req.json"
check replay '"content": "Hello! You said: replayed"' "$d/replay.sh" "$work/req.json" anthropic
check replay-unified 'x-request-id' env TRACE=1 "$d/replay.sh" "$work/req.json" -
check metrics 'rosetta_requests_total{mapping="anthropic",route="chat",status="2xx"}' "$d/health.sh"
sleep 0.2
if grep -q 'rosetta::trace: upstream request' "$work/rosetta.log" && ! grep -q sk-selftest "$work/rosetta.log"; then
  echo "PASS trace"; passed=$((passed + 1))
else
  echo "FAIL trace: no redacted trace of the TRACE=1 replay in the log"; failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
