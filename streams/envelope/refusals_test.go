package envelope_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/orderflow/orderflow/streams/envelope"
)

func TestRefusalsCountEveryOneAndLogFew(t *testing.T) {
	reg := prometheus.NewRegistry()
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	hub, err := envelope.NewRefusals(reg, "hub", log, "unknown_position")
	if err != nil {
		t.Fatal(err)
	}
	// A second consumer of the process shares the metric.
	proj, err := envelope.NewRefusals(reg, "orderflow.projection.order_summary", log)
	if err != nil {
		t.Fatal(err)
	}
	// Every series exists at zero before the first refusal.
	if n := testutil.CollectAndCount(reg, envelope.RejectedMetric); n != 9 {
		t.Fatalf("%d series, want 4 reasons for each consumer and the hub's own", n)
	}
	const n = 500
	start := time.Now()
	for range n {
		hub.Add(&envelope.RefusedError{Reason: envelope.ReasonBadSignature, Detail: "x"}, "kafka_offset", 1)
	}
	elapsed := time.Since(start)
	proj.Add(errors.New("not a refusal"))
	got := func(consumer, reason string) float64 { return rejected(t, reg, consumer, reason) }
	if got("hub", "bad_signature") != n || got("orderflow.projection.order_summary", "malformed") != 1 {
		t.Fatalf("counted %v and %v", got("hub", "bad_signature"), got("orderflow.projection.order_summary", "malformed"))
	}
	// One line per LogInterval at most (the first at once), however many
	// messages a producer sends.
	lines := strings.Count(logged.String(), "consumer=hub")
	if limit := 1 + int(elapsed/envelope.LogInterval); lines < 1 || lines > limit {
		t.Fatalf("%d log lines for %d refusals in %s, want 1 to %d:\n%s", lines, n, elapsed, limit, logged.String())
	}
}

// rejected is the value of one series of the metric in reg.
func rejected(t *testing.T, reg *prometheus.Registry, consumer, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != envelope.RejectedMetric {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["consumer"] == consumer && labels["reason"] == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no series %s{consumer=%q,reason=%q}", envelope.RejectedMetric, consumer, reason)
	return 0
}
