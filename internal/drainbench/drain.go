// Package drainbench measures how fast the projectors drain a backlog: a
// seeded store (internal/seed, realistic orders, COPY) is published to an
// in-process Kafka broker (kfake) by the relay, then fresh consumer groups
// of every projection consume it from the first offset; the figure is
// backlog events per second until every read model holds every event. In
// the same run the rebuild (projections RebuildAll: the store folded once
// into every read model with COPY) loads the same events, for comparison.
//
// The projector is reached through one function, Consume, that the caller
// wires (cmd/orderflow): the benchmark knows nothing of how the projector
// is built, so a rewrite of it changes only that function.
package drainbench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/pg"
	"github.com/orderflow/orderflow/internal/seed"
	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/projections"
	"github.com/orderflow/orderflow/streams/envelope"
	"github.com/orderflow/orderflow/streams/kafka"
	"github.com/orderflow/orderflow/streams/relay"
)

// Consume runs every projection of env on env's Kafka until ctx ends. It
// is the benchmark's only coupling to the projector.
type Consume func(ctx context.Context, env Env) error

// Env is what Consume gets: a fresh broker holding the backlog on Topic,
// and consumer group ids under GroupPrefix that nobody has used.
type Env struct {
	Kafka       kafka.Config
	Topic       string
	DLQTopic    string
	Partitions  int
	Runtime     *projections.Runtime
	Projections []projections.Projection
	GroupPrefix string
	Logger      *slog.Logger
	// Verifier accepts the key the backlog was signed with (one generated
	// for the run, like the embedded broker's in serve).
	Verifier *envelope.Verifier
}

// Config configures Run. Zero values of optional fields mean the defaults
// written next to them.
type Config struct {
	// DatabaseURL is a migrated database with no events yet, in a role
	// that owns the schema. Required.
	DatabaseURL string
	// Events is the backlog to seed, rounded to whole orders. Default
	// 1 000 000.
	Events int
	// Partitions of the events topic. Default 12 (serve's default).
	Partitions int
	// Seed makes the seeded orders reproducible. Default 1.
	Seed uint64
	// Timeout bounds the drain; a drain cut short reports the rate of the
	// slowest projection so far. Default 10m.
	Timeout time.Duration
	// Rebuild also runs RebuildAll after the drain, for its load rate.
	Rebuild bool
	// Consume runs the projector. Required.
	Consume Consume
	Logger  *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Events == 0 {
		c.Events = 1_000_000
	}
	if c.Partitions == 0 {
		c.Partitions = 12
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Result is what a drain measured.
type Result struct {
	Events, Orders int64
	// Seed and Publish are the time to COPY the backlog in and for the
	// relay to have Kafka acknowledge all of it.
	Seed, Publish time.Duration
	// Drain runs from the projector's start until every read model held
	// every event (or the timeout); FirstApplied until the first event was
	// applied anywhere (the consumer groups joining).
	Drain, FirstApplied time.Duration
	CaughtUp            bool
	Projections         []ProjectionDrain
	// Rebuild is RebuildAll's load phase (one pass over the store into every
	// read model) and RebuildTotal its run to the last swap; zero unless
	// Config.Rebuild.
	Rebuild, RebuildTotal time.Duration
}

// ProjectionDrain is one projection's drain.
type ProjectionDrain struct {
	Name    string
	Applied int64         // events applied when it caught up or the drain stopped
	At      time.Duration // when it caught up (zero if it did not)
}

// DrainRate is backlog events per second until caught up; after a timeout,
// the slowest projection's events applied per second so far.
func (r Result) DrainRate() float64 {
	applied := r.Events
	for _, p := range r.Projections {
		applied = min(applied, p.Applied)
	}
	return rate(applied, r.Drain)
}

// RebuildRate is events per second of the rebuild's load phase.
func (r Result) RebuildRate() float64 { return rate(r.Events, r.Rebuild) }

// PublishRate is events per second from the store to Kafka.
func (r Result) PublishRate() float64 { return rate(r.Events, r.Publish) }

func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// Run seeds, publishes, drains and (optionally) rebuilds.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg.setDefaults()
	if cfg.DatabaseURL == "" || cfg.Consume == nil || cfg.Events < 1 || cfg.Partitions < 1 {
		return Result{}, errors.New("drain: DatabaseURL, Consume, Events ≥ 1 and Partitions ≥ 1 are required")
	}
	log := cfg.Logger
	owner, err := pg.ConnectOwner(ctx, cfg.DatabaseURL, pg.Options{MaxConns: 8, ApplicationName: "orderflow bench drain"})
	if err != nil {
		return Result{}, err
	}
	defer owner.Close()
	// serve's pool size: the projector gets what it has in production, as
	// the projector's database role (the development login: SET ROLE).
	app, err := pg.Connect(ctx, pg.Login{Role: pg.Projector, URL: cfg.DatabaseURL, SetRole: true},
		pg.Options{MaxConns: 20, ApplicationName: "orderflow bench drain"})
	if err != nil {
		return Result{}, err
	}
	defer app.Close()
	store := eventstore.New(app)
	if head, err := store.HeadPosition(ctx); err != nil {
		return Result{}, err
	} else if head != 0 {
		return Result{}, fmt.Errorf("drain wants a fresh, migrated database; this one has %d events", head)
	}
	reg := order.NewRegistry()
	var res Result

	orders, err := ordersFor(reg, cfg.Events, cfg.Seed)
	if err != nil {
		return res, err
	}
	log.Info("drain: seeding", "orders", orders, "events≈", cfg.Events)
	t0 := time.Now()
	sr, err := seed.Load(ctx, reg, seed.Config{Orders: orders, Seed: cfg.Seed},
		seed.Target{Events: owner, Partitions: eventstore.New(owner)}, nil)
	if err != nil {
		return res, err
	}
	res.Seed, res.Events, res.Orders = time.Since(t0), sr.Events, sr.Orders
	head, err := store.HeadPosition(ctx)
	if err != nil {
		return res, err
	}

	broker, err := kafka.NewBroker("127.0.0.1:0", log)
	if err != nil {
		return res, err
	}
	defer broker.Close()
	key, err := envelope.GenerateKey("bench")
	if err != nil {
		return res, err
	}
	signer, err := envelope.NewSigner(key)
	if err != nil {
		return res, err
	}
	verifier, err := envelope.NewVerifier(key)
	if err != nil {
		return res, err
	}
	env := Env{
		Kafka: kafka.Config{Brokers: broker.Addrs(), ClientID: "orderflow-bench-drain"},
		Topic: kafka.DefaultTopic, DLQTopic: kafka.DLQTopic(kafka.DefaultTopic), Partitions: cfg.Partitions,
		Projections: projections.All(), Logger: log,
		GroupPrefix: "orderflow.bench.drain." + strconv.FormatInt(time.Now().UnixNano(), 36) + ".",
		Verifier:    verifier,
	}
	if err := kafka.EnsureTopics(ctx, env.Kafka,
		kafka.TopicSpec{Name: env.Topic, Partitions: env.Partitions, ReplicationFactor: 1},
		kafka.TopicSpec{Name: env.DLQTopic, Partitions: 1, ReplicationFactor: 1}); err != nil {
		return res, err
	}
	log.Info("drain: publishing", "events", res.Events)
	if res.Publish, err = publish(ctx, cfg.DatabaseURL, env, signer, head, log); err != nil {
		return res, err
	}

	if env.Runtime, err = projections.NewRuntime(app, store, reg, prometheus.NewRegistry(), log); err != nil {
		return res, err
	}
	log.Info("drain: consuming", "groups", env.GroupPrefix+"*", "timeout", cfg.Timeout)
	if err := drain(ctx, cfg, app, env, &res); err != nil {
		return res, err
	}

	if cfg.Rebuild {
		log.Info("drain: rebuilding every projection from the store")
		t0 := time.Now()
		sts, err := env.Runtime.RebuildAll(ctx, owner, projections.All(), nil)
		if err != nil {
			return res, err
		}
		res.Rebuild, res.RebuildTotal = sts[0].Load, time.Since(t0)
	}
	return res, nil
}

// ordersFor is how many orders make about events events: the seed's mean
// events per order, from a sample of its own orders.
func ordersFor(reg *order.Registry, events int, seedVal uint64) (int, error) {
	g, err := seed.NewGenerator(reg, seed.Config{Orders: 20000, Seed: seedVal})
	if err != nil {
		return 0, err
	}
	for {
		rows, err := g.Next()
		if err != nil {
			return 0, err
		}
		if rows == nil {
			break
		}
	}
	st := g.Stats()
	return max(int(float64(events)*float64(st.Orders)/float64(st.Events)+0.5), 1), nil
}

// publish runs the relay until Kafka acknowledged every event up to head.
func publish(ctx context.Context, url string, env Env, signer *envelope.Signer, head int64, log *slog.Logger) (time.Duration, error) {
	login := pg.Login{Role: pg.Relay, URL: url, SetRole: true}
	pool, err := pg.Connect(ctx, login, pg.Options{MaxConns: 4, ApplicationName: "orderflow bench drain relay"})
	if err != nil {
		return 0, err
	}
	defer pool.Close()
	rl, err := relay.New(relay.Config{Login: login, Pool: pool, Kafka: env.Kafka, Topic: env.Topic, Signer: signer,
		Partitions: env.Partitions, Logger: log})
	if err != nil {
		return 0, err
	}
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, 1)
	start := time.Now()
	go func() { errc <- rl.Run(rctx) }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for rl.Status().Checkpoint < head {
		select {
		case err := <-errc:
			return 0, fmt.Errorf("relay stopped before publishing the backlog: %v", err)
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-tick.C:
		}
	}
	d := time.Since(start)
	stop()
	return d, <-errc
}

// pollEvery is how often the drain looks at the read models: the drain
// time is known to within it. Each look sums one versions table per
// projection still draining.
const pollEvery = 250 * time.Millisecond

// drain runs Consume and waits until every projection holds every event:
// the sum of its per-order applied versions (the <name>_versions table the
// runtime writes with every apply) equals the backlog, since an order's
// last version is its number of events.
func drain(ctx context.Context, cfg Config, app *pgxpool.Pool, env Env, res *Result) error {
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, 1)
	start := time.Now()
	go func() { errc <- cfg.Consume(cctx, env) }()
	res.Projections = make([]ProjectionDrain, len(env.Projections))
	for i, p := range env.Projections {
		res.Projections[i].Name = p.Name()
	}
	deadline := time.NewTimer(cfg.Timeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		select {
		case err := <-errc:
			return fmt.Errorf("projector stopped during the drain: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			res.Drain = time.Since(start)
			stop()
			return <-errc
		case <-tick.C:
		}
		at, left := time.Since(start), 0
		for i, p := range env.Projections {
			pd := &res.Projections[i]
			if pd.At > 0 {
				continue
			}
			if err := app.QueryRow(ctx, `SELECT coalesce(sum(version), 0) FROM `+p.Name()+`_versions`).Scan(&pd.Applied); err != nil {
				return fmt.Errorf("drain progress of %s: %w", p.Name(), err)
			}
			if pd.Applied > 0 && res.FirstApplied == 0 {
				res.FirstApplied = at
			}
			if pd.Applied >= res.Events {
				pd.At = at
			} else {
				left++
			}
		}
		if left == 0 {
			res.Drain, res.CaughtUp = at, true
			stop()
			return <-errc
		}
	}
}
