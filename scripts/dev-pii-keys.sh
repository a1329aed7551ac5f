#!/usr/bin/env bash
# Prints the path of this checkout's development master key file for personal
# data, .pgdata/pii-master-keys, creating it with a random key on first use.
# `make run` gives it to orderflow serve (ORDERFLOW_PII_MASTER_KEYS_FILE) when
# no key is configured, so that sealed personal data stays readable across
# restarts. Deleting .pgdata/ deletes it with the database. Never used by a
# production deployment: there the operator configures keys (README,
# "Personal data").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
file=.pgdata/pii-master-keys
if [[ ! -s $file ]]; then
	mkdir -p .pgdata
	umask 077
	tmp="$(mktemp .pgdata/pii-master-keys.XXXXXX)"
	{
		echo "# Development master key of this checkout (scripts/dev-pii-keys.sh): make run only."
		echo "dev-$(date -u +%Y%m%d)=$(head -c 32 /dev/urandom | base64 -w0)"
	} >"$tmp"
	mv "$tmp" "$file"
fi
echo "$PWD/$file"
