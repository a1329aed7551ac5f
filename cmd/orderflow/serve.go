package main

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/orderflow/orderflow/commands"
	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/health"
	"github.com/orderflow/orderflow/internal/httpx"
	"github.com/orderflow/orderflow/internal/migrate"
	"github.com/orderflow/orderflow/internal/ops"
	"github.com/orderflow/orderflow/internal/pg"
	"github.com/orderflow/orderflow/internal/schema"
	"github.com/orderflow/orderflow/internal/tracing"
	"github.com/orderflow/orderflow/openapi"
	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/projections"
	"github.com/orderflow/orderflow/queries"
	"github.com/orderflow/orderflow/streams/hub"
	"github.com/orderflow/orderflow/streams/kafka"
	"github.com/orderflow/orderflow/streams/projector"
	"github.com/orderflow/orderflow/streams/relay"
	"github.com/orderflow/orderflow/web"
)

var allRoles = []string{"api", "relay", "projector", "hub"}

type serveConfig struct {
	common
	kafka           kafkaConfig
	httpAddr        string
	roles           string
	migrate         bool
	dbMaxConns      int
	orderCache      int
	shutdownTimeout time.Duration
	hubOrigins      string
	hubSendBuffer   int
	traceExporter   string

	// Limits and transport security (transport.go, limits.go).
	http               httpConfig
	auth               authConfig
	hub                hubLimits
	dbStatementTimeout time.Duration
	personal           personalConfig // master keys of personal data (personal.go)
}

func (c *serveConfig) hasRole(r string) bool {
	return slices.Contains(strings.Split(c.roles, ","), r)
}

// apiGC raises the GC target of a process that serves the api role alone,
// unless GOGC is set. Such a process allocates for every request and keeps
// little, and what it keeps is bounded (the order-state cache, the rate
// limits' LRUs, a buffer per connection): a larger target trades a bounded
// amount of memory for CPU, which the command path spends on collection
// otherwise (a sixth of an api process's CPU at 64 clients; orderflow bench
// suite --scenarios pgbench,api-closed, three interleaved pairs on a busy
// machine: 0.54, 0.58, 0.42 × pgbench with GOGC=100, 0.81, 0.90, 1.07
// without).
// Processes with other roles keep Go's default: a hub's heap grows with its
// connections.
func apiGC(c serveConfig) {
	if c.roles == "api" && os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}

// dbRoles are the database roles this process's roles connect as, one pool
// each: api commands as Command and queries as Query, the hub reads the
// store as Query, the relay and the projector as their own.
func (c *serveConfig) dbRoles() []pg.Role {
	var out []pg.Role
	add := func(r pg.Role) {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	if c.hasRole("api") {
		add(pg.Command)
		add(pg.Query)
	}
	if c.hasRole("relay") {
		add(pg.Relay)
	}
	if c.hasRole("projector") {
		add(pg.Projector)
	}
	if c.hasRole("hub") {
		add(pg.Query)
	}
	return out
}

func runServe(ctx context.Context, args []string) error {
	c, err := parseServe(args)
	if err != nil {
		return err
	}
	log := c.logger(os.Stderr)
	slog.SetDefault(log)
	return serve(ctx, c, log)
}

// parseServe reads serve's flags and environment and validates them.
func parseServe(args []string) (serveConfig, error) {
	var c serveConfig
	f := newFlags("serve", "Serves the platform. Roles run in this process: api (commands, queries), relay (store → Kafka), projector (Kafka → read models), hub (WebSocket). Each connects to PostgreSQL as its own database role, with the login in $ORDERFLOW_DATABASE_URL_COMMAND, _RELAY, _PROJECTOR, _QUERY (api: command and query; hub: query); with none of them set, every role logs in with $DATABASE_URL and SET ROLE (development only). Those URLs, the Kafka SASL password ($ORDERFLOW_KAFKA_SASL_PASSWORD) and the keys that sign the events topic ($ORDERFLOW_KAFKA_SIGNING_KEYS) and the master keys of personal data ($ORDERFLOW_PII_MASTER_KEYS) are read from the environment only (never a flag: it would show in ps). The keys may come from a file instead (--kafka-signing-keys-file). With KAFKA_BROKERS set, the relay, projector and hub roles need signing keys, or --kafka-trusted-topic.")
	c.register(f)
	c.kafka.register(f)
	f.string(&c.httpAddr, "http-addr", "ORDERFLOW_HTTP_ADDR", ":8080", "HTTP listen address")
	f.string(&c.roles, "roles", "ORDERFLOW_ROLES", strings.Join(allRoles, ","), "comma-separated roles to run: "+strings.Join(allRoles, ", "))
	f.bool(&c.migrate, "migrate", "ORDERFLOW_MIGRATE", true, "apply pending migrations at start")
	f.int(&c.dbMaxConns, "db-max-conns", "ORDERFLOW_DB_MAX_CONNS", 20, "size of each database role's PostgreSQL pool")
	f.int(&c.orderCache, "order-cache", "ORDERFLOW_ORDER_CACHE", commands.DefaultCachedOrders, "order states the command API keeps between commands (0: none)")
	f.string(&c.hubOrigins, "hub-allowed-origins", "ORDERFLOW_HUB_ALLOWED_ORIGINS", "", "comma-separated Origins allowed to open /v1/stream besides the page's own (e.g. https://ops.example.com)")
	f.int(&c.hubSendBuffer, "hub-socket-send-buffer", "ORDERFLOW_HUB_SOCKET_SEND_BUFFER", 64<<10, "kernel send buffer per WebSocket in bytes: bounds what a client that stops reading can hold before it is dropped (0: the OS default)")
	f.string(&c.traceExporter, "trace-exporter", "OTEL_TRACES_EXPORTER", tracing.ExporterNone, "where spans go: none (trace ids are still recorded and propagated) or otlp (OTLP/HTTP, configured by the standard OTEL_EXPORTER_OTLP_* variables)")
	f.duration(&c.shutdownTimeout, "shutdown-timeout", "ORDERFLOW_SHUTDOWN_TIMEOUT", 15*time.Second, "how long to drain on SIGTERM")
	c.http.register(f)
	c.auth.register(f)
	c.hub.register(f)
	c.personal.register(f)
	f.duration(&c.dbStatementTimeout, "db-statement-timeout", "ORDERFLOW_DB_STATEMENT_TIMEOUT", 10*time.Second, "PostgreSQL statement_timeout of the serving pools (0: the server's own)")
	if err := f.parse(args, func() {
		c.validate(f, c.migrate, c.dbRoles()...)
		c.kafka.validate(f)
		c.kafka.signing.validate(f, c.kafka.brokers == "", c.hasRole("relay"), c.hasRole("projector") || c.hasRole("hub"))
		for _, r := range strings.Split(c.roles, ",") {
			f.check(!slices.Contains(allRoles, r), "ORDERFLOW_ROLES: unknown role %q (want some of %s)", r, strings.Join(allRoles, ", "))
		}
		_, _, err := net.SplitHostPort(c.httpAddr)
		f.check(err != nil, "ORDERFLOW_HTTP_ADDR=%q: want host:port or :port", c.httpAddr)
		f.check(c.dbMaxConns < 2, "ORDERFLOW_DB_MAX_CONNS must be at least 2")
		f.check(c.orderCache < 0, "ORDERFLOW_ORDER_CACHE must be at least 0")
		f.check(c.shutdownTimeout <= 0, "ORDERFLOW_SHUTDOWN_TIMEOUT must be positive")
		f.check(c.traceExporter != tracing.ExporterNone && c.traceExporter != tracing.ExporterOTLP,
			"OTEL_TRACES_EXPORTER=%q: want %s or %s", c.traceExporter, tracing.ExporterNone, tracing.ExporterOTLP)
		f.check(c.hubSendBuffer < 0, "ORDERFLOW_HUB_SOCKET_SEND_BUFFER must not be negative")
		c.http.validate(f, c.httpAddr)
		c.auth.validate(f)
		c.hub.validate(f)
		c.personal.validate(f)
		f.check(c.dbStatementTimeout < 0 || (c.dbStatementTimeout > 0 && c.dbStatementTimeout < 100*time.Millisecond),
			"ORDERFLOW_DB_STATEMENT_TIMEOUT must be 0 (off) or at least 100ms")
	}); err != nil {
		return c, err
	}
	return c, nil
}

func serve(ctx context.Context, c serveConfig, log *slog.Logger) error {
	apiGC(c)
	if c.migrate {
		if err := ensureMigrated(ctx, c.databaseURL); err != nil {
			return err
		}
		log.Info("migrations applied")
	}
	roles := c.dbRoles()
	if c.devLogins() {
		log.Warn("DEVELOPMENT DATABASE LOGIN: serving connections log in with DATABASE_URL (the schema owner's credentials) and SET ROLE to each component's role; in production give every role its own login (ORDERFLOW_DATABASE_URL_COMMAND, _RELAY, _PROJECTOR, _QUERY; README, Database roles)",
			"roles", fmt.Sprint(roles))
	}
	pools := make(map[pg.Role]*pgxpool.Pool, len(roles))
	for _, r := range roles {
		p, err := c.servingPool(ctx, r, c.dbMaxConns, "orderflow "+strings.TrimPrefix(string(r), "orderflow_"))
		if err != nil {
			return err
		}
		defer p.Close()
		pools[r] = p
	}
	// The read-only view every node serves (/v1/projections, readiness):
	// the query role where this process has it, else the projector's or
	// the relay's, which may read projection progress too.
	var view *pgxpool.Pool
	for _, r := range []pg.Role{pg.Query, pg.Projector, pg.Relay} {
		if view = pools[r]; view != nil {
			break
		}
	}
	viewStore := eventstore.New(view)

	tp, err := startTracing(ctx, c, log)
	if err != nil {
		return err
	}
	defer stopTracing(ctx, tp, log)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	checks := health.New()
	checks.Add("postgres", func(ctx context.Context) (string, error) {
		for _, r := range roles {
			if err := pools[r].Ping(ctx); err != nil {
				return "", fmt.Errorf("%s: %w", r, err)
			}
		}
		return "", nil
	})
	versions := stdlib.OpenDBFromPool(view)
	defer func() { _ = versions.Close() }()
	checks.Add("migrations", migrationsCheck(versions))

	verifier, err := c.auth.verifier(ctx, log)
	if err != nil {
		return err
	}
	owners, err := auth.NewStoreOwners(viewStore, auth.DefaultOwnersCache)
	if err != nil {
		return err
	}
	// Every route is registered through the guard, which serves it behind
	// its rule in internal/auth's table (a route missing there is refused
	// to everyone, and stops the start below).
	guard := auth.NewGuard(owners, log)
	// mux is the public listener's, opsMux the operations listener's.
	mux, opsMux := http.NewServeMux(), http.NewServeMux()
	public, opsRoutes := guard.Mux(mux), guard.Mux(opsMux)
	clients := c.http.clients()
	limiter, err := c.http.limiter(reg, clients)
	if err != nil {
		return err
	}
	// The rate limits run after authentication, so they count per subject,
	// and before the rule (a refused request costs its client a token).
	api := guard.Mux(limiter.Mux(mux))
	public.HandleFunc("GET /healthz", health.Healthz)
	public.HandleFunc("GET /readyz", checks.Public(time.Second))
	opsRoutes.HandleFunc("GET /readyz", checks.Readyz)
	opsRoutes.HandleFunc("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}).ServeHTTP)
	// Profiles of the whole process under its real load, on the operations
	// listener only: `go tool pprof http://127.0.0.1:9090/debug/pprof/profile?seconds=30`.
	opsRoutes.HandleFunc("GET /debug/pprof/", pprof.Index)
	opsRoutes.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	opsRoutes.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	public.HandleFunc("GET /v1/openapi.yaml", openapi.Handler())
	public.HandleFunc("GET /{$}", web.Handler().ServeHTTP)
	public.HandleFunc("GET /assets/", web.Handler().ServeHTTP)
	registry := order.NewRegistry()
	// Only the command role appends, so it keeps the partitions ready and
	// expires the idempotency keys (started below, with the other parts).
	var cmdStore *eventstore.Store
	if c.hasRole("api") {
		cmdStore = eventstore.New(pools[pg.Command])
		if err := cmdStore.EnsureAhead(ctx, time.Now()); err != nil {
			return err
		}
		svc := commands.NewService(pools[pg.Command], cmdStore, registry, time.Now)
		svc.CachedOrders = cmp.Or(c.orderCache, -1) // the flag's 0 is none
		svc.Keys = c.personal.keys(pools[pg.Command])
		commands.NewAPI(svc).Register(api)
		queries.NewAPI(pools[pg.Query], viewStore, registry, queries.Options{Keys: c.personal.keys(pools[pg.Query])}).Register(api)
	}

	var rl *relay.Relay
	g, ctx := errgroup.WithContext(ctx)
	needKafka := c.hasRole("relay") || c.hasRole("projector") || c.hasRole("hub")
	if needKafka {
		kcfg, closeBroker, err := c.kafka.connect(log)
		if err != nil {
			return err
		}
		defer closeBroker()
		if err := c.kafka.ensureTopics(ctx, kcfg, log); err != nil {
			// Commands never need Kafka: keep serving, the relay retries.
			log.Error("could not create Kafka topics; the relay and consumers will retry", "err", err)
		}
		signer, verifier, err := c.kafka.signing.setup(log)
		if err != nil {
			return err
		}
		if c.hasRole("relay") {
			rl, err = relay.New(relay.Config{
				Login: c.login(pg.Relay), Pool: pools[pg.Relay], Kafka: kcfg, Topic: c.kafka.topic,
				Signer: signer, Unsigned: signer == nil && c.kafka.signing.trusted,
				Partitions: c.kafka.partitions, Registerer: reg, Logger: log,
			})
			if err != nil {
				return err
			}
			checks.Add("relay", relayCheck(rl))
			g.Go(func() error { return rl.Run(ctx) })
		}
		if c.hasRole("projector") {
			projPool := pools[pg.Projector]
			rt, err := projections.NewRuntime(projPool, eventstore.New(projPool), registry, reg, log)
			if err != nil {
				return err
			}
			g.Go(func() error {
				return projector.Run(ctx, projector.Config{
					Kafka: kcfg, Topic: c.kafka.topic, DLQTopic: c.kafka.dlqTopic(), Partitions: c.kafka.partitions, Verifier: verifier,
					SessionTimeout: c.kafka.session, Runtime: rt, Projections: projections.All(), Registerer: reg, Logger: log,
					Tracer: tp.Tracer(),
					OnState: func(ctx context.Context, name, state, detail string) {
						if err := projections.SetState(ctx, projPool, name, state, detail); err != nil {
							log.Error("recording projection state", "projection", name, "err", err)
						}
					},
				})
			})
		}
		if c.hasRole("hub") {
			// Every hub node reads every partition from the end (no group,
			// nothing committed); history comes from the store.
			sub, err := kafka.NewSubscriber(kafka.SubscriberConfig{Config: kcfg, StartOffset: kafka.LastOffset}, log)
			if err != nil {
				return err
			}
			// Recoveries read on a pool of their own, so live delivery
			// never waits for a connection behind them.
			recoveryPool, err := c.servingPool(ctx, pg.Query, c.hub.recoveryConns, "orderflow hub recovery")
			if err != nil {
				return err
			}
			defer recoveryPool.Close()
			recoveryStore, err := eventstore.NewWithGroupCommit(recoveryPool, eventstore.GroupCommit{Disabled: true}) // reads only
			if err != nil {
				return err
			}
			hcfg := hub.Config{Store: viewStore, Keys: c.personal.keys(pools[pg.Query]), Subscriber: sub, Topic: c.kafka.topic, Verifier: verifier, Registerer: reg, Logger: log,
				AllowedOrigins: splitList(c.hubOrigins), SocketSendBuffer: c.hubSendBuffer}
			c.hub.apply(&hcfg, clients, recoveryStore)
			h, err := hub.New(hcfg)
			if err != nil {
				return err
			}
			// GET /v1/stream; Run closes its WebSockets (1001) when ctx ends.
			mux.Handle("GET "+hub.Path, limiter.Limit(httpx.ClassStream, guard.Protect("GET "+hub.Path, h)))
			g.Go(func() error {
				defer func() { _ = sub.Close() }()
				return h.Run(ctx)
			})
		}
	}
	opsRoutes.HandleFunc("GET /v1/projections", ops.ProjectionsHandler(view, viewStore, rl))
	if unruled := guard.Unruled(); len(unruled) > 0 {
		return fmt.Errorf("routes without an access rule in internal/auth: %s", strings.Join(unruled, ", "))
	}
	if cmdStore != nil {
		g.Go(func() error { return cmdStore.MaintainPartitions(ctx, 24*time.Hour, time.Now, log) })
		g.Go(func() error { return expireKeys(ctx, cmdStore, log) })
	}
	httpx.HandleUnmatched(mux)
	publicHandler, opsHandler, err := c.http.handlers(log, reg, verifier, mux, opsMux)
	if err != nil {
		return err
	}
	// Public requests only: probes and scrapes on the operations listener
	// would be most of the spans and say nothing.
	publicHandler = httpx.Trace(tp.Tracer(), publicHandler)
	g.Go(func() error {
		return serveHTTP(ctx, c.http.server(publicHandler, log), c.httpAddr, c.http.tlsCertFile, c.http.tlsKeyFile, c.shutdownTimeout, log)
	})
	g.Go(func() error {
		return serveHTTP(ctx, c.http.server(opsHandler, log), c.http.opsAddr, "", "", c.shutdownTimeout, log)
	})
	if c.hasRole("api") || c.hasRole("hub") {
		c.personal.logSetup(log)
	}
	log.Info("orderflow serving", "http", c.httpAddr, "tls", c.http.tls(), "ops", c.http.opsAddr, "roles", c.roles)
	return g.Wait()
}

// servingPool opens a pool logged in as role r, with the serving statement
// timeout.
func (c *serveConfig) servingPool(ctx context.Context, r pg.Role, maxConns int, name string) (*pgxpool.Pool, error) {
	l := c.login(r)
	var err error
	if l.URL, err = withStatementTimeout(l.URL, c.dbStatementTimeout); err != nil {
		return nil, err
	}
	return pg.Connect(ctx, l, pg.Options{MaxConns: poolSize(maxConns), ApplicationName: name})
}

// relayCheck is ready while this process is a follower or a leader that
// reaches Kafka; a leader cut off from Kafka is reported, with since when.
// Commands keep succeeding meanwhile: the detail is for operators.
func relayCheck(rl *relay.Relay) health.Check {
	return func(context.Context) (string, error) {
		st := rl.Status()
		if !st.Leader {
			return "follower", nil
		}
		if !st.KafkaUp && !st.KafkaSince.IsZero() {
			return "", fmt.Errorf("leader, Kafka unreachable since %s: %s", st.KafkaSince.UTC().Format(time.RFC3339), st.LastError)
		}
		return fmt.Sprintf("leader, checkpoint %d, lag %d events", st.Checkpoint, st.LagEvents), nil
	}
}

// migrationsCheck reports whether the schema is current, reading the goose
// version tables through db (a serving pool: every serving role may read
// them). Probes come every few seconds and migrations change only on
// deploys: the answer is cached for migrationsCheckTTL.
func migrationsCheck(db *sql.DB) health.Check {
	var (
		mu      sync.Mutex
		checked time.Time
		last    error
	)
	return func(ctx context.Context) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(checked) > migrationsCheckTTL || last != nil {
			last = pendingMigrations(ctx, db)
			checked = time.Now()
		}
		if last != nil {
			return "", last
		}
		return "current", nil
	}
}

const migrationsCheckTTL = time.Minute

func pendingMigrations(ctx context.Context, db *sql.DB) error {
	pending, err := migrate.Pending(ctx, db, schema.Sets()...)
	if err != nil {
		return err
	}
	if pending {
		return errors.New("migrations pending: run orderflow migrate up")
	}
	return nil
}

func expireKeys(ctx context.Context, store *eventstore.Store, log *slog.Logger) error {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := commands.ExpireIdempotencyKeys(ctx, store, time.Now()); err != nil && ctx.Err() == nil {
			log.Error("expiring idempotency keys", "err", err)
		} else if n > 0 {
			log.Info("expired idempotency keys", "count", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// splitList splits a comma-separated setting, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
