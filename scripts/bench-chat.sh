#!/usr/bin/env bash
# Live-chat load figures for docs/performance.md: the release server on loopback with an empty
# database, 1,000 concurrent visitor WebSockets and one agent socket (bench/chat_load.rs), once
# per backend. Reports the customer -> agent round trip and the visitor's acknowledgement time.
# Usage: scripts/bench-chat.sh [sqlite|postgres|all]
#   env: SESSIONS (1000), MESSAGES (5 per session), RATE (messages/s over all sessions, 200)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
which=${1:-all}
sessions=${SESSIONS:-1000}
messages=${MESSAGES:-5}
rate=${RATE:-200}
ulimit -n 65536 2>/dev/null || ulimit -n 8192
cargo build --release --locked --bin caseflow --example chat-load >&2
bin=$root/target/release/caseflow
load=$root/target/release/examples/chat-load

bench_backend() { # backend, database URL
    local backend=$1 url=$2 work port token
    work=$(mktemp -d)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    export CASEFLOW__DATABASE__URL=$url CASEFLOW__SERVER__BIND=127.0.0.1:$port CASEFLOW__METRICS__BIND=127.0.0.1:0
    export CASEFLOW__RATE_LIMIT__ENABLED=false CASEFLOW__LOGGING__FILTER=warn RUST_LOG=warn
    "$bin" migrate >/dev/null
    token=$("$bin" admin create-token --name bench --scopes read,write | tail -n 1)
    "$bin" serve >"$work/server.log" 2>&1 &
    local server=$!
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
    echo
    echo "### $backend ($(nproc) cores; $sessions sessions x $messages messages at $rate/s; load generator on the same cores)"
    echo
    echo '```'
    "$load" "http://127.0.0.1:$port" "$token" "$sessions" "$messages" "$rate"
    echo '```'
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
    db="chatbench_$(date +%s)"
    psql "$admin" -qc "CREATE DATABASE $db" >/dev/null
    bench_backend PostgreSQL "${admin%/*}/$db"
    scripts/pg.sh stop
fi
