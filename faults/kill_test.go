package faults

import (
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/testenv"
)

// TestServeKilledWithSIGKILLUnderLoadLosesNothingAcknowledged kills the one
// process running every role, three times, during a steady command load,
// and restarts it each time.
func TestServeKilledWithSIGKILLUnderLoadLosesNothingAcknowledged(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	broker := testenv.StartKafka(t)
	srv := serve(t, e.DB.URL, broker, allRoles)
	l := startLoad(t, 4, 150, srv.URL)
	l.waitAcked(t, 150, "commands before the first kill")

	const kills = 3
	var recoveries []time.Duration
	for range kills {
		srv.Kill(t)
		killed := time.Now()
		srv.Restart(t)
		l.waitAcked(t, 1, "a command acknowledged after the restart")
		recoveries = append(recoveries, time.Since(killed).Round(time.Millisecond))
		l.waitAcked(t, 100, "commands before the next kill")
	}
	l.stop()
	converged := waitConverged(t, e.DB.Owner)
	if _, err := srv.Terminate(t); err != nil {
		t.Errorf("orderflow serve exited with %v after SIGTERM", err)
	}
	v := checkEverything(t, e.DB, broker.Addr, l)
	t.Logf("injected: kill -9 of orderflow serve (all roles) %d times under load; first 2xx after each kill: %v; pipeline converged %s after the load stopped",
		kills, recoveries, converged.Round(time.Millisecond))
	t.Logf("load: %s", l.summary())
	t.Logf("lost: %s", v)
}
