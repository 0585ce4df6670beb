#!/usr/bin/env bash
# Contract test with a tool nobody here wrote: schemathesis generates requests from our
# OpenAPI document and checks every response against it (no 5xx, documented status codes,
# content types, headers and body schemas). Runs against the real server with an integrator
# token, on a throw-away SQLite database.
#   CASEFLOW_BIN        server binary (default: target/debug/caseflow, built if missing)
#   CONTRACT_EXAMPLES   examples per operation (default 30)
#   CONTRACT_SEED       hypothesis seed (default 1: reproducible in CI; set another to explore)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

venv=$root/.venv
if [ ! -x "$venv/bin/st" ] || ! cmp -s scripts/contract-requirements.txt "$venv/.requirements"; then
    echo "contract: creating $venv with schemathesis (scripts/contract-requirements.txt)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/contract-requirements.txt
    cp scripts/contract-requirements.txt "$venv/.requirements"
fi

bin=${CASEFLOW_BIN:-$root/target/debug/caseflow}
[ -x "$bin" ] || cargo build --locked --bin caseflow

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export CASEFLOW__DATABASE__URL="sqlite://$work/caseflow.db"
export CASEFLOW__SERVER__BIND="127.0.0.1:$port"
export CASEFLOW__SERVER__PUBLIC_URL="http://127.0.0.1:$port"
export CASEFLOW__METRICS__BIND="127.0.0.1:0"
# The fuzzer sends thousands of requests from one token: rate limits would only test themselves.
export CASEFLOW__RATE_LIMIT__ENABLED=false
# Subscriptions the fuzzer creates must not make the server call random hosts.
export CASEFLOW__WEBHOOKS__ENABLED=false
export RUST_LOG=warn

"$bin" migrate >/dev/null
token=$("$bin" admin create-token --name contract-test --scopes admin | tail -n 1)
"$bin" serve >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done

# Revoking API tokens is excluded: the fuzzer would revoke the very token it runs with, and
# every later request would test nothing but 401. The alert stream is excluded because it
# never ends (an event stream); tests/e2e/sla.rs reads it.
"$venv/bin/st" run "http://127.0.0.1:$port/api/v1/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
    --exclude-operation-id revoke_api_token \
    --exclude-operation-id alerts_stream \
    --exclude-operation-id case_stream \
    --max-examples "${CONTRACT_EXAMPLES:-30}" \
    --seed "${CONTRACT_SEED:-1}" \
    --workers 1 \
    --no-color
if grep -q "panicked" "$work/server.log"; then
    echo "contract: the server panicked:" >&2
    grep -A5 panicked "$work/server.log" >&2
    exit 1
fi
