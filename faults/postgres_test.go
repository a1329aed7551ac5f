package faults

import (
	"net/http"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/testenv"
)

// TestPostgresRestartedUnderLoadAnswers503AndLosesNothing stops the
// database under a command load (fast shutdown: sessions cut, new
// connections refused), keeps it down until commands have been refused for
// a while, and starts it again. Every process keeps running: their pools
// and the relay's session must recover by themselves.
func TestPostgresRestartedUnderLoadAnswers503AndLosesNothing(t *testing.T) {
	// The projector retries a failing event 5 times from 100 ms, doubling
	// (3.1 s in all; streams/kafka RouterOptions), before its poison queue.
	const minOutage = 5 * time.Second
	t.Parallel()
	pg := testenv.StartPostgres(t)
	e := testenv.NewOn(t, pg.URL)
	broker := testenv.StartKafka(t)
	srv := serve(t, e.DB.URL, broker, allRoles)
	l := startLoad(t, 4, 150, srv.URL)
	l.waitAcked(t, 150, "commands before the restart")

	_, failsBefore, _ := l.snapshot()
	pg.Stop(t)
	stopped := time.Now()
	// Down until a good number of commands have been refused (every
	// worker has met the outage several times), and for at least
	// minOutage: longer than a projector's retry budget for one event, so
	// a projector that took a database outage for a poison event would
	// dead-letter what it was applying.
	waitFor(t, "commands refused while PostgreSQL is down", func() bool {
		_, fails, _ := l.snapshot()
		return len(fails)-len(failsBefore) >= 40 && time.Since(stopped) >= minOutage
	})
	pg.Start(t)
	down := time.Since(stopped)
	started := time.Now()
	l.waitAcked(t, 1, "a command acknowledged after PostgreSQL came back")
	recovered := time.Since(started)
	l.waitAcked(t, 150, "commands after the restart")
	l.stop()
	converged := waitConverged(t, e.DB.Owner)
	if _, err := srv.Terminate(t); err != nil {
		t.Errorf("orderflow serve exited with %v after SIGTERM", err)
	}

	// What clients saw while it was down: 503 problem+json with Retry-After,
	// never a 500, never a request hanging to the client's deadline (the
	// api process itself stayed up, so every request got an answer).
	_, fails, _ := l.snapshot()
	var refused int
	var slowest time.Duration
	for _, f := range fails[len(failsBefore):] {
		slowest = max(slowest, f.took)
		switch {
		case f.status == 0:
			t.Errorf("a command got no answer (%s after %s): the api must answer while PostgreSQL is down", f.err, f.took)
		case f.status != http.StatusServiceUnavailable || f.contentType != "application/problem+json" || f.retryAfter == "" ||
			f.problem != "https://orderflow.dev/problems/unavailable":
			t.Errorf("a command got %d %q (problem %q, Retry-After %q): want 503 application/problem+json, type unavailable, with Retry-After",
				f.status, f.contentType, f.problem, f.retryAfter)
		default:
			refused++
		}
	}
	v := checkEverything(t, e.DB, broker.Addr, l)
	t.Logf("injected: PostgreSQL stopped (fast shutdown) for %s under load, then started; %d commands refused with 503 + Retry-After meanwhile, the slowest refusal took %s; first 2xx %s after the start; converged %s after the load stopped",
		down.Round(time.Millisecond), refused, slowest.Round(time.Millisecond), recovered.Round(time.Millisecond), converged.Round(time.Millisecond))
	t.Logf("load: %s", l.summary())
	t.Logf("lost: %s", v)
}
