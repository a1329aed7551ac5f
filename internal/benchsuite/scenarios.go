package benchsuite

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/orderflow/orderflow/internal/benchreport"
	"github.com/orderflow/orderflow/internal/drainbench"
	"github.com/orderflow/orderflow/internal/loadgen"
	"github.com/orderflow/orderflow/internal/pipebench"
)

// Targets are the goals shown next to a scenario's figures ("" shows none).
// They are text for the reader: the report states figures, it judges
// nothing.
type Targets struct {
	Rate, Command, Fresh, WS, CaughtUp, Drain string
}

// CommandsScenario is a loadgen run in a report; bySteps adds a latency
// row per command of the life.
func CommandsScenario(name string, res loadgen.Result, bySteps bool, t Targets) benchreport.Scenario {
	cfg := res.Config
	mode := fmt.Sprintf("closed loop, %d clients", cfg.Clients)
	if cfg.Rate > 0 {
		mode = fmt.Sprintf("open loop at %.0f commands/s (latency from each command's due time), %d clients", cfg.Rate, cfg.Clients)
	}
	if cfg.Keyed {
		mode += ", an Idempotency-Key on every command"
	}
	s := benchreport.Scenario{Name: name, About: fmt.Sprintf("the order lifecycle over HTTP, %s, %s measured after %s", mode, cfg.Duration, cfg.Warmup)}
	s.Latencies = append(s.Latencies, benchreport.NewLatency("commands", res.Latency().Percentiles(), res.PerSecond(), t.Command))
	if bySteps {
		for st, h := range res.ByStep {
			s.Latencies = append(s.Latencies, benchreport.NewLatency(loadgen.Step(st).String(), h.Percentiles(), 0, ""))
		}
	}
	s.Figures = append(s.Figures, benchreport.Figure{Name: "commands/s (2xx)", Value: res.PerSecond(), Unit: "/s", Target: t.Rate})
	s.Notes = append(s.Notes, commandNotes(res)...)
	return s
}

func commandNotes(res loadgen.Result) []string {
	var notes []string
	total := res.OK + res.Failed()
	if len(res.Errors) == 0 && res.Unsent.Count() == 0 {
		notes = append(notes, fmt.Sprintf("%d commands, no errors; %d orders delivered", total, res.Orders))
	} else {
		var by []string
		for _, st := range slices.Sorted(maps.Keys(res.Errors)) {
			label := fmt.Sprint(st)
			if st == 0 {
				label = "no answer"
			}
			by = append(by, fmt.Sprintf("%s ×%d (first: %s)", label, res.Errors[st], clip(res.FirstError[st], 160)))
		}
		if n := res.Unsent.Count(); n > 0 {
			by = append(by, fmt.Sprintf("unsent ×%d", n))
		}
		notes = append(notes, fmt.Sprintf("%d commands, %d failed: %s", total, res.Failed(), strings.Join(by, "; ")))
	}
	if res.Config.Rate > 0 {
		n := fmt.Sprintf("%d commands were due; the latest was sent %s after its due time", res.Slots, res.Behind.Round(time.Microsecond))
		if res.Overloaded {
			n += fmt.Sprintf("; the run stopped early: the clients fell more than %s behind (the unsent commands are in the histogram at the latency they had reached, a lower bound)", res.Config.MaxBehind)
		}
		notes = append(notes, n)
	}
	if res.Dials > res.Config.Clients {
		notes = append(notes, fmt.Sprintf("%d connections opened for %d clients (some broke)", res.Dials, res.Config.Clients))
	}
	return notes
}

// PipelineScenario is a pipebench run in a report.
func PipelineScenario(name string, res pipebench.Result, t Targets) benchreport.Scenario {
	cfg := res.Config
	s := benchreport.Scenario{Name: name, About: fmt.Sprintf("all roles in one process, open loop at %.0f commands/s, %d clients, %s measured after %s; freshness probed on 1 command in %d",
		cfg.Rate, cfg.Clients, cfg.Duration, cfg.Warmup, cfg.FreshEvery)}
	c := res.Commands
	s.Latencies = append(s.Latencies,
		benchreport.NewLatency("command (from due time)", c.Latency().Percentiles(), c.PerSecond(), t.Command),
		benchreport.NewLatency("2xx → every read model fresh", res.Fresh.Percentiles(), 0, t.Fresh))
	for i, h := range res.FreshBy {
		s.Latencies = append(s.Latencies, benchreport.NewLatency("2xx → "+res.ReadModels[i]+" fresh", h.Percentiles(), 0, ""))
	}
	s.Latencies = append(s.Latencies, benchreport.NewLatency("2xx → WebSocket frame", res.WS.Percentiles(), 0, t.WS))

	caught := benchreport.Figure{Name: "lag back to 0 after the load", Value: res.CaughtUp.Seconds(), Unit: "s", Target: t.CaughtUp}
	if !res.Drained {
		caught.Name = fmt.Sprintf("lag NOT back to 0 within %s after the load", cfg.DrainTimeout)
	}
	var maxLag int64
	for _, l := range res.Lag {
		if l.T <= res.LoadEnd {
			for _, n := range l.Events {
				maxLag = max(maxLag, n)
			}
		}
	}
	s.Figures = append(s.Figures, caught, benchreport.Figure{Name: "largest projection lag during the load", Value: float64(maxLag), Unit: "events"})

	series := map[string]*benchreport.Series{}
	relay := &benchreport.Series{Name: "relay", Unit: "events behind"}
	for _, l := range res.Lag {
		for _, n := range slices.Sorted(maps.Keys(l.Events)) {
			if series[n] == nil {
				series[n] = &benchreport.Series{Name: n, Unit: "events behind"}
			}
			series[n].Points = append(series[n].Points, [2]float64{l.T, float64(l.Events[n])})
		}
		if l.RelayEvents >= 0 {
			relay.Points = append(relay.Points, [2]float64{l.T, float64(l.RelayEvents)})
		}
	}
	for _, n := range slices.Sorted(maps.Keys(series)) {
		s.Lag = append(s.Lag, *series[n])
	}
	if len(relay.Points) > 0 {
		s.Lag = append(s.Lag, *relay)
	}
	s.Marks = []benchreport.Mark{{Name: "measured from", X: cfg.Warmup.Seconds()}, {Name: "load ends", X: res.LoadEnd}}

	s.Notes = append(s.Notes, commandNotes(c)...)
	p := res.Probes
	fresh := fmt.Sprintf("freshness: %d commands sampled, %d dropped (probe queue full), %d failed, %d still stale after the server's wait and asked again, %d given up at the end (recorded as lower bounds)",
		p.Sampled, p.Dropped, p.Failed, p.Reasked, p.Unresolved)
	if st := res.ProbeStart.Percentiles(); st.Count > 0 {
		fresh += fmt.Sprintf("; probes started p99 %s after the 2xx", st.P99)
	}
	if p.FirstFailure != "" {
		fresh += "; first failure: " + clip(p.FirstFailure, 200)
	}
	s.Notes = append(s.Notes, fresh)
	s.Notes = append(s.Notes, fmt.Sprintf("WebSocket: %d event frames read, %d commands without a frame, %d frames before their 2xx was read, %d reconnects",
		res.WSFrames, res.WSMissing, res.WSEarly, res.Reconnects))
	if res.LagErrors > 0 {
		s.Notes = append(s.Notes, fmt.Sprintf("GET /v1/projections failed %d times", res.LagErrors))
	}
	return s
}

// DrainScenario is a drainbench run in a report.
func DrainScenario(res drainbench.Result, cfg drainbench.Config, t Targets) benchreport.Scenario {
	s := benchreport.Scenario{Name: "drain",
		About: fmt.Sprintf("%d events of %d orders seeded, published to in-process kfake (%d partitions), consumed by fresh groups of every projection",
			res.Events, res.Orders, cfg.Partitions)}
	drained := benchreport.Figure{Name: "drain, backlog events/s", Value: res.DrainRate(), Unit: "events/s", Target: t.Drain}
	if !res.CaughtUp {
		drained.Name = fmt.Sprintf("drain cut at %s: slowest projection's events/s", cfg.Timeout)
	}
	if res.Rebuild > 0 {
		drained.Ratio, drained.RatioTo = res.DrainRate()/res.RebuildRate(), "rebuild"
	}
	s.Figures = append(s.Figures, drained)
	if res.Rebuild > 0 {
		s.Figures = append(s.Figures, benchreport.Figure{Name: "rebuild load (RebuildAll), events/s", Value: res.RebuildRate(), Unit: "events/s"})
	}
	s.Figures = append(s.Figures,
		benchreport.Figure{Name: "relay publish to kfake, events/s", Value: res.PublishRate(), Unit: "events/s"},
		benchreport.Figure{Name: "drain time", Value: res.Drain.Seconds(), Unit: "s"})
	for _, p := range res.Projections {
		if p.At > 0 {
			s.Notes = append(s.Notes, fmt.Sprintf("%s caught up after %s", p.Name, p.At.Round(10*time.Millisecond)))
		} else {
			s.Notes = append(s.Notes, fmt.Sprintf("%s did not catch up: %d of %d events applied", p.Name, p.Applied, res.Events))
		}
	}
	s.Notes = append(s.Notes, fmt.Sprintf("first event applied %s after the projector started (consumer groups joining); seed %s, publish %s, rebuild to the last swap %s",
		res.FirstApplied.Round(10*time.Millisecond), res.Seed.Round(10*time.Millisecond), res.Publish.Round(10*time.Millisecond), res.RebuildTotal.Round(10*time.Millisecond)))
	return s
}

func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// FindMaxScenario is a find-max search in a report: one figure per rate
// tried, and the highest sustained.
func FindMaxScenario(best float64, steps []pipebench.Step, window, maxLag time.Duration) benchreport.Scenario {
	s := benchreport.Scenario{Name: "pipeline find-max",
		About: fmt.Sprintf("rates tried for %s each; sustained: lag and freshness p99 under %s, the schedule kept, errors under 0.1%%, drained after", window, maxLag)}
	s.Figures = append(s.Figures, benchreport.Figure{Name: "highest sustained rate", Value: best, Unit: "commands/s"})
	if len(steps) > 0 && !slices.ContainsFunc(steps, func(st pipebench.Step) bool { return !st.Sustainable }) {
		s.Notes = append(s.Notes, fmt.Sprintf("every rate tried was sustained: the maximum is at least %.0f commands/s (allow more steps)", best))
	}
	for _, st := range steps {
		verdict := "sustained"
		if !st.Sustainable {
			verdict = "not sustained: " + st.Why
		}
		p := st.Result.Fresh.Percentiles()
		s.Notes = append(s.Notes, fmt.Sprintf("%.0f commands/s: %s (command p99 %s, freshness p99 %s)", st.Rate, verdict,
			st.Result.Commands.Latency().Percentiles().P99, p.P99))
	}
	return s
}
