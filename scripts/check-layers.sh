#!/usr/bin/env bash
# Fails when a crate depends on something its layer must not (see docs/architecture.md):
# core does no I/O; store knows no HTTP; app knows no HTTP; api knows no SQL.
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
forbid() { # depth ("all" or 1), crate, then forbidden dependency names
    local depth=$1 crate=$2; shift 2
    local tree args=()
    [ "$depth" = all ] || args=(--depth "$depth")
    tree=$(cargo tree --locked -p "$crate" -e normal "${args[@]}" --prefix none --format '{p}' | awk '{print $1}' | sort -u)
    for dep in "$@"; do
        if grep -qx "$dep" <<<"$tree"; then
            echo "layering: $crate must not depend on $dep" >&2
            fail=1
        fi
    done
}
# Anywhere in the tree: the domain and anything that reaches the HTTP stack.
forbid all caseflow-core tokio diesel actix-web reqwest caseflow-store caseflow-app caseflow-api
# Pure engines and parsers: no runtime, no database, no HTTP.
forbid all caseflow-ingest tokio diesel actix-web reqwest caseflow-store caseflow-app caseflow-api
forbid all caseflow-routing tokio diesel actix-web reqwest caseflow-store caseflow-app caseflow-api
forbid all caseflow-sla tokio diesel actix-web reqwest caseflow-store caseflow-app caseflow-api
forbid all caseflow-store actix-web actix-http caseflow-app caseflow-api
forbid all caseflow-app actix-web actix-http caseflow-api
# Email adapters speak IMAP/SMTP and call use cases: no HTTP, no SQL of their own.
forbid all caseflow-mail actix-web actix-http caseflow-api
forbid 1 caseflow-mail diesel caseflow-store
# Direct dependencies: handlers reach storage only through use cases.
forbid 1 caseflow-api diesel caseflow-store
[ "$fail" -eq 0 ] && echo "layering ok"
exit "$fail"
