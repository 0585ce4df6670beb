#!/usr/bin/env bash
# SLA scheduler figures for docs/performance.md: a database seeded with N open cases whose
# next milestones lie weeks ahead and K urgent cases whose breaches fall due over one minute
# (bench/sla_load.rs), then the release server (routing off, to measure the scheduler alone):
# breach lag, CPU while breaches fall due and while idle, memory. Once per backend.
# Usage: scripts/bench-sla.sh [sqlite|postgres|all]   env: N (1000000), K (6000)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
which=${1:-all}
n=${N:-1000000}
k=${K:-6000}
cargo build --release --locked --bin caseflow --example sla-load >&2
bin=$root/target/release/caseflow
load=$root/target/release/examples/sla-load

bench_backend() { # name, database URL
    local work port server
    work=$(mktemp -d)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    export CASEFLOW__DATABASE__URL=$2 CASEFLOW__SERVER__BIND=127.0.0.1:$port CASEFLOW__ROUTING__ENABLED=false
    export CASEFLOW__LOGGING__FILTER=warn RUST_LOG=warn
    "$bin" migrate >/dev/null
    echo
    echo "### $1 ($(nproc) cores; $n background cases, $k breaches over one minute)"
    echo
    echo '```'
    "$load" seed "$2" "$n" "$k"
    "$bin" serve >"$work/server.log" 2>&1 &
    server=$!
    "$load" measure "$2" "$k" "$server"
    echo '```'
    kill "$server"; wait "$server" 2>/dev/null || true
    rm -rf "$work"
}

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
bench_backends "$which"
