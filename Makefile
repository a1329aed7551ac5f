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
# make bench: each timed scenario's measured time (defaults match the targets),
# which scenarios (empty: all but find-max), the drain's backlog and bound.
BENCH_DURATION ?= 60s
BENCH_SCENARIOS ?=
BENCH_DRAIN_EVENTS ?= 1000000
BENCH_DRAIN_TIMEOUT ?= 3m
BENCH_OUT := test-artifacts/bench
FUZZTIME ?= 10s
# Every fuzz target as package:Function. Their seeds (f.Add and
# testdata/fuzz/<Function>/) run in every `go test`; `make fuzz` mutates
# them for FUZZTIME each.
FUZZ_TARGETS := ./internal/httpx:FuzzValidID ./queries:FuzzConsistencyToken ./queries:FuzzCursor \
	./streams/hub:FuzzClientFrame
PGSCRIPT := scripts/postgres.sh

.PHONY: help build run test vet lint bench bench-go fuzz clean pg-up pg-down pg-status race-toolchain kcat promtool browser-deps deploy-check

help: ## list the targets
	@echo "usage: make <target>"
	@awk 'BEGIN { FS = ":.*## " } /^[a-z][a-z-]*:.*## / { printf "  %-10s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
	@echo "env: DATABASE_URL (use this server), ORDERFLOW_PG_PORT (local cluster port, default 55432),"
	@echo "     KAFKA_BROKERS (real Kafka instead of the embedded broker),"
	@echo "     bench: BENCH_DURATION (60s), BENCH_SCENARIOS, BENCH_DRAIN_EVENTS, BENCH_DRAIN_TIMEOUT; bench-go: BENCH, BENCHTIME"

build: ## build bin/orderflow
	$(GO) build -o bin/orderflow ./cmd/orderflow

# Development authentication: the server trusts the local development key
# (.run/dev-jwt/, made on first use) and says so loudly; the token printed
# here opens the dashboard (the #token fragment never reaches a server).
# The events topic is signed with this checkout's development key
# (.pgdata/kafka-signing-keys, made by scripts/dev-signing-keys.sh) unless a
# key is configured, and personal data with its development master key
# (.pgdata/pii-master-keys, scripts/dev-pii-keys.sh).
run: build pg-up ## build, ensure PostgreSQL, serve every role with development authentication (prints a token)
	@tok="$$(bin/orderflow token --sub dev --role staff,analyst,admin --ttl 12h)"; \
	echo "development token (sub dev; staff, analyst, admin; 12 h), for curl -H \"Authorization: Bearer \$$TOKEN\":"; \
	echo "  export TOKEN=$$tok"; \
	echo "dashboard: http://127.0.0.1:9090/#token=$$tok"; \
	echo "more: bin/orderflow token --sub c-42 --role customer"
	@if [[ -z "$${ORDERFLOW_KAFKA_SIGNING_KEYS:-}$${ORDERFLOW_KAFKA_SIGNING_KEYS_FILE:-}" ]]; then \
		export ORDERFLOW_KAFKA_SIGNING_KEYS_FILE="$$(scripts/dev-signing-keys.sh)"; \
	fi; \
	if [[ -z "$${ORDERFLOW_PII_MASTER_KEYS:-}$${ORDERFLOW_PII_MASTER_KEYS_FILE:-}" ]]; then \
		export ORDERFLOW_PII_MASTER_KEYS_FILE="$$(scripts/dev-pii-keys.sh)"; \
	fi; \
	DATABASE_URL="$$($(PGSCRIPT) url)" ORDERFLOW_AUTH_DEV=true exec bin/orderflow serve

# Order matters and any failure stops the run: vet, then lint, then tests.
test: race-toolchain kcat promtool browser-deps pg-up ## go vet, lint, then every test with -race against PostgreSQL (scripts/test.sh)
	DATABASE_URL="$$($(PGSCRIPT) url)" scripts/test.sh

vet: ## go vet ./...
	$(GO) vet ./...

lint: ## gofmt check and staticcheck (installed into bin/ at a pinned version)
	scripts/lint.sh

# The system benchmarks: the built binary served on fresh databases, pgbench in
# the same run as the bound; one table, and $(BENCH_OUT)/bench.{json,html}.
bench: build pg-up ## system benchmarks vs pgbench (BENCH_DURATION=60s, ~15 min); report in test-artifacts/bench/
	DATABASE_URL="$$($(PGSCRIPT) url)" bin/orderflow bench suite --out '$(BENCH_OUT)' \
		--duration '$(BENCH_DURATION)' --scenarios '$(BENCH_SCENARIOS)' \
		--drain-events '$(BENCH_DRAIN_EVENTS)' --drain-timeout '$(BENCH_DRAIN_TIMEOUT)' --log-level warn

bench-go: pg-up ## the go test benchmarks (BENCH=regexp, BENCHTIME=1s|100x)
	DATABASE_URL="$$($(PGSCRIPT) url)" \
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime '$(BENCHTIME)' -benchmem -timeout 60m ./...

# Not part of make test: 40 s of two busy cores buy little on every run,
# and the seeds already run there. A failure leaves its input in the
# package's testdata/fuzz/<Function>/: commit it with the fix.
fuzz: ## fuzz every target for FUZZTIME (default 10s) each
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzz: $${t%%:*} $${t##*:} for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$${t##*:}$$" -fuzztime '$(FUZZTIME)' "$${t%%:*}"; \
	done

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
	@cc="$$($(GO) env CC)"; scripts/need.sh "$${cc%% *}" "go test -race needs cgo and a C compiler" gcc libc6-dev

# The relay's tests run the README's kcat example against a real broker.
kcat:
	@scripts/need.sh kcat "the README's Kafka example is tested" kcat

# deploy/'s alert rules are checked and unit-tested with promtool.
promtool:
	@scripts/need.sh promtool "deploy/prometheus/alerts.yaml is tested" prometheus

deploy-check: promtool ## validate deploy/: alert rules and tests, the Kubernetes manifests (scripts/deploy-check.sh)
	scripts/deploy-check.sh

# The dashboard's browser test (web/browser_test.go) drives Debian's chromium
# through playwright-core; no browser is ever downloaded.
browser-deps: web/e2e/node_modules/.package-lock.json ## install the browser test's chromium (apt-get) and npm packages
	@scripts/need.sh /usr/bin/chromium "the dashboard's browser test" chromium

web/e2e/node_modules/.package-lock.json: web/e2e/package.json web/e2e/package-lock.json
	@scripts/need.sh npm "the browser test runs playwright-core" nodejs npm
	cd web/e2e && npm ci --no-audit --no-fund
	@touch $@
