#!/usr/bin/env bash
# End-to-end routing figures for docs/performance.md: the release server on loopback with an
# empty database, driven over HTTP by bench/routing_load.rs, once per backend: cases created,
# a backlog drained when agents come online (assignments/s), and creation -> assignment latency
# at a steady rate.
# Usage: scripts/bench-routing.sh [sqlite|postgres|all]
#   env: AGENTS (200), BACKLOG (10000), STEADY (2000), RATE (200 cases/s)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
which=${1:-all}
agents=${AGENTS:-200}
backlog=${BACKLOG:-10000}
steady=${STEADY:-2000}
rate=${RATE:-200}
cargo build --release --locked --bin caseflow --example routing-load >&2
bin=$root/target/release/caseflow
load=$root/target/release/examples/routing-load

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

bench_backend() { # backend, database URL
    local mport
    mport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    BENCH_METRICS_BIND=127.0.0.1:$mport BENCH_SCOPES=read,write,admin bench_server_start "$2"
    echo
    echo "### $1 ($(nproc) cores; $agents agents, $backlog backlog, $steady at $rate/s; load generator on the same cores)"
    echo
    echo '```'
    "$load" "http://127.0.0.1:$port" "$token" "http://127.0.0.1:$mport/metrics" "$agents" "$backlog" "$steady" "$rate"
    echo '```'
    bench_server_stop
}

bench_backends "$which"
