#!/usr/bin/env bash
# `make test`: every test. Starts the throw-away PostgreSQL (failing loudly when it cannot),
# runs the Rust suites on SQLite and PostgreSQL, then the schemathesis contract test.
set -uo pipefail
cd "$(dirname "$0")/.."

url=$(scripts/pg.sh start) || { echo "make test: PostgreSQL could not be started" >&2; exit 1; }
trap 'scripts/pg.sh stop' EXIT
echo "PostgreSQL for tests: $url"
scripts/mail/ensure-packages.sh || { echo "make test: the IMAP/SMTP test servers could not be installed" >&2; exit 1; }
scripts/browser/ensure-packages.sh || { echo "make test: Chromium, chromedriver and Firefox could not be installed" >&2; exit 1; }
export CASEFLOW_TEST_POSTGRES_URL=$url

status=0
if command -v cargo-nextest >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast || status=1
else
    cargo test --workspace --locked --no-fail-fast || status=1
fi
echo "== contract test (schemathesis against the OpenAPI document) =="
scripts/contract-test.sh || status=1
exit $status
