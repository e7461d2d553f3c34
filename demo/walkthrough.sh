#!/usr/bin/env bash
# Run with: make walkthrough   (PORT=9090 make walkthrough for another port)
#
# Starts the reference server on an embedded SQLite ledger and walks through
# the oncely CLI against it with faults switched on: a response lost after the
# commit, a 503 with Retry-After, and a process killed mid-request. Every
# payment ends as exactly one ledger row. The server keeps running afterwards
# until Ctrl-C (DEMO_ONCE=1 stops it at the end instead).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/target/debug"
port=${PORT:-8080}
url="http://127.0.0.1:$port"
work=$(mktemp -d)
store="$work/intents.db"
account=demo
server_pid=

cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '\033[2m$ %s\033[0m\n' "$*"; "$@"; }

# The server's admin calls (faults, ledger), over plain HTTP with Python's
# standard library: no curl needed.
http() {
    python3 - "$@" <<'PY'
import json, sys, urllib.request
method, url = sys.argv[1], sys.argv[2]
data = sys.argv[3].encode() if len(sys.argv) > 3 else None
request = urllib.request.Request(url, data=data, method=method,
                                 headers={"x-account": "demo", "content-type": "application/json"})
body = json.load(urllib.request.urlopen(request, timeout=10))
if isinstance(body, list):
    for row in body:
        print(f"  charge #{row['id']}: {row['amount']} {row['currency']}  key {row['idempotency_key']}")
    print(f"  {len(body)} charge(s) in the ledger")
PY
}
faults() { http POST "$url/api/faults" "$1"; }
ledger() { http GET "$url/api/charges"; }
pay() {
    local intent=$1 amount=$2
    run "$bin/oncely" send --store "$store" --intent "$intent" \
        -H 'content-type: application/json' -H "x-account: $account" \
        -d "{\"amount\":$amount,\"currency\":\"usd\",\"description\":\"$intent\"}" "$url/api/charges"
    echo
}

step "Starting the reference server on $url (ledger: $work/ledger.db)"
"$bin/oncely-server" --addr "127.0.0.1:$port" --db "$work/ledger.db" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
    grep -q 'listening on' "$work/server.log" 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
    sleep 0.1
done
cat "$work/server.log"

step "1. The server commits the charge, then the connection drops before the response"
faults '{"drop_next":1}'
pay order-42 4200
ledger

step "2. The same command again: replayed from the local store, nothing sent"
pay order-42 4200
ledger

step "3. The server answers 503 with Retry-After: 2, then recovers"
faults '{"fail_next":[{"status":503,"headers":{"Retry-After":"2"}}]}'
pay order-43 1999
ledger

step "4. The client is killed (SIGKILL) mid-request, then 'oncely resume' finishes it under the same key"
faults '{"slow_ms":2000}'
"$bin/oncely" send --store "$store" --intent order-44 -H "x-account: $account" \
    -d '{"amount":500,"currency":"usd","description":"order-44"}' "$url/api/charges" &
client=$!
sleep 1
kill -9 "$client"; wait "$client" 2>/dev/null || true
echo "  killed the client (pid $client) while the server was still processing"
run "$bin/oncely" list --store "$store"
faults '{"slow_ms":0}'
# X-Account names who pays: like every header off the stored list it is never
# written to the store, so the resume is given it again.
run "$bin/oncely" resume --store "$store" -H "x-account: $account"
run "$bin/oncely" list --store "$store"
ledger

step "Three payments, three charges, however often the network lied."
if [ "${DEMO_ONCE:-0}" = 1 ]; then
    exit 0
fi
echo "The server is still running at $url (try: $bin/oncely send --store $store --intent mine -H 'x-account: $account' -d '{\"amount\":100,\"currency\":\"usd\"}' $url/api/charges). Ctrl-C to stop."
wait "$server_pid"
