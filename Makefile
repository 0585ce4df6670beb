# Caseflow: thin wrappers around cargo and the project's scripts. `make help` lists targets.
CARGO ?= cargo

.PHONY: help run test contract-test bench lint fmt layers build pg-start pg-stop ci clean-data

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

run: ## build, migrate data/caseflow.db, seed demo data when empty, serve on 127.0.0.1:8080
	$(CARGO) run --locked --bin caseflow -- serve --demo

test: ## every test: unit, storage and end-to-end on SQLite and a throw-away PostgreSQL, then the contract test
	@scripts/test.sh

contract-test: ## schemathesis against the running server's OpenAPI document
	@scripts/contract-test.sh

lint: fmt layers ## formatting, clippy with warnings as errors, crate layering
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt: ## check formatting
	$(CARGO) fmt --all --check

layers: ## prove the dependency direction of ARCHITECTURE.md with cargo tree
	@scripts/check-layers.sh

bench: ## criterion benchmarks of pure crates, then HTTP load figures (release build, wrk)
	@scripts/bench-http.sh all

build: ## debug build of everything
	$(CARGO) build --workspace --locked

pg-start: ## start the throw-away test PostgreSQL and print its URL (export CASEFLOW_TEST_POSTGRES_URL=...)
	@scripts/pg.sh start

pg-stop: ## stop the throw-away test PostgreSQL
	@scripts/pg.sh stop

ci: lint test ## what CI runs after installing system packages

clean-data: ## delete the local SQLite database used by `make run`
	rm -rf data
