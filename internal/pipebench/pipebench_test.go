package pipebench

import (
	"slices"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/loadgen"
	"github.com/orderflow/orderflow/projections"
	"github.com/orderflow/orderflow/streams/hub"
)

func TestTheProbesCoverEveryProjection(t *testing.T) {
	var probed, all []string
	for _, rm := range readModels {
		probed = append(probed, rm.name)
	}
	for _, p := range projections.All() {
		all = append(all, p.Name())
	}
	if !slices.Equal(probed, all) {
		t.Fatalf("freshness probes %v, projections %v", probed, all)
	}
}

func TestWSClockMatchesACommandWithItsFrameInEitherOrder(t *testing.T) {
	c := newWSClock()
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	c.answer(10, t0)
	c.frame(9, t0.Add(time.Millisecond)) // an earlier event of the same command
	c.frame(10, t0.Add(4*time.Millisecond))
	c.frame(12, t0.Add(5*time.Millisecond)) // before its answer
	c.answer(12, t0.Add(6*time.Millisecond))
	c.answer(20, t0.Add(7*time.Millisecond)) // never gets a frame
	p := c.rec.Percentiles()
	if p.Count != 2 || p.Max < 4*time.Millisecond || p.Max > 4*time.Millisecond+10*time.Microsecond {
		t.Fatalf("recorded %d latencies, max %s: want 2, max 4ms", p.Count, p.Max)
	}
	if c.early != 1 || c.waiting() != 1 || c.frames != 3 {
		t.Fatalf("early %d, waiting %d, frames %d: want 1, 1, 3", c.early, c.waiting(), c.frames)
	}
}

func TestWSClockForgetsFramesNoCommandClaims(t *testing.T) {
	c := newWSClock()
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for i := range int64(100) {
		c.frame(i, t0)
	}
	c.frame(1000, t0.Add(unmatchedTTL+time.Second))
	if len(c.unmatched) != 1 {
		t.Fatalf("%d unmatched frames kept after the TTL, want only the new one", len(c.unmatched))
	}
}

func TestNextRateGrowsWhileRatesHoldThenBisects(t *testing.T) {
	lo, hi, rate := 0.0, 0.0, 1000.0
	var tried []float64
	sustains := func(r float64) bool { return r <= 2600 }
	for range 20 {
		tried = append(tried, rate)
		var ok bool
		if lo, hi, rate, ok = nextRate(lo, hi, rate, sustains(rate), 0.1); !ok {
			break
		}
	}
	want := []float64{1000, 1500, 2250, 3375, 2812.5, 2531.25, 2671.875}
	if !slices.Equal(tried, want) {
		t.Fatalf("tried %v, want %v", tried, want)
	}
	if lo != 2531.25 || hi != 2671.875 {
		t.Fatalf("bracket [%g, %g)", lo, hi)
	}
}

func TestNextRateGoesDownWhenTheFirstRateFails(t *testing.T) {
	lo, hi, next, ok := nextRate(0, 0, 1500, false, 0.1)
	if !ok || lo != 0 || hi != 1500 || next != 1000 {
		t.Fatalf("got [%g, %g) next %g ok %v", lo, hi, next, ok)
	}
}

func TestUnsustainableNamesWhatBroke(t *testing.T) {
	ok := func() Result {
		r := Result{Fresh: newWSClock().rec, Drained: true, LoadEnd: 60}
		r.Commands = loadgen.Result{OK: 1000, Unsent: newWSClock().rec, Errors: map[int]int64{}}
		r.Lag = []LagSample{{T: 30, Seconds: map[string]float64{"order_summary": 0.5}}}
		return r
	}
	if why := Unsustainable(ok(), 2*time.Second, 0.001); why != "" {
		t.Fatalf("a run within bounds: %q", why)
	}
	lagging := ok()
	lagging.Lag = append(lagging.Lag, LagSample{T: 40, Seconds: map[string]float64{"sales_daily": 3}})
	failing := ok()
	failing.Commands.Errors[503] = 2
	overloaded := ok()
	overloaded.Commands.Overloaded = true
	stuck := ok()
	stuck.Drained = false
	for name, r := range map[string]Result{"lagging": lagging, "failing": failing, "overloaded": overloaded, "stuck": stuck} {
		if Unsustainable(r, 2*time.Second, 0.001) == "" {
			t.Errorf("%s run judged sustainable", name)
		}
	}
}

func TestALagSampleIsZeroWhenNothingIsBehind(t *testing.T) {
	s := LagSample{RelayEvents: -1, Events: map[string]int64{"a": 0, "b": 0}}
	if !s.zero() {
		t.Fatal("nothing behind, not zero")
	}
	s.Events["b"] = 3
	if s.zero() {
		t.Fatal("a projection behind, zero")
	}
	s.Events["b"], s.RelayEvents = 0, 5
	if s.zero() {
		t.Fatal("the relay behind, zero")
	}
}

func TestWSURLIsTheStreamOfTheBase(t *testing.T) {
	u, err := wsURL("http://127.0.0.1:8080")
	if err != nil || u != "ws://127.0.0.1:8080/v1/stream" {
		t.Fatalf("%q %v", u, err)
	}
}

func TestTheFrameTypesAreTheProtocols(t *testing.T) {
	for got, want := range map[string]string{frameSubscribe: hub.TypeSubscribe, frameSubscribed: hub.TypeSubscribed,
		frameEvent: hub.TypeEvent, frameError: hub.TypeError} {
		if got != want {
			t.Errorf("frame type %q, the hub's is %q", got, want)
		}
	}
}
