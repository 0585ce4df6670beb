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

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

bench_backend() { # backend, database URL
    bench_server_start "$2"
    echo
    echo "### $1 ($(nproc) cores; $sessions sessions x $messages messages at $rate/s; load generator on the same cores)"
    echo
    echo '```'
    "$load" "http://127.0.0.1:$port" "$token" "$sessions" "$messages" "$rate"
    echo '```'
    bench_server_stop
}

bench_backends "$which"
