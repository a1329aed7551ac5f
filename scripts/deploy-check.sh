#!/usr/bin/env bash
# Validates deploy/ as far as this machine allows (no Docker engine, no
# cluster), before the Go tests; `make test` runs it (scripts/test.sh).
#
#   - the alert rules: promtool check rules, and their unit tests
#     (promtool test rules alerts_test.yaml); the compose scrape config:
#     promtool check config --syntax-only (its rule path is the container's);
#   - the Kubernetes base: kustomize build, every object strictly decoded
#     into the Kubernetes API types (deploy/k8scheck: unknown fields, wrong
#     types and unknown kinds fail); the monitoring overlay builds; its
#     PrometheusRule is what generate.sh makes of alerts.yaml today.
#
# The compose file's ORDERFLOW_* variables and the Grafana dashboard's and
# alerts' metric names are checked against the binary by the Go test in
# deploy/ (deploy_test.go).
#
# kustomize and k8scheck are installed into bin/ at pinned versions (like
# staticcheck); promtool comes from Debian's prometheus package (the
# Makefile's promtool prerequisite).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

KUSTOMIZE_VERSION=v5.8.1
GO="${GO:-go}"
BIN="$PWD/bin"

if ! "$BIN/kustomize" version 2>/dev/null | grep -qF "$KUSTOMIZE_VERSION"; then
	echo "deploy-check: installing kustomize $KUSTOMIZE_VERSION into bin/" >&2
	GOBIN="$BIN" "$GO" install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
fi
# k8scheck's versions are pinned by its own go.mod; install is a no-op link
# when nothing changed.
(cd deploy/k8scheck && GOBIN="$BIN" "$GO" install .)

(cd deploy/prometheus &&
	promtool check rules alerts.yaml &&
	promtool test rules alerts_test.yaml &&
	promtool check config --syntax-only prometheus.yml) >/dev/null

"$BIN/kustomize" build deploy/k8s | "$BIN/k8scheck"
"$BIN/kustomize" build deploy/k8s/monitoring >/dev/null

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cp -r deploy/k8s/monitoring "$tmp/" && mkdir -p "$tmp/prometheus" && cp deploy/prometheus/alerts.yaml "$tmp/prometheus/"
mkdir -p "$tmp/k8s" && mv "$tmp/monitoring" "$tmp/k8s/"
sh "$tmp/k8s/monitoring/generate.sh" >/dev/null
if ! diff -u deploy/k8s/monitoring/prometheusrule.yaml "$tmp/k8s/monitoring/prometheusrule.yaml" >&2; then
	echo "deploy-check: deploy/k8s/monitoring/prometheusrule.yaml is stale: run deploy/k8s/monitoring/generate.sh" >&2
	exit 1
fi
echo "deploy-check: alert rules and their tests, prometheus.yml, the Kubernetes base and monitoring overlay: ok"
