#!/usr/bin/env bash
# End-to-end email ingest figures for docs/performance.md: a real Dovecot (scripts/mail/) and
# the release `caseflow serve` reading it over IMAP (bench/ingest.py does the work).
#   - a backlog of COUNT (10,000) messages drained into committed cases (target >= 1,000 msg/s)
#   - a steady RATE (100) msg/s for DURATION (30) s: APPEND-to-commit latency p50/p99
# Usage: scripts/bench-ingest.sh [sqlite|postgres|all]
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
count=${COUNT:-10000}
rate=${RATE:-100}
duration=${DURATION:-30}
scripts/mail/ensure-packages.sh
cargo build --release --locked --bin caseflow >&2
bin=target/release/caseflow

echo "| backend | workload | result | |"
echo "| --- | --- | --- | --- |"
if [ "$which" = sqlite ] || [ "$which" = all ]; then
    for mode in backlog steady; do
        dir=$(mktemp -d)
        /usr/bin/python3 bench/ingest.py "$bin" sqlite "sqlite://$dir/bench.db" $mode \
            --count "$count" --rate "$rate" --duration "$duration" 2>/dev/null
        rm -rf "$dir"
    done
fi
if [ "$which" = postgres ] || [ "$which" = all ]; then
    admin=$(scripts/pg.sh start)
    trap 'scripts/pg.sh stop' EXIT
    for mode in backlog steady; do
        name=bench_ingest_$(date +%s%N)
        psql "$admin" -qc "CREATE DATABASE $name"
        /usr/bin/python3 bench/ingest.py "$bin" postgres "${admin%/*}/$name" $mode \
            --count "$count" --rate "$rate" --duration "$duration" 2>/dev/null
    done
fi
