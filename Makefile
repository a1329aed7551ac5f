# orderflow developer entry points; `make` alone lists them.
#
# PostgreSQL: scripts/postgres.sh. With DATABASE_URL set, that server is used;
# otherwise a project-local cluster in .pgdata/ on 127.0.0.1:$ORDERFLOW_PG_PORT
# (default 55432) is created and started. Other environment variables
# (KAFKA_BROKERS, ...) pass through to the commands untouched.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-print-directory

GO ?= go
BENCH ?= .
BENCHTIME ?= 1s
PGSCRIPT := scripts/postgres.sh

.PHONY: help build run test vet lint bench clean pg-up pg-down pg-status race-toolchain kcat browser-deps

help: ## list the targets
	@echo "usage: make <target>"
	@awk 'BEGIN { FS = ":.*## " } /^[a-z][a-z-]*:.*## / { printf "  %-10s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
	@echo "env: DATABASE_URL (use this server), ORDERFLOW_PG_PORT (local cluster port, default 55432),"
	@echo "     KAFKA_BROKERS (real Kafka instead of the embedded broker), BENCH, BENCHTIME"

build: ## build bin/orderflow
	$(GO) build -o bin/orderflow ./cmd/orderflow

run: build pg-up ## build, ensure PostgreSQL, serve every role
	DATABASE_URL="$$($(PGSCRIPT) url)" exec bin/orderflow serve

# Order matters and any failure stops the run: vet, then lint, then tests.
test: race-toolchain kcat browser-deps pg-up ## go vet, lint, then every test with -race against PostgreSQL
	DATABASE_URL="$$($(PGSCRIPT) url)"; export DATABASE_URL; \
	$(GO) vet ./...; \
	scripts/lint.sh; \
	$(GO) test -race -count=1 -timeout 20m ./...

vet: ## go vet ./...
	$(GO) vet ./...

lint: ## gofmt check and staticcheck (installed into bin/ at a pinned version)
	scripts/lint.sh

bench: pg-up ## run the benchmarks (BENCH=regexp, BENCHTIME=1s|100x)
	DATABASE_URL="$$($(PGSCRIPT) url)" \
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime '$(BENCHTIME)' -benchmem -timeout 60m ./...

clean: ## remove build outputs (keeps the database in .pgdata/)
	rm -rf bin test-artifacts

pg-up: ## ensure PostgreSQL is running (see scripts/postgres.sh)
	$(PGSCRIPT) up

pg-down: ## stop the project-local PostgreSQL (rm -rf .pgdata afterwards to reset it)
	$(PGSCRIPT) down

pg-status: ## is the project-local PostgreSQL running?
	$(PGSCRIPT) status

# -race needs cgo, hence a C compiler, which a Go-only machine may lack.
race-toolchain:
	@cc="$$($(GO) env CC)"; cc="$${cc%% *}"; \
	if ! command -v "$$cc" >/dev/null 2>&1; then \
		if [[ $$(id -u) == 0 ]] && command -v apt-get >/dev/null; then \
			echo "make: go test -race needs cgo and a C compiler; installing gcc with apt-get" >&2; \
			DEBIAN_FRONTEND=noninteractive apt-get update -qq -o DPkg::Lock::Timeout=600 </dev/null; \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends gcc libc6-dev </dev/null; \
		else \
			echo "make: go test -race needs cgo and a C compiler ($$cc not found): apt-get install gcc libc6-dev" >&2; \
			exit 1; \
		fi; \
	fi

# The relay's tests run the README's kcat example against a real broker.
kcat:
	@if ! command -v kcat >/dev/null 2>&1; then \
		if [[ $$(id -u) == 0 ]] && command -v apt-get >/dev/null; then \
			echo "make: installing kcat with apt-get (the README's Kafka example is tested)" >&2; \
			DEBIAN_FRONTEND=noninteractive apt-get update -qq -o DPkg::Lock::Timeout=600 </dev/null; \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends kcat </dev/null; \
		else \
			echo "make: the tests need kcat: apt-get install kcat" >&2; \
			exit 1; \
		fi; \
	fi

# The dashboard's browser test (web/browser_test.go) drives Debian's chromium
# through playwright-core; no browser is ever downloaded.
browser-deps: web/e2e/node_modules/.package-lock.json ## install the browser test's chromium (apt-get) and npm packages
	@if [[ ! -x /usr/bin/chromium ]]; then \
		if [[ $$(id -u) == 0 ]] && command -v apt-get >/dev/null; then \
			echo "make: installing chromium with apt-get (the dashboard's browser test)" >&2; \
			DEBIAN_FRONTEND=noninteractive apt-get update -qq -o DPkg::Lock::Timeout=600 </dev/null; \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends chromium </dev/null; \
		else \
			echo "make: the browser test needs /usr/bin/chromium: apt-get install chromium" >&2; \
			exit 1; \
		fi; \
	fi

web/e2e/node_modules/.package-lock.json: web/e2e/package.json web/e2e/package-lock.json
	@command -v npm >/dev/null || { echo "make: the browser test needs Node.js 20+ and npm" >&2; exit 1; }
	cd web/e2e && npm ci --no-audit --no-fund
	@touch $@
