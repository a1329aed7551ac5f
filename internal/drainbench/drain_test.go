package drainbench

import (
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/seed"
	"github.com/orderflow/orderflow/order"
)

func TestOrdersForMakesAboutTheEventsAsked(t *testing.T) {
	reg := order.NewRegistry()
	n, err := ordersFor(reg, 100000, 1)
	if err != nil {
		t.Fatal(err)
	}
	g, err := seed.NewGenerator(reg, seed.Config{Orders: n, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	for rows, err := g.Next(); rows != nil; rows, err = g.Next() {
		if err != nil {
			t.Fatal(err)
		}
	}
	if ev := g.Stats().Events; ev < 97000 || ev > 103000 {
		t.Fatalf("%d orders make %d events, want about 100 000", n, ev)
	}
}

func TestDrainRateIsTheSlowestProjectionsAfterATimeout(t *testing.T) {
	done := Result{Events: 1000, Drain: 2 * time.Second, CaughtUp: true,
		Projections: []ProjectionDrain{{Applied: 1000}, {Applied: 1000}}}
	if r := done.DrainRate(); r != 500 {
		t.Errorf("caught up: %g events/s, want 500", r)
	}
	cut := Result{Events: 1000, Drain: 2 * time.Second, Projections: []ProjectionDrain{{Applied: 1000}, {Applied: 300}}}
	if r := cut.DrainRate(); r != 150 {
		t.Errorf("timed out: %g events/s, want 150 (the slowest)", r)
	}
}
