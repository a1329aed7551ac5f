#!/usr/bin/env bash
# The whole suite, as `make test` runs it (DATABASE_URL set by the Makefile):
# go vet, lint, deploy/'s checks (scripts/deploy-check.sh), then every test
# with -race, a short fuzz run, and at the end each package's time, slowest
# first, and the wall time.
#
# gotestsum (pinned, installed into bin/ like staticcheck) runs go test and
# prints one line per package as it finishes plus every failure in full; the
# complete go test -json stream is kept in test-artifacts/go-test.json.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

GOTESTSUM_VERSION=v1.13.0
GO="${GO:-go}"
BIN="$PWD/bin"
ART="$PWD/test-artifacts"
# Tests that have their own database and broker run in parallel: most of
# their time is spent waiting on PostgreSQL and the broker, not on the CPU.
PARALLEL="${TEST_PARALLEL:-4}"

if ! "$BIN/gotestsum" --version 2>/dev/null | grep -qF "${GOTESTSUM_VERSION#v}"; then
	echo "test: installing gotestsum $GOTESTSUM_VERSION into bin/" >&2
	GOBIN="$BIN" "$GO" install "gotest.tools/gotestsum@$GOTESTSUM_VERSION"
fi
mkdir -p "$ART"
began=$SECONDS

"$GO" vet ./...
scripts/lint.sh
scripts/deploy-check.sh

status=0
"$BIN/gotestsum" --format pkgname-and-test-fails --jsonfile "$ART/go-test.json" -- \
	-race -count=1 -timeout 20m -parallel "$PARALLEL" ./... || status=$?

# A short mutating run of every fuzz target (their seeds already ran above):
# a thousand inputs each, a count rather than a duration, because a timed
# run on a busy machine can end inside the fuzzer's own start-up and fail
# with "context deadline exceeded"; `make fuzz` runs longer. A failing input lands in testdata/fuzz/: commit it with the fix.
echo
make --no-print-directory fuzz FUZZTIME="${TEST_FUZZTIME:-1000x}" || status=$?

# A package's own line in go test -json has no "Test" field and, when it
# ends, an "Elapsed": pick those out, slowest first.
echo
echo "time per package (slowest first):"
grep -E '"Action":"(pass|fail)","Package":"[^"]*","Elapsed"' "$ART/go-test.json" |
	sed -E 's/.*"Action":"([a-z]+)","Package":"([^"]*)","Elapsed":([0-9.]+).*/\3 \1 \2/' |
	sort -rn | awk '{ printf "  %7.1fs  %-4s %s\n", $1, $2, $3 }'
echo "make test: $((SECONDS - began)) s wall time (vet, lint and tests)"
exit "$status"
