// Package deploy holds the production shape (compose, Kubernetes,
// Prometheus, Grafana; see README.md) and, in deploy_test.go, the checks
// that tie it to the binary: every ORDERFLOW_* variable the compose file and
// the Kubernetes config set is one the binary reads, and every metric the
// dashboard and the alerts query is one a served binary exports (or one of
// the named exporters'). scripts/deploy-check.sh validates the rest.
package deploy
