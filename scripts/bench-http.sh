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

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

bench_backend() { # backend, database URL
    local backend=$1 case_id
    bench_server_start "$2"
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
    bench_server_stop
}

bench_backends "$which"
