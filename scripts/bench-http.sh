#!/usr/bin/env bash
# End-to-end HTTP load figures for docs/performance.md: the release server on loopback, loaded
# with wrk (Debian) in one run per backend:
#   - GET /healthz                     (trivial endpoint of the same server: the baseline)
#   - GET /api/v1/cases/{id}            (authenticated read; target: >= 50% of the baseline)
#   - POST /api/v1/cases                (cases created per second)
#   - POST /api/v1/public/support       (web-form cases per second, with the acknowledgement)
# Usage: scripts/bench-http.sh [sqlite|postgres|all]   env: DURATION (s, default 10), CONNECTIONS (32)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
which=${1:-all}
duration=${DURATION:-10}
conns=${CONNECTIONS:-32}

command -v wrk >/dev/null || { [ "$(id -u)" -eq 0 ] && apt-get install -y -q wrk >/dev/null; } \
    || { echo "bench: install Debian's wrk" >&2; exit 1; }
cargo build --release --locked --bin caseflow >&2
bin=$root/target/release/caseflow

run_wrk() { # label, then wrk args; prints "label | req/s | p50 | p99"
    local label=$1; shift
    local out
    out=$(wrk --latency -t2 -c"$conns" -d"${duration}s" "$@")
    local rps p50 p99 errors
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    errors=$(awk '/Non-2xx or 3xx responses/ {print $5}' <<<"$out")
    echo "| $label | $rps | $p50 | $p99 | ${errors:-0} |"
}

bench_backend() { # backend, database URL
    local backend=$1 url=$2 work port token case_id
    work=$(mktemp -d)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    export CASEFLOW__DATABASE__URL=$url CASEFLOW__SERVER__BIND=127.0.0.1:$port CASEFLOW__METRICS__BIND=127.0.0.1:0
    export CASEFLOW__RATE_LIMIT__ENABLED=false CASEFLOW__LOGGING__FILTER=warn RUST_LOG=warn
    "$bin" migrate >/dev/null
    token=$("$bin" admin create-token --name bench --scopes read,write | tail -n 1)
    "$bin" serve >"$work/server.log" 2>&1 &
    local server=$!
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
    case_id=$(curl -fs -X POST "http://127.0.0.1:$port/api/v1/cases" -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/json' \
        -d '{"subject":"Bench","body":"read me","customer":{"email":"bench@example.org"}}' \
        | python3 -c 'import sys, json; print(json.load(sys.stdin)["id"])')
    echo
    echo "### $backend ($(nproc) cores, wrk -t2 -c$conns -d${duration}s)"
    echo
    echo "| endpoint | requests/s | p50 | p99 | non-2xx |"
    echo "| --- | --- | --- | --- | --- |"
    run_wrk "GET /healthz (baseline)" "http://127.0.0.1:$port/healthz"
    run_wrk "GET /api/v1/cases/{id} (API token)" -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/cases/$case_id"
    CASEFLOW_BENCH_TOKEN=$token run_wrk "POST /api/v1/cases" -s bench/create_case.lua "http://127.0.0.1:$port/api/v1/cases"
    run_wrk "POST /api/v1/public/support (web form)" -s bench/support_form.lua "http://127.0.0.1:$port/api/v1/public/support"
    kill $server; wait $server 2>/dev/null || true
    rm -rf "$work"
}

if [ "$which" = sqlite ] || [ "$which" = all ]; then
    dir=$(mktemp -d)
    bench_backend SQLite "sqlite://$dir/bench.db"
    rm -rf "$dir"
fi
if [ "$which" = postgres ] || [ "$which" = all ]; then
    # A separate, durable cluster (fsync on), not the test one.
    export CASEFLOW_PG_DIR=$root/target/pg-bench CASEFLOW_PG_PORT=55433 CASEFLOW_PG_DURABLE=1
    admin=$(scripts/pg.sh start)
    db="bench_$(date +%s)"
    psql "$admin" -qc "CREATE DATABASE $db" >/dev/null
    bench_backend PostgreSQL "${admin%/*}/$db"
    scripts/pg.sh stop
fi
