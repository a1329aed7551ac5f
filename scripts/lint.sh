#!/usr/bin/env bash
# Lint: gofmt, staticcheck (config: staticcheck.conf) over ./..., and the
# dependency rules of the design (scripts/deps.sh).
# staticcheck is installed into ./bin at the pinned version when missing or
# different, so every machine and CI run the same checks.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# v0.8.2 is staticcheck 2026.2.2, the first release built for Go 1.26.
STATICCHECK_VERSION=v0.8.2
GO="${GO:-go}"
BIN="$PWD/bin"

if ! "$BIN/staticcheck" -version 2>/dev/null | grep -qF "(${STATICCHECK_VERSION#v})"; then
	echo "lint: installing staticcheck $STATICCHECK_VERSION into bin/" >&2
	GOBIN="$BIN" "$GO" install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
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
scripts/deps.sh || status=1
exit "$status"
