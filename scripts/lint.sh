#!/usr/bin/env bash
# Lint: gofmt, staticcheck (config: staticcheck.conf) over ./..., gosec over
# the production code, and the dependency rules of the design
# (scripts/deps.sh).
# staticcheck and gosec are installed into ./bin at the pinned versions when
# missing or different, so every machine and CI run the same checks.
# gosec has no configuration file: every finding is fixed, or excluded where
# it is with `// #nosec G<rule> -- <why it is safe>`, so the reason sits
# beside the code it excuses and moves with it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# v0.8.2 is staticcheck 2026.2.2, the first release built for Go 1.26.
STATICCHECK_VERSION=v0.8.2
GOSEC_VERSION=v2.30.0
GO="${GO:-go}"
BIN="$PWD/bin"

if ! "$BIN/staticcheck" -version 2>/dev/null | grep -qF "(${STATICCHECK_VERSION#v})"; then
	echo "lint: installing staticcheck $STATICCHECK_VERSION into bin/" >&2
	GOBIN="$BIN" "$GO" install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi
# gosec installed with go install reports "Version: dev"; its module version
# is in the binary's build information.
if ! "$GO" version -m "$BIN/gosec" 2>/dev/null | grep -qE "^\s+mod\s+github.com/securego/gosec/v2\s+${GOSEC_VERSION}\s"; then
	echo "lint: installing gosec $GOSEC_VERSION into bin/" >&2
	GOBIN="$BIN" "$GO" install "github.com/securego/gosec/v2/cmd/gosec@$GOSEC_VERSION"
fi

# gofmt: every .go file outside hidden directories (.pgdata, .git), testdata,
# vendor and node_modules, committed or not.
unformatted="$(find . -mindepth 1 \( -name '.*' -o -name testdata -o -name vendor -o -name node_modules -o -path ./bin \) -prune \
	-o -type f -name '*.go' -print0 | xargs -0 -r gofmt -l)"
status=0
if [[ -n "$unformatted" ]]; then
	echo "lint: not gofmt-ed (run gofmt -w on them):" >&2
	printf '  %s\n' $unformatted >&2
	status=1
fi

# Run every check even after a failure: one pass shows every finding.
"$BIN/staticcheck" ./... || status=1
# Production code only (gosec's default leaves _test.go files out: tests
# spawn the binary, write temporary files and use fixed seeds on purpose).
"$BIN/gosec" -quiet -fmt text ./... || status=1
scripts/deps.sh || status=1
exit "$status"
