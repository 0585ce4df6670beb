# Shared by the benchmark scripts (sourced): start the release server on a free loopback port
# with rate limits off, and run a `bench_backend NAME URL` function once per backend.
# Needs: $root (the checkout) and $bin (the release binary).

# Starts the server on database $1; sets $port, $token (an API token), $server and $work.
bench_server_start() {
    work=$(mktemp -d)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    export CASEFLOW__DATABASE__URL=$1 CASEFLOW__SERVER__BIND=127.0.0.1:$port CASEFLOW__METRICS__BIND=${BENCH_METRICS_BIND:-127.0.0.1:0}
    export CASEFLOW__RATE_LIMIT__ENABLED=false CASEFLOW__LOGGING__FILTER=warn RUST_LOG=warn
    "$bin" migrate >/dev/null
    token=$("$bin" admin create-token --name bench --scopes "${BENCH_SCOPES:-read,write}" | tail -n 1)
    # BENCH_WRAP: a command to run the server under (valgrind for scripts/bench-instructions.sh).
    ${BENCH_WRAP:-} "$bin" serve >"$work/server.log" 2>&1 &
    server=$!
    for _ in $(seq 1 600); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
}

bench_server_stop() {
    kill "$server"; wait "$server" 2>/dev/null || true
    rm -rf "$work"
}

# Calls bench_backend for SQLite (a fresh file) and/or PostgreSQL (a fresh database in a
# separate, durable cluster with fsync on, not the test one), as $1 (sqlite|postgres|all) says.
bench_backends() {
    local which=$1 dir admin db
    if [ "$which" = sqlite ] || [ "$which" = all ]; then
        dir=$(mktemp -d)
        bench_backend SQLite "sqlite://$dir/bench.db"
        rm -rf "$dir"
    fi
    if [ "$which" = postgres ] || [ "$which" = all ]; then
        export CASEFLOW_PG_DIR=$root/target/pg-bench CASEFLOW_PG_PORT=55433 CASEFLOW_PG_DURABLE=1
        admin=$(scripts/pg.sh start)
        db="bench_$(date +%s)"
        psql "$admin" -qc "CREATE DATABASE $db" >/dev/null
        bench_backend PostgreSQL "${admin%/*}/$db"
        scripts/pg.sh stop
    fi
}
