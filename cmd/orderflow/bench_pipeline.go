package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/benchreport"
	"github.com/orderflow/orderflow/internal/benchsuite"
	"github.com/orderflow/orderflow/internal/pipebench"
)

func runBenchPipeline(ctx context.Context, args []string) error {
	var (
		c       common
		cfg     pipebench.Config
		fm      pipebench.FindMaxConfig
		findMax bool
		out     string
		dev     string
	)
	f := newFlags("bench pipeline", "Drives a running orderflow (every role) at a fixed open-loop command rate and measures, per command, the time from its 2xx until every read model reflects it (its Consistency-Token sent to the four query endpoints, one command in --fresh-every) and until its event frame on a WebSocket subscribed to the orders channel; samples GET /v1/projections every second, then times the return to zero lag after the load. With --find-max, repeats at rising rates for --window each to find the highest whose lag stays under --max-lag.")
	benchLogging(f, &c)
	f.string(&cfg.URL, "url", "ORDERFLOW_BENCH_URL", "http://127.0.0.1:8080", "the running orderflow (all roles)")
	f.string(&cfg.OpsURL, "ops-url", "ORDERFLOW_BENCH_OPS_URL", "http://127.0.0.1:9090", "its operations listener (GET /v1/projections)")
	f.float(&cfg.Rate, "rate", "ORDERFLOW_BENCH_RATE", 1500, "open-loop commands per second (with --find-max: the first rate tried)")
	f.int(&cfg.Clients, "clients", "ORDERFLOW_BENCH_CLIENTS", 64, "concurrent clients: bound the commands in flight")
	f.bool(&cfg.Keyed, "keyed", "ORDERFLOW_BENCH_KEYED", false, "send an Idempotency-Key with every command")
	f.duration(&cfg.Duration, "duration", "ORDERFLOW_BENCH_DURATION", 60*time.Second, "measured time (with --find-max, --window is used instead)")
	f.duration(&cfg.Warmup, "warmup", "ORDERFLOW_BENCH_WARMUP", 5*time.Second, "unmeasured time before it")
	f.int(&cfg.FreshEvery, "fresh-every", "ORDERFLOW_BENCH_FRESH_EVERY", 50, "probe the freshness of one command in this many (1: every command)")
	f.int(&cfg.Probers, "probers", "ORDERFLOW_BENCH_PROBERS", 64, "freshness probes in flight at most")
	f.duration(&cfg.DrainTimeout, "drain-timeout", "ORDERFLOW_BENCH_DRAIN_TIMEOUT", 60*time.Second, "longest wait after the load for the lag to return to zero")
	f.duration(&cfg.MaxBehind, "max-behind", "ORDERFLOW_BENCH_MAX_BEHIND", 5*time.Second, "stop when the clients fall this far behind the schedule")
	f.bool(&findMax, "find-max", "ORDERFLOW_BENCH_FIND_MAX", false, "search for the highest sustainable rate")
	f.duration(&fm.Pipeline.Duration, "window", "ORDERFLOW_BENCH_WINDOW", 60*time.Second, "with --find-max: how long each rate must hold")
	f.duration(&fm.MaxLag, "max-lag", "ORDERFLOW_BENCH_MAX_LAG", 2*time.Second, "with --find-max: the lag (and freshness p99) a sustainable rate stays under")
	f.int(&fm.Steps, "max-steps", "ORDERFLOW_BENCH_MAX_STEPS", 8, "with --find-max: most rates tried")
	f.string(&out, "out", "ORDERFLOW_BENCH_OUT", "", "directory to write the report into as JSON and HTML (empty: print only)")
	benchDevDir(f, &dev)
	if err := f.parse(args, func() {
		if err := cfg.Validate(); err != nil {
			f.check(true, "%v", err)
		}
		f.check(findMax && (fm.Pipeline.Duration <= 0 || fm.MaxLag <= 0 || fm.Steps < 1), "--window and --max-lag must be positive, --max-steps at least 1")
	}); err != nil {
		return err
	}
	cfg.Logger = c.logger(os.Stderr)
	tokens, err := auth.NewDevTokens(dev, 24*time.Hour)
	if err != nil {
		return err
	}
	cfg.Authorization, cfg.Tokens = tokens.Operator(), tokens.Customer
	start := time.Now()
	rep := benchreport.Report{Title: "orderflow bench pipeline", Started: start, Machine: clientInfo()}
	if !findMax {
		fmt.Fprintf(os.Stderr, "bench pipeline: %s at %.0f commands/s, %d clients, %s after %s warm-up\n", cfg.URL, cfg.Rate, cfg.Clients, cfg.Duration, cfg.Warmup)
		res, err := pipebench.Run(ctx, cfg)
		if err != nil {
			return err
		}
		rep.Scenarios = append(rep.Scenarios, benchsuite.PipelineScenario(fmt.Sprintf("pipeline %.0f/s", cfg.Rate), res, benchsuite.Targets{}))
		rep.Seconds = time.Since(start).Seconds()
		return writeReport(rep, out, "bench-pipeline")
	}
	window := fm.Pipeline.Duration
	fm.Pipeline = cfg
	fm.Pipeline.Duration = window
	best, steps, err := pipebench.FindMax(ctx, fm, func(s pipebench.Step) {
		verdict := "sustained"
		if !s.Sustainable {
			verdict = "not sustained: " + s.Why
		}
		fmt.Fprintf(os.Stderr, "find-max: %.0f commands/s for %s: %s\n", s.Rate, window, verdict)
	})
	rep.Scenarios = append(rep.Scenarios, benchsuite.FindMaxScenario(best, steps, window, fm.MaxLag))
	rep.Seconds = time.Since(start).Seconds()
	if werr := writeReport(rep, out, "bench-pipeline-find-max"); err == nil {
		err = werr
	}
	return err
}
