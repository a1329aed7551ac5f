package benchsuite

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/benchreport"
	"github.com/orderflow/orderflow/internal/benchstat"
	"github.com/orderflow/orderflow/internal/drainbench"
	"github.com/orderflow/orderflow/internal/loadgen"
	"github.com/orderflow/orderflow/internal/pipebench"
)

func validConfig() Config {
	return Config{AdminURL: "postgres://x/y", Binary: "/bin/true", OutDir: "out", Duration: time.Second, Clients: 1,
		OpenRate: 1, PipelineRate: 1, WSRate: 1, PipelineDrainTimeout: time.Second, DrainEvents: 1, DrainTimeout: time.Second,
		FindMaxWindow: time.Second, Migrate: func(context.Context, string) error { return nil },
		Consume: func(context.Context, drainbench.Env) error { return nil }}
}

func TestTheDefaultRunIsEveryScenarioButFindMaxInOrder(t *testing.T) {
	c := validConfig()
	if got := c.Selected(); !slices.Equal(got, Scenarios[:len(Scenarios)-1]) || slices.Contains(got, "find-max") {
		t.Fatalf("default scenarios %v", got)
	}
	c.Only = []string{"drain", "pgbench", "find-max"}
	if got := c.Selected(); !slices.Equal(got, []string{"pgbench", "drain", "find-max"}) {
		t.Fatalf("named scenarios run in suite order: %v", got)
	}
	c.Only = []string{"pgbnech"}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "pgbnech") {
		t.Fatalf("an unknown scenario is accepted: %v", err)
	}
}

func commands(ok int64, errs map[int]int64) loadgen.Result {
	r := loadgen.Result{OK: ok, Errors: errs, FirstError: map[int]string{}, Unsent: benchstat.New(), Elapsed: time.Second}
	for i := range r.ByStep {
		r.ByStep[i] = benchstat.New()
		r.ByStep[i].Record(time.Millisecond)
	}
	for s := range errs {
		r.FirstError[s] = `{"type":"https://orderflow.dev/problems/rule-violation"}`
	}
	return r
}

func TestRatiosCompareWithPgbenchAndUnkeyed(t *testing.T) {
	r := &suite{pgTPS: 5000, unkeyed: 2500}
	rep := benchreport.Report{Scenarios: []benchreport.Scenario{
		CommandsScenario("api-closed (--roles api)", commands(2500, nil), false, Targets{}),
		CommandsScenario("api-keyed (--roles api)", commands(2000, nil), false, Targets{}),
		CommandsScenario("api-open (--roles api)", commands(1000, nil), false, Targets{}),
	}}
	r.ratios(&rep)
	for i, want := range []struct {
		ratio float64
		to    string
	}{{0.5, "pgbench"}, {0.8, "unkeyed"}, {0, ""}} {
		f := rep.Scenarios[i].Figures[0]
		if f.Ratio != want.ratio || f.RatioTo != want.to {
			t.Errorf("%s: ratio %g to %q, want %g to %q", rep.Scenarios[i].Name, f.Ratio, f.RatioTo, want.ratio, want.to)
		}
	}
}

func TestCommandsScenarioListsErrorsByStatusAndStepsWhenAsked(t *testing.T) {
	s := CommandsScenario("c", commands(90, map[int]int64{409: 7, 0: 3}), true, Targets{Command: "p99 < 3 ms"})
	if len(s.Latencies) != 1+int(loadgen.Steps) || s.Latencies[0].Target != "p99 < 3 ms" || s.Latencies[1].Name != "create" {
		t.Fatalf("latency rows %+v", s.Latencies)
	}
	notes := strings.Join(s.Notes, "\n")
	for _, want := range []string{"100 commands, 10 failed", "no answer ×3", "409 ×7", "rule-violation"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
}

func TestPipelineScenarioDrawsEveryProjectionAndTheRelayOverTime(t *testing.T) {
	res := pipebench.Result{Config: pipebench.Config{Rate: 1500, Warmup: 5 * time.Second, DrainTimeout: time.Minute},
		Commands: commands(100, nil), Fresh: benchstat.New(), WS: benchstat.New(), ProbeStart: benchstat.New(),
		FreshBy: []*benchstat.Recorder{benchstat.New()}, ReadModels: []string{"order_summary"}, LoadEnd: 65,
		Lag: []pipebench.LagSample{
			{T: 1, RelayEvents: 0, Events: map[string]int64{"order_summary": 5, "sales_daily": 9}},
			{T: 2, RelayEvents: 3, Events: map[string]int64{"order_summary": 40, "sales_daily": 12}},
			{T: 70, RelayEvents: 0, Events: map[string]int64{"order_summary": 900, "sales_daily": 0}},
		}}
	s := PipelineScenario("pipeline", res, Targets{})
	var names []string
	for _, l := range s.Lag {
		names = append(names, l.Name)
		if len(l.Points) != 3 {
			t.Errorf("%s: %d points, want 3", l.Name, len(l.Points))
		}
	}
	if !slices.Equal(names, []string{"order_summary", "sales_daily", "relay"}) {
		t.Fatalf("series %v", names)
	}
	if len(s.Marks) != 2 || s.Marks[1].X != 65 {
		t.Fatalf("marks %+v", s.Marks)
	}
	var caught, largest benchreport.Figure
	for _, f := range s.Figures {
		switch {
		case strings.Contains(f.Name, "back to 0"):
			caught = f
		case strings.HasPrefix(f.Name, "largest"):
			largest = f
		}
	}
	if !strings.Contains(caught.Name, "NOT") {
		t.Errorf("an undrained run reads %q", caught.Name)
	}
	if largest.Value != 40 {
		t.Errorf("largest lag during the load %g, want 40 (the 900 came after it)", largest.Value)
	}
}
