package main

import (
	"context"
	"os"
	"time"

	"github.com/orderflow/orderflow/internal/benchreport"
	"github.com/orderflow/orderflow/internal/benchsuite"
	"github.com/orderflow/orderflow/internal/drainbench"
	"github.com/orderflow/orderflow/streams/projector"
)

// consumeBacklog is the drain benchmark's only coupling to the projector:
// the projector as serve runs it, on the benchmark's broker and groups.
func consumeBacklog(ctx context.Context, env drainbench.Env) error {
	return projector.Run(ctx, projector.Config{
		Kafka: env.Kafka, Topic: env.Topic, DLQTopic: env.DLQTopic, Partitions: env.Partitions, Verifier: env.Verifier,
		Runtime: env.Runtime, Projections: env.Projections, GroupPrefix: env.GroupPrefix, Logger: env.Logger,
	})
}

func runBenchDrain(ctx context.Context, args []string) error {
	var (
		c       common
		cfg     drainbench.Config
		seedVal int
		out     string
	)
	f := newFlags("bench drain", "Seeds a backlog of realistic orders' events (COPY) into a fresh database, has the relay publish it to an in-process Kafka broker (kfake), then times fresh consumer groups of every projection until every read model holds every event; then rebuilds every projection from the store (RebuildAll) for its load rate. DATABASE_URL must be a migrated database with no events (it is migrated here if needed).")
	c.register(f)
	f.int(&cfg.Events, "events", "ORDERFLOW_BENCH_EVENTS", 1_000_000, "backlog events to seed (whole orders, so about this many)")
	f.int(&cfg.Partitions, "partitions", "ORDERFLOW_KAFKA_PARTITIONS", 12, "partitions of the events topic")
	f.int(&seedVal, "seed", "ORDERFLOW_BENCH_SEED", 1, "random seed of the orders")
	f.duration(&cfg.Timeout, "timeout", "ORDERFLOW_BENCH_DRAIN_TIMEOUT", 10*time.Minute, "longest the drain may take; a drain cut short reports the slowest projection's rate so far")
	f.bool(&cfg.Rebuild, "rebuild", "ORDERFLOW_BENCH_REBUILD", true, "also rebuild every projection from the store, for its load rate")
	f.string(&out, "out", "ORDERFLOW_BENCH_OUT", "", "directory to write the report into as JSON and HTML (empty: print only)")
	if err := f.parse(args, func() {
		c.validate(f, true)
		f.check(cfg.Events < 1, "--events must be at least 1")
		f.check(cfg.Partitions < 1, "--partitions must be at least 1")
		f.check(seedVal < 1, "--seed must be at least 1")
		f.check(cfg.Timeout <= 0, "--timeout must be positive")
	}); err != nil {
		return err
	}
	if err := ensureMigrated(ctx, c.databaseURL); err != nil {
		return err
	}
	cfg.DatabaseURL, cfg.Seed, cfg.Consume, cfg.Logger = c.databaseURL, uint64(seedVal), consumeBacklog, c.logger(os.Stderr) // #nosec G115 -- --seed is validated ≥ 1
	info, err := benchServerInfo(ctx, c.databaseURL)
	if err != nil {
		return err
	}
	start := time.Now()
	res, err := drainbench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	rep := benchreport.Report{Title: "orderflow bench drain", Started: start, Seconds: time.Since(start).Seconds(), Machine: info,
		Scenarios: []benchreport.Scenario{benchsuite.DrainScenario(res, cfg, benchsuite.Targets{})}}
	return writeReport(rep, out, "bench-drain")
}
