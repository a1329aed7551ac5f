package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/orderflow/orderflow/internal/benchsuite"
)

func runBenchSuite(ctx context.Context, args []string) error {
	var (
		c         common
		cfg       benchsuite.Config
		scenarios string
	)
	f := newFlags("bench suite", "Runs every system benchmark (what `make bench` does), one after the other, each on a fresh database: pgbench one row per transaction (the bound), then against a fresh `orderflow serve` (this binary, embedded Kafka, free ports) --roles api closed loop, keyed, open loop; all roles at --pipeline-rate (freshness, lag) and at --ws-rate (WebSocket); the drain of a seeded backlog beside a rebuild. Prints one table with the ratios and writes it as bench.json and bench.html (charts) into --out, with each server's log. Scenarios: "+strings.Join(benchsuite.Scenarios, ", ")+" (find-max only when named).")
	c.register(f)
	f.string(&cfg.OutDir, "out", "ORDERFLOW_BENCH_OUT", "test-artifacts/bench", "directory of the report and the server logs")
	f.string(&scenarios, "scenarios", "ORDERFLOW_BENCH_SCENARIOS", "", "comma-separated scenarios to run (empty: all but find-max)")
	f.duration(&cfg.Duration, "duration", "ORDERFLOW_BENCH_DURATION", 60*time.Second, "measured time of every timed scenario, pgbench included")
	f.duration(&cfg.Warmup, "warmup", "ORDERFLOW_BENCH_WARMUP", 5*time.Second, "unmeasured time before each HTTP scenario")
	f.int(&cfg.Clients, "clients", "ORDERFLOW_BENCH_CLIENTS", 64, "HTTP clients, and pgbench's clients")
	f.duration(&cfg.MaxBehind, "max-behind", "ORDERFLOW_BENCH_MAX_BEHIND", 5*time.Second, "open loop: a scenario whose clients fall this far behind the schedule stops (the server does not sustain the rate)")
	f.float(&cfg.OpenRate, "open-rate", "ORDERFLOW_BENCH_OPEN_RATE", 1000, "api-open: open-loop commands per second")
	f.float(&cfg.PipelineRate, "pipeline-rate", "ORDERFLOW_BENCH_PIPELINE_RATE", 1500, "pipeline (and find-max's first step): commands per second")
	f.float(&cfg.WSRate, "ws-rate", "ORDERFLOW_BENCH_WS_RATE", 1000, "websocket: commands per second")
	f.duration(&cfg.PipelineDrainTimeout, "pipeline-drain-timeout", "ORDERFLOW_BENCH_PIPELINE_DRAIN_TIMEOUT", 60*time.Second, "longest wait after a pipeline load for the lag to return to zero")
	f.int(&cfg.DrainEvents, "drain-events", "ORDERFLOW_BENCH_EVENTS", 1_000_000, "drain: backlog events")
	f.duration(&cfg.DrainTimeout, "drain-timeout", "ORDERFLOW_BENCH_DRAIN_TIMEOUT", 3*time.Minute, "drain: longest the drain may take (then the slowest projection's rate so far is reported)")
	f.duration(&cfg.FindMaxWindow, "find-max-window", "ORDERFLOW_BENCH_WINDOW", 60*time.Second, "find-max: how long each rate must hold")
	f.string(&cfg.Binary, "binary", "ORDERFLOW_BENCH_BINARY", "", "orderflow binary to serve (default: this one)")
	if err := f.parse(args, func() {
		c.validate(f, true)
		cfg.Only = splitList(scenarios)
		cfg.AdminURL, cfg.Migrate, cfg.Consume = c.databaseURL, ensureMigrated, consumeBacklog
		if cfg.Binary == "" {
			exe, err := os.Executable()
			f.check(err != nil, "cannot find this binary (%v): set --binary", err)
			cfg.Binary = exe
		}
		if err := cfg.Validate(); err != nil {
			for _, l := range strings.Split(err.Error(), "\n") {
				f.check(true, "%s", l)
			}
		}
	}); err != nil {
		return err
	}
	cfg.Logger = c.logger(os.Stderr)
	info, err := benchServerInfo(ctx, c.databaseURL)
	if err != nil {
		return err
	}
	cfg.Machine = info
	fmt.Fprintf(os.Stderr, "bench suite: %s; about %s with these settings\n", strings.Join(cfg.Selected(), ","), cfg.Estimate().Round(time.Minute))
	rep, err := benchsuite.Run(ctx, cfg)
	if werr := writeReport(rep, cfg.OutDir, "bench"); err == nil {
		err = werr
	}
	return err
}
