#!/usr/bin/env bash
# The satisfaction survey sweep's query on SQLite with many solved, already surveyed cases
# (docs/performance.md). Usage: scripts/bench-satisfaction.sh [N cases, default 100000]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cargo build --locked --bin caseflow 2>/dev/null
if ! CASEFLOW__DATABASE__URL="sqlite://$dir/bench.db" target/debug/caseflow migrate >"$dir/migrate.log" 2>&1; then
    cat "$dir/migrate.log" >&2
    exit 1
fi
python3 bench/satisfaction_sweep.py "$dir/bench.db" "${1:-100000}"
