package faults

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/testenv"
)

// TestSplitRolesEachKilledInTurnLoseNothing runs the production shape —
// api ×2, relay ×2, projector ×2, hub ×1, sharing one broker process — and
// kills (SIGKILL) each process in turn under load, restarting it once the
// others have shown they carry on: relay failover, consumer-group
// rebalances, a dashboard resuming with since after its hub died.
func TestSplitRolesEachKilledInTurnLoseNothing(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	broker := testenv.StartKafka(t)
	role := func(r string) *testenv.Server { return serve(t, e.DB.URL, broker, r) }
	api := []*testenv.Server{role("api"), role("api")}
	relays := []*testenv.Server{role("relay"), role("relay")}
	projectors := []*testenv.Server{role("projector"), role("projector")}
	hub := role("hub")
	dash := startDashboard(t, hub.URL)
	l := startLoad(t, 4, 150, api[0].URL, api[1].URL)
	l.waitAcked(t, 150, "commands before the first kill")

	var log []string
	kill := func(name string, s *testenv.Server, carryOn func() string) {
		t.Helper()
		s.Kill(t)
		killed := time.Now()
		what := carryOn()
		s.Restart(t)
		log = append(log, fmt.Sprintf("%s: %s after %s, restarted", name, what, time.Since(killed).Round(time.Millisecond)))
		l.waitAcked(t, 50, "commands after restarting "+name)
	}
	publishing := func() string {
		head := storeHead(t, e.DB.Owner)
		waitFor(t, "the relay checkpoint to pass the head at the kill", func() bool { return relayCheckpoint(t, e.DB.Owner) >= head })
		return fmt.Sprintf("the other relay published past position %d", head)
	}
	acking := func() string {
		l.waitAcked(t, 50, "commands through the other api")
		return "50 commands acknowledged through the other api"
	}
	applying := func() string {
		head := storeHead(t, e.DB.Owner)
		waitFor(t, "the other projector to apply past the head at the kill", func() bool { return appliedEverywhere(t, e, head) })
		return fmt.Sprintf("the other projector applied every event up to position %d", head)
	}
	resuming := func() string {
		return "no other hub (the dashboard reconnects to the restarted one)"
	}
	kill("relay leader", leader(t, relays), publishing)
	kill("api-1", api[0], acking)
	kill("projector-1", projectors[0], applying)
	kill("hub", hub, resuming)
	kill("relay leader", leader(t, relays), publishing)
	kill("api-2", api[1], acking)
	kill("projector-2", projectors[1], applying)
	l.stop()
	converged := waitConverged(t, e.DB.Owner)
	dash.waitFor(t, storeHead(t, e.DB.Owner))
	for _, s := range append(append(append(api, relays...), projectors...), hub) {
		if _, err := s.Terminate(t); err != nil {
			t.Errorf("%s exited with %v after SIGTERM", s.Name, err)
		}
	}
	v := checkEverything(t, e.DB, broker.Addr, l)
	missed, violations := dash.check(t, storeEvents(t, e.DB.Owner))
	t.Logf("injected: SIGKILL of each process in turn:\n  %s\nconverged %s after the load stopped", strings.Join(log, "\n  "), converged.Round(time.Millisecond))
	t.Logf("dashboard: %s; missed %d, repeats %d", dash.summary(), missed, violations)
	t.Logf("load: %s", l.summary())
	t.Logf("lost: %s", v)
}

// leader returns the relay process that holds the lock (relay_leader 1),
// waiting for one to have it.
func leader(t testing.TB, relays []*testenv.Server) *testenv.Server {
	t.Helper()
	var l *testenv.Server
	waitFor(t, "a relay leader", func() bool {
		for _, r := range relays {
			if scrape(t, r.OpsURL)["relay_leader"] == 1 {
				l = r
				return true
			}
		}
		return false
	})
	return l
}

// appliedEverywhere reports whether every projection has applied every
// event up to position head.
func appliedEverywhere(t testing.TB, e *testenv.Env, head int64) bool {
	t.Helper()
	var behind bool
	err := e.DB.Owner.QueryRow(t.Context(), `SELECT EXISTS (
		SELECT 1 FROM events ev WHERE ev.position <= $1 AND (
			NOT EXISTS (SELECT 1 FROM order_summary_versions v WHERE v.stream_id = ev.stream_id AND v.version >= ev.version) OR
			NOT EXISTS (SELECT 1 FROM customer_stats_versions v WHERE v.stream_id = ev.stream_id AND v.version >= ev.version) OR
			NOT EXISTS (SELECT 1 FROM sales_daily_versions v WHERE v.stream_id = ev.stream_id AND v.version >= ev.version) OR
			NOT EXISTS (SELECT 1 FROM status_counts_versions v WHERE v.stream_id = ev.stream_id AND v.version >= ev.version)))`, head).Scan(&behind)
	return err == nil && !behind
}
