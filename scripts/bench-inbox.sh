#!/usr/bin/env bash
# Agent inbox figures for docs/performance.md: a database with N cases (bench/inbox_load.rs),
# the release server, then
#   - the inbox API (first page of 50 with the per-view counts) under wrk, per view, and
#   - the whole page in headless Chromium: from navigation start to the table on screen
#     (bench/inbox_render.py), for the agent's busiest view.
# Once per backend. Usage: scripts/bench-inbox.sh [sqlite|postgres|all]   env: N (100000)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
which=${1:-all}
n=${N:-100000}
command -v wrk >/dev/null || { [ "$(id -u)" -eq 0 ] && apt-get install -y -q wrk >/dev/null; } \
    || { echo "bench: install Debian's wrk" >&2; exit 1; }
scripts/browser/ensure-packages.sh >&2
cargo build --release --locked --bin caseflow --example inbox-load >&2
bin=$root/target/release/caseflow
load=$root/target/release/examples/inbox-load
password=inbox-bench-password

bench_backend() { # name, database URL
    local work port server agent jwt
    work=$(mktemp -d)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    export CASEFLOW__DATABASE__URL=$2 CASEFLOW__SERVER__BIND=127.0.0.1:$port CASEFLOW__METRICS__BIND=127.0.0.1:0
    export CASEFLOW__ROUTING__ENABLED=false CASEFLOW__RATE_LIMIT__ENABLED=false CASEFLOW__LOGGING__FILTER=warn RUST_LOG=warn
    "$bin" migrate >/dev/null
    agent=$(echo "$password" | "$bin" admin create-agent --email ina@bench.test --name "Ina Bench" --password-stdin \
        | grep -oE '[0-9a-f]{8}-[0-9a-f-]{27}' | head -n 1)
    echo
    echo "### $1 ($(nproc) cores; $n cases)"
    echo
    echo '```'
    "$load" seed "$2" "$n" "$agent"
    "$bin" serve >"$work/server.log" 2>&1 &
    server=$!
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
    jwt=$(curl -fs -X POST "http://127.0.0.1:$port/api/v1/auth/login" -H 'Content-Type: application/json' \
        -d "{\"email\":\"ina@bench.test\",\"password\":\"$password\"}" | python3 -c 'import sys, json; print(json.load(sys.stdin)["access_token"])')
    curl -fs -H "Authorization: Bearer $jwt" "http://127.0.0.1:$port/api/v1/inbox?view=open&limit=1" \
        | python3 -c 'import sys, json; print("view counts:", json.load(sys.stdin)["counts"])'
    for view in open mine breaching pending; do
        out=$(wrk --latency -t1 -c4 -d10s -H "Authorization: Bearer $jwt" "http://127.0.0.1:$port/api/v1/inbox?view=$view&limit=50")
        echo "GET /api/v1/inbox?view=$view&limit=50 (with counts): $(awk '/^Requests\/sec/ {print $2}' <<<"$out") req/s," \
            "p50 $(awk '$1 == "50%" {print $2}' <<<"$out"), p99 $(awk '$1 == "99%" {print $2}' <<<"$out")"
    done
    python3 bench/inbox_render.py "http://127.0.0.1:$port" ina@bench.test "$password" open 20
    echo '```'
    kill "$server"; wait "$server" 2>/dev/null || true
    rm -rf "$work"
}

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
bench_backends "$which"
