#!/usr/bin/env bash
# Prints the path of this checkout's development key file for the events
# topic, .pgdata/kafka-signing-keys, creating it with a random key on first
# use. `make run` gives it to orderflow serve (ORDERFLOW_KAFKA_SIGNING_KEYS_FILE)
# when no key is configured, so the relay signs and the projectors and the hub
# verify with one key per data directory, which outlives restarts (a topic on
# a real Kafka, KAFKA_BROKERS, keeps its messages). Deleting .pgdata/ deletes
# it with the database. Never used by a production deployment: there the
# operator configures keys (README, "Signed events").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
file=.pgdata/kafka-signing-keys
if [[ ! -s $file ]]; then
	mkdir -p .pgdata
	umask 077
	tmp="$(mktemp .pgdata/kafka-signing-keys.XXXXXX)"
	{
		echo "# Development key of this checkout (scripts/dev-signing-keys.sh): make run only."
		echo "dev-$(date -u +%Y%m%d)=$(head -c 32 /dev/urandom | base64 -w0)"
	} >"$tmp"
	mv "$tmp" "$file"
fi
echo "$PWD/$file"
