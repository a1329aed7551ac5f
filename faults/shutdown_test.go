package faults

import (
	"context"
	"io"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/testenv"
)

// TestSIGTERMUnderLoadDrainsAndRestartsWithoutRedelivery sends SIGTERM to
// serve (all roles) under load with a request in flight and a dashboard
// connected, then starts it again: the request finishes, the dashboard is
// told 1001 and resumes, the process exits 0 within its shutdown timeout,
// the relay has checkpointed everything it published (nothing is sent to
// Kafka twice after the restart) and the consumers committed every offset
// they applied (nothing is redelivered to a projection after the restart).
func TestSIGTERMUnderLoadDrainsAndRestartsWithoutRedelivery(t *testing.T) {
	t.Parallel()
	const shutdownTimeout = 5 * time.Second
	e := testenv.New(t)
	broker := testenv.StartKafka(t)
	srv := serve(t, e.DB.URL, broker, allRoles, "ORDERFLOW_SHUTDOWN_TIMEOUT="+shutdownTimeout.String())
	dash := startDashboard(t, srv.URL)
	l := startLoad(t, 4, 150, srv.URL)
	l.waitAcked(t, 200, "commands before SIGTERM")
	acks, _, _ := l.snapshot()

	// In flight: a read that waits (up to 2 s) for a version the order will
	// never reach, on a connection of its own. Once the request is written
	// the server must answer it, shutdown or not.
	inFlight := make(chan *http.Response, 1)
	written := make(chan struct{})
	go func() {
		a := acks[0] // long projected: the wait is for a version it will never reach
		token := a.OrderID + ":" + strconv.FormatInt(a.Version+1000, 10) + ":" + strconv.FormatInt(a.Position+1000, 10)
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { close(written) }})
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/orders/"+a.OrderID, nil)
		req.Header.Set("Consistency-Token", token)
		req.Header.Set("Authorization", testenv.Bearer(t, testenv.StaffSubject, auth.Staff))
		res, err := (&http.Client{Timeout: requestDeadline, Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
		if err != nil {
			t.Errorf("the request in flight at SIGTERM failed: %v", err)
			res = nil
		}
		inFlight <- res
	}()
	<-written
	took, err := srv.Terminate(t)
	if err != nil {
		t.Errorf("serve exited with %v after SIGTERM, want status 0", err)
	}
	// The bound is the product's; the slack is for a busy machine.
	if took > 3*shutdownTimeout {
		t.Errorf("serve took %s to exit after SIGTERM, with ORDERFLOW_SHUTDOWN_TIMEOUT=%s", took, shutdownTimeout)
	}
	if res := <-inFlight; res != nil {
		b, _ := io.ReadAll(res.Body)
		_ = res.Body.Close()
		if res.StatusCode != http.StatusOK || res.Header.Get("Consistency") != "stale" {
			t.Errorf("the request in flight at SIGTERM got %d (Consistency %q): %s", res.StatusCode, res.Header.Get("Consistency"), b)
		}
	}
	waitFor(t, "the dashboard to see its connection closed", func() bool { return len(dash.codes()) > 0 })
	if codes := dash.codes(); codes[0] != 1001 {
		t.Errorf("the dashboard's connection ended with close code %d, want 1001 (going away)", codes[0])
	}

	// What the stopped process left behind: its relay checkpoint covers
	// every event it published.
	checkpoint := relayCheckpoint(t, e.DB.Owner)
	published := checkTopicHead(t, broker.Addr)
	if published > checkpoint {
		t.Errorf("Kafka holds positions up to %d but the relay checkpointed only %d: a restart sends them again", published, checkpoint)
	}

	srv.Restart(t)
	l.waitAcked(t, 150, "commands after the restart")
	l.stop()
	converged := waitConverged(t, e.DB.Owner)
	head := storeHead(t, e.DB.Owner)
	dash.waitFor(t, head)
	metrics := scrape(t, srv.OpsURL)
	if _, err := srv.Terminate(t); err != nil {
		t.Errorf("serve exited with %v after the second SIGTERM", err)
	}
	if metrics["projection_events_applied_total"] == 0 {
		t.Errorf("the restarted process's /metrics counts no applied events: the redelivery count below would mean nothing")
	}
	redelivered := metrics["projection_events_skipped_total"]
	if redelivered > 0 {
		t.Errorf("after the restart %v events were delivered again to projections: offsets applied before SIGTERM were not committed", redelivered)
	}
	v := checkEverything(t, e.DB, broker.Addr, l)
	missed, violations := dash.check(t, storeEvents(t, e.DB.Owner))
	t.Logf("injected: SIGTERM under load with a request in flight; exit status 0 after %s (ORDERFLOW_SHUTDOWN_TIMEOUT=%s); relay checkpoint %d, highest position in Kafka %d; after the restart %v redeliveries to projections; converged %s after the load stopped",
		took.Round(time.Millisecond), shutdownTimeout, checkpoint, published, redelivered, converged.Round(time.Millisecond))
	t.Logf("dashboard: %s; missed %d, repeats %d", dash.summary(), missed, violations)
	t.Logf("load: %s", l.summary())
	t.Logf("lost: %s", v)
}

// scrape returns the sum of every sample of each metric family of a
// process's /metrics (text exposition), by sample name. opsURL is the
// process's operations listener (testenv.Server.OpsURL): the public one
// does not serve /metrics.
func scrape(t testing.TB, opsURL string) map[string]float64 {
	t.Helper()
	res, err := http.Get(opsURL + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", opsURL, err)
	}
	defer func() { _ = res.Body.Close() }()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s/metrics: %d %s", opsURL, res.StatusCode, b)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		name := line[:i]
		if j := strings.IndexByte(name, '{'); j >= 0 {
			name = name[:j]
		}
		v, _ := strconv.ParseFloat(line[i+1:], 64)
		out[name] += v
	}
	return out
}
