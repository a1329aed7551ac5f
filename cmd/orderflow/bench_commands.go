package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/benchreport"
	"github.com/orderflow/orderflow/internal/benchsuite"
	"github.com/orderflow/orderflow/internal/loadgen"
)

// benchLogging registers the log flags of the benchmarks that talk to a
// running orderflow over HTTP (no database of their own).
func benchLogging(f *flags, c *common) {
	f.string(&c.logFormat, "log-format", "ORDERFLOW_LOG_FORMAT", "text", "log format: text or json")
	f.string(&c.logLevel, "log-level", "ORDERFLOW_LOG_LEVEL", "info", "log level: debug, info, warn or error")
}

// benchDevDir is where the benchmarks find the development key to sign
// their tokens with: the server they drive must trust it
// (ORDERFLOW_AUTH_DEV=true, as make run).
func benchDevDir(f *flags, dir *string) {
	f.string(dir, "dev-dir", "ORDERFLOW_AUTH_DEV_DIR", auth.DefaultDevDir, "the development key the load's tokens are signed with; the server must run with ORDERFLOW_AUTH_DEV=true and this key (make run)")
}

func runBenchCommands(ctx context.Context, args []string) error {
	var (
		c    common
		cfg  loadgen.Config
		seed int
		out  string
		name string
		dev  string
	)
	f := newFlags("bench commands", "Drives a running orderflow with the order lifecycle (create with 2 items, add an item, place, pay, ship, deliver) over HTTP: closed loop (--rate 0: each client sends as soon as it is answered) or open loop at --rate commands/s (latency from each command's due time: no coordinated omission). Prints commands/s, p50/p95/p99/p99.9/max per command and overall, and errors by status.")
	benchLogging(f, &c)
	f.string(&cfg.URL, "url", "ORDERFLOW_BENCH_URL", "http://127.0.0.1:8080", "the running orderflow (api role)")
	f.int(&cfg.Clients, "clients", "ORDERFLOW_BENCH_CLIENTS", 64, "concurrent clients, each one connection and one order at a time")
	f.float(&cfg.Rate, "rate", "ORDERFLOW_BENCH_RATE", 0, "open-loop commands per second in total; 0 is closed loop")
	f.bool(&cfg.Keyed, "keyed", "ORDERFLOW_BENCH_KEYED", false, "send an Idempotency-Key with every command")
	f.duration(&cfg.Duration, "duration", "ORDERFLOW_BENCH_DURATION", 60*time.Second, "measured time")
	f.duration(&cfg.Warmup, "warmup", "ORDERFLOW_BENCH_WARMUP", 5*time.Second, "unmeasured time before it")
	f.duration(&cfg.MaxBehind, "max-behind", "ORDERFLOW_BENCH_MAX_BEHIND", 5*time.Second, "open loop: stop when the clients fall this far behind the schedule (the server does not keep up)")
	f.int(&cfg.Customers, "customers", "ORDERFLOW_BENCH_CUSTOMERS", 10000, "customers the orders are spread over")
	f.int(&seed, "seed", "ORDERFLOW_BENCH_SEED", 1, "random seed of the customer choice")
	f.string(&out, "out", "ORDERFLOW_BENCH_OUT", "", "directory to write the report into as JSON and HTML (empty: print only)")
	f.string(&name, "name", "ORDERFLOW_BENCH_NAME", "commands", "scenario name in the report")
	benchDevDir(f, &dev)
	if err := f.parse(args, func() {
		f.check(seed < 1, "--seed must be at least 1")
		cfg.Seed = uint64(seed) // #nosec G115 -- --seed is validated ≥ 1
		if err := cfg.Validate(); err != nil {
			f.check(true, "%v", err)
		}
	}); err != nil {
		return err
	}
	tokens, err := auth.NewDevTokens(dev, 24*time.Hour)
	if err != nil {
		return err
	}
	cfg.Authorization = tokens.Customer
	start := time.Now()
	fmt.Fprintf(os.Stderr, "bench commands: %s, %d clients, rate %g/s (0: closed loop), keyed %t, %s after %s warm-up\n",
		cfg.URL, cfg.Clients, cfg.Rate, cfg.Keyed, cfg.Duration, cfg.Warmup)
	res, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return err
	}
	rep := benchreport.Report{Title: "orderflow bench commands", Started: start, Seconds: time.Since(start).Seconds(),
		Machine: clientInfo(), Scenarios: []benchreport.Scenario{benchsuite.CommandsScenario(name, res, true, benchsuite.Targets{})}}
	return writeReport(rep, out, "bench-commands")
}
