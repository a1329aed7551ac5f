package faults

import (
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/testenv"
)

// TestBrokerStoppedUnderLoadCommandsSucceedAndEverythingRecovers freezes
// the broker process (SIGSTOP: its sockets stay open and answer nothing,
// the worst case for timeouts) for at least 10 s under load, with the
// relay, the projectors and the hub running, then lets it continue.
func TestBrokerStoppedUnderLoadCommandsSucceedAndEverythingRecovers(t *testing.T) {
	t.Parallel()
	const outage = 10 * time.Second
	e := testenv.New(t)
	broker := testenv.StartKafka(t)
	srv := serve(t, e.DB.URL, broker, allRoles)
	dash := startDashboard(t, srv.URL)
	l := startLoad(t, 4, 100, srv.URL)
	l.waitAcked(t, 150, "commands before the broker stops")
	dash.waitFor(t, storeHead(t, e.DB.Owner))

	_, failsBefore, _ := l.snapshot()
	broker.Pause(t)
	paused := time.Now()
	// Commands never need Kafka: they keep being acknowledged.
	l.waitAcked(t, 300, "commands acknowledged while the broker is stopped")
	waitFor(t, "the outage to last its length", func() bool { return time.Since(paused) >= outage })
	broker.Resume(t)
	resumed := time.Now()
	_, fails, _ := l.snapshot()
	if n := len(fails) - len(failsBefore); n > 0 {
		t.Errorf("%d commands failed while the broker was stopped (first: %+v): commands must not depend on Kafka", n, fails[len(failsBefore)])
	}
	headAtResume := storeHead(t, e.DB.Owner)
	waitFor(t, "the relay to publish what was committed during the outage", func() bool {
		return relayCheckpoint(t, e.DB.Owner) >= headAtResume
	})
	relayBack := time.Since(resumed)
	dash.waitFor(t, headAtResume)
	dashBack := time.Since(resumed)
	l.waitAcked(t, 100, "commands after the broker came back")
	l.stop()
	converged := waitConverged(t, e.DB.Owner)
	head := storeHead(t, e.DB.Owner)
	dash.waitFor(t, head)
	if _, err := srv.Terminate(t); err != nil {
		t.Errorf("serve exited with %v after SIGTERM", err)
	}
	v := checkEverything(t, e.DB, broker.Addr, l)
	missed, violations := dash.check(t, storeEvents(t, e.DB.Owner))
	t.Logf("injected: broker SIGSTOPped for %s under load (%d commands acknowledged meanwhile, 0 failed); after SIGCONT the relay caught up to position %d in %s, the dashboard in %s; converged %s after the load stopped",
		resumed.Sub(paused).Round(time.Millisecond), 300, headAtResume, relayBack.Round(time.Millisecond), dashBack.Round(time.Millisecond), converged.Round(time.Millisecond))
	t.Logf("dashboard: %s; missed %d, repeats %d", dash.summary(), missed, violations)
	t.Logf("load: %s", l.summary())
	t.Logf("lost: %s", v)
}
