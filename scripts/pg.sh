#!/usr/bin/env bash
# Throw-away PostgreSQL for tests, on 127.0.0.1 only, owned by this project (no systemd,
# no system cluster). Usage: scripts/pg.sh start|stop|status|url
#   CASEFLOW_PG_DIR   data directory (default: target/pg, wiped on start)
#   CASEFLOW_PG_PORT  port (default: 55432)
# Installs Debian's postgresql when it is missing and we are root; fails loudly otherwise.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
dir=${CASEFLOW_PG_DIR:-$here/target/pg}
port=${CASEFLOW_PG_PORT:-55432}
url="postgres://caseflow@127.0.0.1:${port}/postgres"

find_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

ensure_installed() {
    local bin
    bin=$(find_bin)
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
        if [ "$(id -u)" -ne 0 ]; then
            echo "pg.sh: PostgreSQL is not installed and we are not root; install Debian's 'postgresql' package" >&2
            exit 1
        fi
        echo "pg.sh: installing Debian's postgresql package" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql >&2 || {
            apt-get update >&2
            DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql >&2
        }
        bin=$(find_bin)
    fi
    [ -x "$bin/initdb" ] || { echo "pg.sh: initdb not found after install" >&2; exit 1; }
    echo "$bin"
}

# PostgreSQL refuses to run as root: run its tools as the 'postgres' system user then.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

running() {
    [ -f "$dir/data/postmaster.pid" ] && as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1
}

cmd=${1:-start}
case "$cmd" in
start)
    bin=$(ensure_installed)
    if running; then
        echo "$url"
        exit 0
    fi
    rm -rf "$dir"
    mkdir -p "$dir/data" "$dir/run"
    [ "$(id -u)" -eq 0 ] && chown -R postgres "$dir"
    as_pg "$bin/initdb" -D "$dir/data" -U caseflow -A trust --no-sync -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || as_pg "$bin/initdb" -D "$dir/data" -U caseflow -A trust --no-sync -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; echo "pg.sh: initdb failed" >&2; exit 1; }
    # Durability is irrelevant for a throw-away test cluster; speed is not. Benchmarks set
    # CASEFLOW_PG_DURABLE=1 to measure with PostgreSQL's durable defaults.
    opts="-p $port -k $dir/run -c listen_addresses=127.0.0.1 -c max_connections=300"
    [ "${CASEFLOW_PG_DURABLE:-0}" = 1 ] || opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start -o "$opts" \
        >/dev/null || { cat "$dir/server.log" >&2; echo "pg.sh: PostgreSQL did not start" >&2; exit 1; }
    echo "$url"
    ;;
stop)
    bin=$(find_bin)
    if [ -n "$bin" ] && running; then
        as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    fi
    ;;
status)
    bin=$(find_bin)
    if [ -n "$bin" ] && running; then echo "running: $url"; else echo "stopped"; exit 1; fi
    ;;
url)
    echo "$url"
    ;;
*)
    echo "usage: $0 start|stop|status|url" >&2
    exit 2
    ;;
esac
