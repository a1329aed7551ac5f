package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/orderflow/orderflow/internal/benchreport"
	"github.com/orderflow/orderflow/internal/drainbench"
	"github.com/orderflow/orderflow/streams/projector"
)

// consumeBacklog is the drain benchmark's only coupling to the projector:
// the projector as serve runs it, on the benchmark's broker and groups.
func consumeBacklog(ctx context.Context, env drainbench.Env) error {
	return projector.Run(ctx, projector.Config{
		Kafka: env.Kafka, Topic: env.Topic, DLQTopic: env.DLQTopic, Partitions: env.Partitions,
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
		c.validate(f)
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
	cfg.DatabaseURL, cfg.Seed, cfg.Consume, cfg.Logger = c.databaseURL, uint64(seedVal), consumeBacklog, c.logger(os.Stderr)
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
		Scenarios: []benchreport.Scenario{drainScenario(res, cfg)}}
	return writeReport(rep, out, "bench-drain")
}

// drainScenario is the drain's part of a report.
func drainScenario(res drainbench.Result, cfg drainbench.Config) benchreport.Scenario {
	s := benchreport.Scenario{Name: "drain",
		About: fmt.Sprintf("%d events of %d orders seeded, published to kfake (%d partitions), consumed by fresh groups of every projection", res.Events, res.Orders, cfg.Partitions)}
	drained := benchreport.Figure{Name: "drain, backlog events/s", Value: res.DrainRate(), Unit: "events/s", Target: "≥ 25 000 events/s"}
	if !res.CaughtUp {
		drained.Name = fmt.Sprintf("drain (cut at %s), slowest projection's events/s", cfg.Timeout)
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
