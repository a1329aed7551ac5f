// Package benchsuite is `make bench`: every system benchmark in one run on
// this machine, each on a fresh database, with pgbench measured in the same
// run as the bound, gathered into one report (internal/benchreport).
//
// The HTTP scenarios start the built binary (`orderflow serve`, embedded
// Kafka, free local ports) as a child process per scenario and drive it
// from this process (internal/loadgen, internal/pipebench); the drain runs
// in this process (internal/drainbench). Scenarios run one after the
// other, never overlapping: the generator and the server share the cores.
package benchsuite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/benchreport"
	"github.com/orderflow/orderflow/internal/drainbench"
	"github.com/orderflow/orderflow/internal/loadgen"
	"github.com/orderflow/orderflow/internal/pgbench"
	"github.com/orderflow/orderflow/internal/pipebench"
)

// Scenarios are the suite's scenarios in the order they run. find-max runs
// only when asked for.
var Scenarios = []string{"pgbench", "api-closed", "api-keyed", "api-open", "pipeline", "websocket", "drain", "find-max"}

// findMaxLag is the lag find-max allows a sustained rate.
const findMaxLag = 2 * time.Second

// Config configures Run.
type Config struct {
	// AdminURL is a server where this role may create databases. Required.
	AdminURL string
	// Binary is the orderflow binary the HTTP scenarios serve. Required.
	Binary string
	// OutDir receives bench.json, bench.html and each server's log.
	OutDir string
	// Only lists the scenarios to run (names in Scenarios); empty runs all
	// but find-max.
	Only []string
	// Duration is each scenario's measured time (pgbench's too), after
	// Warmup.
	Duration, Warmup time.Duration
	// Clients of every HTTP scenario and of pgbench.
	Clients int
	// MaxBehind ends an open-loop scenario whose clients fall this far
	// behind the schedule (loadgen.Config.MaxBehind); 0 means loadgen's
	// default.
	MaxBehind time.Duration
	// OpenRate is api-open's rate; PipelineRate pipeline's; WSRate
	// websocket's (commands per second).
	OpenRate, PipelineRate, WSRate float64
	// PipelineDrainTimeout bounds the wait for the lag after a pipeline load.
	PipelineDrainTimeout time.Duration
	// DrainEvents and DrainTimeout configure the drain; Consume is its
	// projector (see drainbench.Consume). Required for the drain.
	DrainEvents  int
	DrainTimeout time.Duration
	Consume      drainbench.Consume
	// FindMaxWindow is how long find-max holds each rate.
	FindMaxWindow time.Duration
	// Migrate migrates a fresh database (pgbench's table is shaped like
	// events). Required.
	Migrate func(ctx context.Context, url string) error
	// Machine describes the server and the client for the report header.
	Machine string
	Logger  *slog.Logger
}

// Estimate is roughly how long Run takes with cfg (servers' starts and
// drains at their likely worst).
func (c Config) Estimate() time.Duration {
	var d time.Duration
	per := c.Warmup + c.Duration + 5*time.Second
	for _, s := range c.Selected() {
		switch s {
		case "pgbench":
			d += c.Duration + 5*time.Second
		case "api-closed", "api-keyed", "api-open":
			d += per
		case "pipeline", "websocket":
			d += per + c.PipelineDrainTimeout/2
		case "drain":
			d += time.Duration(c.DrainEvents/20000)*time.Second + min(c.DrainTimeout, time.Duration(c.DrainEvents/25000)*time.Second) + 10*time.Second
		case "find-max":
			d += 8 * (c.Warmup + c.FindMaxWindow + c.PipelineDrainTimeout/2)
		}
	}
	return d
}

// Selected is the scenarios Run runs, in order.
func (c Config) Selected() []string {
	if len(c.Only) == 0 {
		return Scenarios[:len(Scenarios)-1]
	}
	var out []string
	for _, s := range Scenarios {
		if slices.Contains(c.Only, s) {
			out = append(out, s)
		}
	}
	return out
}

// Validate reports what cannot work.
func (c Config) Validate() error {
	var errs []error
	for _, s := range c.Only {
		if !slices.Contains(Scenarios, s) {
			errs = append(errs, fmt.Errorf("unknown scenario %q (want some of %s)", s, strings.Join(Scenarios, ", ")))
		}
	}
	if c.AdminURL == "" || c.Binary == "" || c.OutDir == "" || c.Migrate == nil {
		errs = append(errs, errors.New("AdminURL, Binary, OutDir and Migrate are required"))
	}
	if slices.Contains(c.Selected(), "drain") && c.Consume == nil {
		errs = append(errs, errors.New("the drain needs Consume"))
	}
	if c.Duration <= 0 || c.Warmup < 0 || c.Clients < 1 || c.OpenRate <= 0 || c.PipelineRate <= 0 || c.WSRate <= 0 ||
		c.PipelineDrainTimeout <= 0 || c.MaxBehind < 0 || c.DrainEvents < 1 || c.DrainTimeout <= 0 || c.FindMaxWindow <= 0 {
		errs = append(errs, errors.New("durations, rates, clients and events must be positive"))
	}
	return errors.Join(errs...)
}

// Run runs the selected scenarios and writes the report. A scenario that
// fails is reported as failed and the others still run; the error then
// names every failure.
func Run(ctx context.Context, cfg Config) (benchreport.Report, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return benchreport.Report{}, err
	}
	if err := os.MkdirAll(cfg.OutDir, 0o750); err != nil {
		return benchreport.Report{}, err
	}
	start := time.Now()
	r := &suite{cfg: cfg, log: cfg.Logger, stamp: strconv.FormatInt(start.Unix(), 10)}
	var err error
	if r.tokens, err = auth.NewDevTokens(r.devDir(), 24*time.Hour); err != nil {
		return benchreport.Report{}, err
	}
	rep := benchreport.Report{Title: "orderflow make bench", Started: start, Machine: cfg.Machine, Settings: map[string]string{
		"duration": cfg.Duration.String(), "warmup": cfg.Warmup.String(), "clients": strconv.Itoa(cfg.Clients),
		"scenarios": strings.Join(cfg.Selected(), ","), "drain_events": strconv.Itoa(cfg.DrainEvents),
	}}
	var failures []error
	for _, name := range cfg.Selected() {
		if ctx.Err() != nil {
			break
		}
		r.log.Info("bench: scenario", "name", name)
		s, err := r.run(ctx, name)
		if err != nil {
			failures = append(failures, fmt.Errorf("%s: %w", name, err))
			if s.Name == "" {
				s.Name = name
			}
			s.Notes = append(s.Notes, "FAILED: "+err.Error())
		}
		rep.Scenarios = append(rep.Scenarios, s)
	}
	r.ratios(&rep)
	rep.Seconds = time.Since(start).Seconds()
	return rep, errors.Join(append(failures, ctx.Err())...)
}

// suite is one Run's state: what later scenarios are compared with.
type suite struct {
	cfg     Config
	log     *slog.Logger
	stamp   string
	pgTPS   float64
	unkeyed float64
	// tokens are the load's: the servers run with development
	// authentication trusting the key in OutDir/dev-jwt.
	tokens *auth.DevTokens
}

func (r *suite) run(ctx context.Context, name string) (benchreport.Scenario, error) {
	cfg := r.cfg
	switch name {
	case "pgbench":
		return r.pgbench(ctx)
	case "api-closed", "api-keyed":
		keyed := name == "api-keyed"
		var res loadgen.Result
		err := r.withServer(ctx, name, "api", func(srv *server) (err error) {
			res, err = loadgen.Run(ctx, loadgen.Config{URL: srv.URL, Clients: cfg.Clients, Keyed: keyed, Warmup: cfg.Warmup, Duration: cfg.Duration,
				Authorization: r.tokens.Customer})
			return err
		})
		if err != nil {
			return benchreport.Scenario{}, err
		}
		t := Targets{Rate: "≥ 1.0× pgbench"}
		if keyed {
			t.Rate = "≥ 0.8× unkeyed"
		} else {
			r.unkeyed = res.PerSecond()
		}
		return CommandsScenario(name+" (--roles api)", res, false, t), nil
	case "api-open":
		var res loadgen.Result
		err := r.withServer(ctx, name, "api", func(srv *server) (err error) {
			res, err = loadgen.Run(ctx, loadgen.Config{URL: srv.URL, Clients: cfg.Clients, Rate: cfg.OpenRate, Warmup: cfg.Warmup, Duration: cfg.Duration, MaxBehind: cfg.MaxBehind,
				Authorization: r.tokens.Customer})
			return err
		})
		if err != nil {
			return benchreport.Scenario{}, err
		}
		return CommandsScenario(name+" (--roles api)", res, false, Targets{Command: "p99 < 3 ms"}), nil
	case "pipeline", "websocket":
		rate, t := cfg.PipelineRate, Targets{Command: "p99 < 50 ms", Fresh: "p99 < 250 ms", CaughtUp: "< 1 s"}
		if name == "websocket" {
			rate, t = cfg.WSRate, Targets{WS: "p99 < 50 ms"}
		}
		var res pipebench.Result
		err := r.withServer(ctx, name, "api,relay,projector,hub", func(srv *server) (err error) {
			res, err = pipebench.Run(ctx, pipebench.Config{URL: srv.URL, OpsURL: srv.OpsURL, Rate: rate, Clients: cfg.Clients, Warmup: cfg.Warmup,
				Duration: cfg.Duration, DrainTimeout: cfg.PipelineDrainTimeout, MaxBehind: cfg.MaxBehind, Logger: r.log,
				Authorization: r.tokens.Operator(), Tokens: r.tokens.Customer})
			return err
		})
		if err != nil {
			return benchreport.Scenario{}, err
		}
		return PipelineScenario(fmt.Sprintf("%s %.0f/s (all roles)", name, rate), res, t), nil
	case "drain":
		return r.drain(ctx)
	case "find-max":
		var (
			best  float64
			steps []pipebench.Step
		)
		err := r.withServer(ctx, name, "api,relay,projector,hub", func(srv *server) (err error) {
			best, steps, err = pipebench.FindMax(ctx, pipebench.FindMaxConfig{MaxLag: findMaxLag, Pipeline: pipebench.Config{URL: srv.URL, OpsURL: srv.OpsURL,
				Rate: cfg.PipelineRate, Clients: cfg.Clients, Warmup: cfg.Warmup, Duration: cfg.FindMaxWindow,
				DrainTimeout: cfg.PipelineDrainTimeout, MaxBehind: cfg.MaxBehind, Logger: r.log,
				Authorization: r.tokens.Operator(), Tokens: r.tokens.Customer}},
				func(s pipebench.Step) {
					r.log.Info("bench: find-max step", "rate", s.Rate, "sustained", s.Sustainable, "why", s.Why)
				})
			return err
		})
		if err != nil && len(steps) == 0 {
			return benchreport.Scenario{}, err
		}
		return FindMaxScenario(best, steps, cfg.FindMaxWindow, findMaxLag), err
	}
	return benchreport.Scenario{}, fmt.Errorf("unknown scenario %q", name)
}

// database makes a fresh, migrated database for scenario name.
func (r *suite) database(ctx context.Context, name string) (string, func(), error) {
	db := "orderflow_bench_" + r.stamp + "_" + strings.ReplaceAll(name, "-", "_")
	url, drop, err := scratchDB(ctx, r.cfg.AdminURL, db)
	if err != nil {
		return "", nil, err
	}
	if err := r.cfg.Migrate(ctx, url); err != nil {
		drop()
		return "", nil, err
	}
	return url, drop, nil
}

// devDir holds the development key the servers trust and the tokens are
// signed with.
func (r *suite) devDir() string { return filepath.Join(r.cfg.OutDir, "dev-jwt") }

// withServer runs fn against a fresh `orderflow serve --roles roles` on a
// fresh database, stopped and dropped afterwards.
func (r *suite) withServer(ctx context.Context, name, roles string, fn func(*server) error) error {
	db, drop, err := r.database(ctx, name)
	if err != nil {
		return err
	}
	defer drop()
	logPath := filepath.Join(r.cfg.OutDir, "serve-"+name+".log")
	srv, err := startServer(ctx, r.cfg.Binary, db, roles, r.devDir(), logPath)
	if err != nil {
		return err
	}
	defer srv.stop()
	r.log.Info("bench: serving", "scenario", name, "roles", roles, "url", srv.URL, "log", logPath)
	return fn(srv)
}

func (r *suite) pgbench(ctx context.Context) (benchreport.Scenario, error) {
	db, drop, err := r.database(ctx, "pgbench")
	if err != nil {
		return benchreport.Scenario{}, err
	}
	defer drop()
	res, err := pgbench.Inserts(ctx, db, pgbench.Options{Clients: r.cfg.Clients, Duration: r.cfg.Duration})
	if err != nil {
		return benchreport.Scenario{}, err
	}
	r.pgTPS = res.TPS
	s := benchreport.Scenario{Name: "pgbench",
		About:   "the bound: one event-shaped row per transaction into a table shaped like events (same indexes), same concurrency",
		Figures: []benchreport.Figure{{Name: fmt.Sprintf("one row per transaction, %d clients", res.Clients), Value: res.TPS, Unit: "tx/s"}}}
	if res.Capped {
		s.Notes = append(s.Notes, fmt.Sprintf("capped at %d clients instead of %d: the server has not the connections to spare", res.Clients, r.cfg.Clients))
	}
	return s, nil
}

func (r *suite) drain(ctx context.Context) (benchreport.Scenario, error) {
	db, drop, err := r.database(ctx, "drain")
	if err != nil {
		return benchreport.Scenario{}, err
	}
	defer drop()
	dc := drainbench.Config{DatabaseURL: db, Events: r.cfg.DrainEvents, Timeout: r.cfg.DrainTimeout, Rebuild: true,
		Consume: r.cfg.Consume, Logger: r.log}
	res, err := drainbench.Run(ctx, dc)
	if err != nil {
		return benchreport.Scenario{}, err
	}
	return DrainScenario(res, dc, Targets{Drain: "≥ 25 000 events/s"}), nil
}

// ratios puts the comparisons in the report once every scenario ran:
// commands/s to pgbench, keyed to unkeyed.
func (r *suite) ratios(rep *benchreport.Report) {
	for i := range rep.Scenarios {
		s := &rep.Scenarios[i]
		if len(s.Figures) == 0 || len(s.Latencies) == 0 {
			continue
		}
		f := &s.Figures[0]
		switch {
		case strings.HasPrefix(s.Name, "api-closed") && r.pgTPS > 0:
			f.Ratio, f.RatioTo = f.Value/r.pgTPS, "pgbench"
		case strings.HasPrefix(s.Name, "api-keyed") && r.unkeyed > 0:
			f.Ratio, f.RatioTo = f.Value/r.unkeyed, "unkeyed"
		}
	}
}
