#!/usr/bin/env bash
# Instructions per request (user space: the server, its libraries and SQLite) for
# GET /healthz and GET /api/v1/cases/{id}, counted by valgrind's callgrind. Unlike requests/s,
# the count does not depend on what else the machine is doing, so it shows what a change to the
# request path costs (docs/performance.md). Kernel time (sockets, thread hand-offs) is not in it.
# Usage: scripts/bench-instructions.sh        env: DURATION (s per endpoint, default 10)
# The count includes the server's background work during the run (the SQLite checkpointer,
# the workers' polls), spread over the requests: a few hundred instructions per request.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
duration=${DURATION:-10}
command -v valgrind >/dev/null || { echo "bench: install Debian's valgrind" >&2; exit 1; }
command -v wrk >/dev/null || { echo "bench: install Debian's wrk" >&2; exit 1; }
cargo build --release --locked --bin caseflow >&2
bin=$root/target/release/caseflow
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

out=$(mktemp -d)
dir=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && bench_server_stop; rm -rf "$out" "$dir"; }
trap cleanup EXIT
export CASEFLOW__SERVER__WORKERS=1
BENCH_WRAP="valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=$out/cg.out" \
    bench_server_start "sqlite://$dir/bench.db"
case_id=$(curl -fs -X POST "http://127.0.0.1:$port/api/v1/cases" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' \
    -d '{"subject":"Bench","body":"read me","customer":{"email":"bench@example.org"}}' \
    | python3 -c 'import sys, json; print(json.load(sys.stdin)["id"])')
# Warm up (caches, prepared statements), then count one endpoint at a time.
for _ in $(seq 1 50); do
    curl -fs -o /dev/null -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/cases/$case_id"
    curl -fs -o /dev/null "http://127.0.0.1:$port/healthz"
done
measure() { # label, then wrk args; prints "| label | requests | instructions/request |"
    local label=$1; shift
    callgrind_control -i on "$server" >/dev/null
    local n report
    report=$(wrk -t1 -c4 -d"${duration}s" "$@")
    n=$(awk '/requests in/ {print $1}' <<<"$report")
    if grep -q "Non-2xx" <<<"$report" || [ -z "$n" ] || [ "$n" -eq 0 ]; then
        echo "bench: $label: no requests counted, or non-2xx answers:" >&2; echo "$report" >&2; exit 1
    fi
    callgrind_control -i off "$server" >/dev/null
    callgrind_control -d "$server" >/dev/null
    local file total
    file=$(ls -t "$out"/cg.out.* | head -n 1)
    total=$(callgrind_annotate "$file" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
    [ -n "$total" ] || { echo "bench: callgrind_annotate read nothing from $file" >&2; exit 1; }
    echo "| $label | $n | $((total / n)) |"
}
echo "| endpoint | requests counted | instructions per request |"
echo "| --- | --- | --- |"
measure "GET /healthz (baseline)" "http://127.0.0.1:$port/healthz"
measure "GET /api/v1/cases/{id} (API token)" -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/cases/$case_id"
