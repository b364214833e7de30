# Shared by the debug scripts: where Rosetta is, and a JSON pretty-printer when one exists.
ROSETTA_URL="${ROSETTA_URL:-http://127.0.0.1:8080}"
ROSETTA_URL="${ROSETTA_URL%/}"

# Pretty-prints JSON from stdin if python3 is around; otherwise passes it through.
pretty() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import json,sys
raw=sys.stdin.read()
try: print(json.dumps(json.loads(raw), indent=2, ensure_ascii=False))
except ValueError: print(raw)'
  else
    cat
  fi
}

# curl with the status line and headers on stderr, the body on stdout; fails on no connection.
call() {
  curl -sS --max-time "${ROSETTA_TIMEOUT:-120}" -D /dev/stderr "$@"
}

need_curl() {
  command -v curl >/dev/null 2>&1 || { echo "these scripts need curl" >&2; exit 2; }
}
need_curl
