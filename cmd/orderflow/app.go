package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/orderflow/orderflow/commands"
	"github.com/orderflow/orderflow/commands/httpapi"
	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/health"
	"github.com/orderflow/orderflow/internal/httpx"
	"github.com/orderflow/orderflow/internal/ops"
	"github.com/orderflow/orderflow/internal/pg"
	"github.com/orderflow/orderflow/internal/tracing"
	"github.com/orderflow/orderflow/openapi"
	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/projections"
	"github.com/orderflow/orderflow/queries"
	"github.com/orderflow/orderflow/streams/envelope"
	"github.com/orderflow/orderflow/streams/hub"
	"github.com/orderflow/orderflow/streams/kafka"
	"github.com/orderflow/orderflow/streams/projector"
	"github.com/orderflow/orderflow/streams/relay"
	"github.com/orderflow/orderflow/web"
)

// app is one serving process: what every role shares (pools, metrics,
// readiness, the routes behind their rules), made by newApp, and the
// components each role adds to it (addAPI, addRelay, addProjector, addHub).
// Each component runs in the group until ctx ends; close releases what
// newApp and the roles opened, in reverse.
type app struct {
	c   serveConfig
	log *slog.Logger
	g   *errgroup.Group
	ctx context.Context // the group's: ends when a component fails

	pools     map[pg.Role]*pgxpool.Pool
	view      *pgxpool.Pool     // the read-only view every node serves (see newApp)
	viewStore *eventstore.Store // on view
	registry  *order.Registry
	metrics   *prometheus.Registry
	checks    *health.Checker
	tracing   *tracing.Provider

	guard   *auth.Guard
	mux     *http.ServeMux // the public listener's
	opsMux  *http.ServeMux // the operations listener's
	public  auth.Registrar // mux behind the rule table
	ops     auth.Registrar // opsMux behind the rule table
	api     auth.Registrar // mux behind the rule table and the rate limits
	clients *httpx.Clients
	limiter *httpx.RateLimiter
	users   *auth.Verifier // the bearer tokens'

	relay   *relay.Relay // nil without the relay role
	closers []func()
}

// newApp opens the pools of c's roles and sets up what every role shares.
func newApp(ctx context.Context, c serveConfig, log *slog.Logger) (a *app, err error) {
	a = &app{c: c, log: log, pools: map[pg.Role]*pgxpool.Pool{}, registry: order.NewRegistry()}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	a.metrics = prometheus.NewRegistry()
	a.metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if a.c.dbBreaker, err = c.budget.dbBreaker(a.metrics, log); err != nil {
		return a, err
	}
	c = a.c // servingPool reports to the breaker
	roles := c.dbRoles()
	if c.devLogins() {
		log.Warn("DEVELOPMENT DATABASE LOGIN: serving connections log in with DATABASE_URL (the schema owner's credentials) and SET ROLE to each component's role; in production give every role its own login (ORDERFLOW_DATABASE_URL_COMMAND, _RELAY, _PROJECTOR, _QUERY; README, Database roles)",
			"roles", fmt.Sprint(roles))
	}
	for _, r := range roles {
		p, err := c.servingPool(ctx, r, c.dbMaxConns, "orderflow "+strings.TrimPrefix(string(r), "orderflow_"))
		if err != nil {
			return a, err
		}
		a.closers = append(a.closers, p.Close)
		a.pools[r] = p
	}
	// The read-only view every node serves (/v1/projections, readiness):
	// the query role where this process has it, else the projector's or
	// the relay's, which may read projection progress too.
	for _, r := range []pg.Role{pg.Query, pg.Projector, pg.Relay} {
		if a.view = a.pools[r]; a.view != nil {
			break
		}
	}
	a.viewStore = eventstore.New(a.view)

	if a.tracing, err = startTracing(ctx, c, log); err != nil {
		return a, err
	}
	a.closers = append(a.closers, func() { stopTracing(ctx, a.tracing, log) })

	a.checks = health.New()
	a.checks.Add("postgres", c.dbBreaker.Guard(func(ctx context.Context) (string, error) {
		for _, r := range roles {
			if err := a.pools[r].Ping(ctx); err != nil {
				return "", fmt.Errorf("%s: %w", r, err)
			}
		}
		return "", nil
	}))
	versions := stdlib.OpenDBFromPool(a.view)
	a.closers = append(a.closers, func() { _ = versions.Close() })
	a.checks.Add("migrations", migrationsCheck(versions))

	if a.users, err = c.auth.verifier(ctx, log); err != nil {
		return a, err
	}
	owners, err := auth.NewStoreOwners(a.viewStore, auth.DefaultOwnersCache)
	if err != nil {
		return a, err
	}
	// Every route is registered through the guard, which serves it behind
	// its rule in internal/auth's table (a route missing there is refused
	// to everyone, and stops the start in serve).
	a.guard = auth.NewGuard(owners, log)
	a.mux, a.opsMux = http.NewServeMux(), http.NewServeMux()
	a.public, a.ops = a.guard.Mux(a.mux), a.guard.Mux(a.opsMux)
	if a.clients, err = c.http.clients(); err != nil {
		return a, err
	}
	if a.limiter, err = c.http.limiter(a.metrics, a.clients); err != nil {
		return a, err
	}
	// The rate limits run after authentication, so they count per subject,
	// and before the rule (a refused request costs its client a token).
	// After the rate limit: the request's deadline, and the database's
	// breaker, which refuses it before the rule reads anything (an order's
	// owner).
	a.api = a.guard.Mux(c.dbBreaker.Mux(httpx.DeadlineMux(c.budget.requestTimeout, a.limiter.Mux(a.mux))))
	a.public.HandleFunc("GET /healthz", health.Healthz)
	a.public.HandleFunc("GET /readyz", a.checks.Public(time.Second))
	a.ops.HandleFunc("GET /readyz", a.checks.Readyz)
	a.ops.HandleFunc("GET /metrics", promhttp.HandlerFor(a.metrics, promhttp.HandlerOpts{Registry: a.metrics}).ServeHTTP)
	// Profiles of the whole process under its real load, on the operations
	// listener only: `go tool pprof http://127.0.0.1:9090/debug/pprof/profile?seconds=30`.
	a.ops.HandleFunc("GET /debug/pprof/", pprof.Index)
	a.ops.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	a.ops.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	a.public.HandleFunc("GET /v1/openapi.yaml", openapi.Handler())
	a.public.HandleFunc("GET /{$}", web.Handler().ServeHTTP)
	a.public.HandleFunc("GET /assets/", web.Handler().ServeHTTP)
	return a, nil
}

// close releases what newApp and the roles opened, the last first.
func (a *app) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
}

// addAPI is the api role: the command and query APIs. Only the command
// role appends, so it keeps the partitions ready and expires the
// idempotency keys.
func (a *app) addAPI() error {
	// A group commit's batch is led by the Append that found the committer
	// idle, whose request waits for the batch past its own deadline (it
	// carries others' appends): bounding the batch by the request's budget
	// keeps that request within it too.
	store, err := eventstore.NewWithGroupCommit(a.pools[pg.Command], eventstore.GroupCommit{Timeout: a.c.budget.requestTimeout})
	if err != nil {
		return err
	}
	if err := store.EnsureAhead(a.ctx, time.Now()); err != nil {
		return err
	}
	svc, err := commands.NewService(commands.Config{Store: store, Registry: a.registry,
		CachedOrders: cmp.Or(a.c.orderCache, -1), // the flag's 0 is none
		Keys:         a.c.personal.keys(a.pools[pg.Command])})
	if err != nil {
		return err
	}
	httpapi.NewAPI(svc, a.log).Register(a.api)
	qapi, err := queries.NewAPI(a.pools[pg.Query], a.viewStore, a.registry, queries.Options{Logger: a.log, Keys: a.c.personal.keys(a.pools[pg.Query])})
	if err != nil {
		return err
	}
	qapi.Register(a.api)
	a.g.Go(func() error { return store.MaintainPartitions(a.ctx, 24*time.Hour, time.Now, a.log) })
	a.g.Go(func() error { return expireKeys(a.ctx, store, a.log) })
	return nil
}

// addRelay is the relay role: the store's events to Kafka, signed.
func (a *app) addRelay(kcfg kafka.Config, signer *envelope.Signer) error {
	c := a.c
	factor, minInsync := c.kafka.replicas()
	rl, err := relay.New(relay.Config{
		Login: c.login(pg.Relay), Pool: a.pools[pg.Relay], Kafka: kcfg, Topic: c.kafka.topic,
		Signer: signer, Unsigned: signer == nil && c.kafka.signing.trusted,
		Partitions: c.kafka.partitions, ReplicationFactor: factor, MinInsyncReplicas: minInsync, Registerer: a.metrics, Logger: a.log,
	})
	if err != nil {
		return err
	}
	a.relay = rl
	a.checks.Add("relay", relayCheck(rl))
	a.g.Go(func() error { return rl.Run(a.ctx) })
	return nil
}

// addProjector is the projector role: Kafka into the read models.
func (a *app) addProjector(kcfg kafka.Config, events *envelope.Verifier) error {
	c := a.c
	pool := a.pools[pg.Projector]
	factor, minInsync := c.kafka.replicas()
	rt, err := projections.NewRuntime(pool, eventstore.New(pool), a.registry, a.metrics, a.log)
	if err != nil {
		return err
	}
	cfg := projector.Config{
		Kafka: kcfg, Topic: c.kafka.topic, DLQTopic: c.kafka.dlqTopic(), Partitions: c.kafka.partitions, Verifier: events,
		ReplicationFactor: factor, MinInsyncReplicas: minInsync,
		SessionTimeout: c.kafka.session, Runtime: rt, Projections: projections.All(), Registerer: a.metrics, Logger: a.log,
		Tracer: a.tracing.Tracer(),
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	a.g.Go(func() error { return projector.Run(a.ctx, cfg) })
	return nil
}

// addHub is the hub role: GET /v1/stream, Kafka and the store to
// WebSockets. Every hub node reads every partition from the end (no group,
// nothing committed); history comes from the store.
func (a *app) addHub(kcfg kafka.Config, events *envelope.Verifier) error {
	c := a.c
	sub, err := kafka.NewSubscriber(kafka.SubscriberConfig{Config: kcfg, StartOffset: kafka.LastOffset}, a.log)
	if err != nil {
		return err
	}
	// Recoveries read on a pool of their own, so live delivery never waits
	// for a connection behind them.
	recoveryPool, err := c.servingPool(a.ctx, pg.Query, c.hub.recoveryConns, "orderflow hub recovery")
	if err != nil {
		_ = sub.Close()
		return err
	}
	a.closers = append(a.closers, recoveryPool.Close)
	recoveryStore, err := eventstore.NewWithGroupCommit(recoveryPool, eventstore.GroupCommit{Disabled: true}) // reads only
	if err != nil {
		_ = sub.Close()
		return err
	}
	hcfg := hub.Config{Store: a.viewStore, Keys: c.personal.keys(a.pools[pg.Query]), Subscriber: sub, Topic: c.kafka.topic, Verifier: events, Registerer: a.metrics, Logger: a.log,
		AllowedOrigins: splitList(c.hubOrigins), SocketSendBuffer: c.hubSendBuffer}
	c.hub.apply(&hcfg, a.clients, recoveryStore)
	h, err := hub.New(hcfg)
	if err != nil {
		_ = sub.Close()
		return err
	}
	// GET /v1/stream; Run closes its WebSockets (1001) when ctx ends.
	a.mux.Handle("GET "+hub.Path, a.limiter.Limit(httpx.ClassStream, a.guard.Protect("GET "+hub.Path, h)))
	a.g.Go(func() error {
		defer func() { _ = sub.Close() }()
		return h.Run(a.ctx)
	})
	return nil
}

// addKafkaRoles connects to Kafka (or starts the embedded broker) and adds
// the roles that use it.
func (a *app) addKafkaRoles() error {
	c := a.c
	kcfg, closeBroker, err := c.kafka.connect(a.log)
	if err != nil {
		return err
	}
	a.closers = append(a.closers, closeBroker)
	if err := c.kafka.ensureTopics(a.ctx, kcfg, a.log); err != nil {
		// Commands never need Kafka: keep serving, the relay retries.
		a.log.Error("could not create Kafka topics; the relay and consumers will retry", "err", err)
	}
	a.checks.Add("kafka-topics", topicsCheck(kcfg, c.kafka.topicSpecs()))
	signer, events, err := c.kafka.signing.setup(a.log)
	if err != nil {
		return err
	}
	if c.hasRole("relay") {
		if err := a.addRelay(kcfg, signer); err != nil {
			return err
		}
	}
	if c.hasRole("projector") {
		if err := a.addProjector(kcfg, events); err != nil {
			return err
		}
	}
	if c.hasRole("hub") {
		if err := a.addHub(kcfg, events); err != nil {
			return err
		}
	}
	return nil
}

// listen serves the public and the operations listeners, once every route
// is registered and has its rule.
func (a *app) listen() error {
	c := a.c
	// The one operations route that reads the database has the API's
	// budget (the profiler's and /metrics' time is the operator's).
	c.dbBreaker.Mux(httpx.DeadlineMux(c.budget.requestTimeout, a.ops)).
		HandleFunc("GET /v1/projections", ops.ProjectionsHandler(a.view, a.viewStore, a.relay, a.log))
	if unruled := a.guard.Unruled(); len(unruled) > 0 {
		return fmt.Errorf("routes without an access rule in internal/auth: %s", strings.Join(unruled, ", "))
	}
	httpx.HandleUnmatched(a.mux)
	publicHandler, opsHandler, err := c.http.handlers(a.log, a.metrics, a.users, a.mux, a.opsMux)
	if err != nil {
		return err
	}
	// Public requests only: probes and scrapes on the operations listener
	// would be most of the spans and say nothing.
	publicHandler = httpx.Trace(a.tracing.Tracer(), publicHandler)
	a.g.Go(func() error {
		return serveHTTP(a.ctx, c.http.server(publicHandler, a.log), c.httpAddr, c.http.tlsCertFile, c.http.tlsKeyFile, c.shutdownTimeout, a.log)
	})
	a.g.Go(func() error {
		return serveHTTP(a.ctx, c.http.server(opsHandler, a.log), c.http.opsAddr, "", "", c.shutdownTimeout, a.log)
	})
	return nil
}
