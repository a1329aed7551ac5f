#!/usr/bin/env bash
# The dependency rules of the design (README "Architecture"), checked on the
# production import graph (`go list`, tests excluded): a violation prints the
# rule and the offending import path, and exits 1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
GO="${GO:-go}"
MOD="$("$GO" list -m)"
status=0

# deps PKG: every package PKG depends on, transitively; ours as "@path"
# ("@eventstore/migrations"), the rest as import paths.
deps() { "$GO" list -deps "./$1" | grep -v "^$MOD/$1\$" | sed "s#^$MOD/#@#"; }

# imports PKG: what PKG itself imports (a transport is "imported" when our
# code uses it, not when a library we use happens to).
imports() { "$GO" list -f '{{join .Imports "\n"}}' "./$1" | sed "s#^$MOD/#@#"; }

# forbid PKG RULE PATTERN [LIST]: no dependency of PKG (LIST: deps or
# imports, default deps) may match the extended regexp.
forbid() {
	local bad
	bad="$("${4:-deps}" "$1" | grep -E "$3" || true)"
	if [[ -n "$bad" ]]; then
		echo "deps: $2; $1 depends on:" >&2
		printf '  %s\n' $bad >&2
		status=1
	fi
}

ours='^@'
forbid eventstore "eventstore knows nothing of the rest of the project" "$ours"
forbid order "order (the domain) imports no other project package" "$ours"
forbid commands "commands never imports streams, queries or projections" '^@(streams|queries|projections)(/|$)'
forbid projections "projections never imports streams, queries or commands" '^@(streams|queries|commands)(/|$)'
transport='^(net/http|github.com/segmentio/kafka-go|github.com/ThreeDotsLabs/watermill|github.com/gorilla/websocket)(/|$)'
forbid commands "commands (the application) does not import a transport: its HTTP port is commands/httpapi" "$transport" imports
forbid projections "projections does not import a transport" "$transport" imports

# Only cmd wires: the ports (HTTP and WebSocket adapters) are imported by
# cmd alone, nothing imports cmd, and no production package imports the
# test environment.
importers() { # importers PKG: the production packages importing PKG
	"$GO" list -f '{{.ImportPath}}{{range .Imports}} {{.}}{{end}}' ./... |
		awk -v want="$MOD/$1" '{for (i = 2; i <= NF; i++) if ($i == want) print $1}' | sed "s#^$MOD/##"
}
only_cmd() { # only_cmd PKG RULE
	local bad
	bad="$(importers "$1" | grep -vE '^cmd(/|$)' || true)"
	if [[ -n "$bad" ]]; then
		echo "deps: $2; imported by:" >&2
		printf '  %s\n' $bad >&2
		status=1
	fi
}
for port in commands/httpapi queries streams/hub web internal/ops; do
	only_cmd "$port" "$port is a port: only cmd wires it"
done
testsupport='^(internal/testenv|internal/pgtest|openapi/openapitest)$'
for tp in internal/testenv internal/pgtest openapi/openapitest; do
	bad="$(importers "$tp" | grep -vE "$testsupport" || true)"
	if [[ -n "$bad" ]]; then
		echo "deps: $tp is for tests only; imported by production packages:" >&2
		printf '  %s\n' $bad >&2
		status=1
	fi
done
bad="$("$GO" list -f '{{.ImportPath}}{{range .Imports}} {{.}}{{end}}' ./... | awk -v m="$MOD/cmd/" '{for (i = 2; i <= NF; i++) if (index($i, m) == 1) print $1}')"
if [[ -n "$bad" ]]; then
	echo "deps: nothing imports cmd; imported by: $bad" >&2
	status=1
fi
exit "$status"
