package faults

import (
	"strconv"
	"testing"

	"github.com/orderflow/orderflow/internal/testenv"
)

// allRoles is what `orderflow serve` runs by default.
const allRoles = "api,relay,projector,hub"

// serve runs `orderflow serve` with roles on the database at dbURL, using
// the broker process (not an embedded broker), and returns once it is ready.
func serve(t testing.TB, dbURL string, broker *testenv.KafkaProcess, roles string, env ...string) *testenv.Server {
	t.Helper()
	return testenv.ServeDB(t, dbURL, append([]string{
		"KAFKA_BROKERS=" + broker.Addr,
		"ORDERFLOW_KAFKA_PARTITIONS=" + strconv.Itoa(testenv.Partitions),
		"ORDERFLOW_ROLES=" + roles,
		"ORDERFLOW_DB_MAX_CONNS=8",
		"ORDERFLOW_KAFKA_SESSION_TIMEOUT=6s",
		"ORDERFLOW_MIGRATE=false", // the test database is a copy of the migrated template
	}, env...)...)
}
