package main

import (
	"context"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/orderflow/orderflow/commands"
	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/breaker"
	"github.com/orderflow/orderflow/internal/pg"
	"github.com/orderflow/orderflow/internal/tracing"
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
	budget             budgetConfig
	// dbBreaker is built at start (newApp) and observes every serving pool.
	dbBreaker *breaker.Breaker
	personal  personalConfig // master keys of personal data (personal.go)
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
	c.budget.register(f)
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
		c.budget.validate(f, c.http.writeTimeout)
		c.personal.validate(f)
		f.check(c.dbStatementTimeout < 0 || (c.dbStatementTimeout > 0 && c.dbStatementTimeout < 100*time.Millisecond),
			"ORDERFLOW_DB_STATEMENT_TIMEOUT must be 0 (off) or at least 100ms")
	}); err != nil {
		return c, err
	}
	return c, nil
}

// serve runs c's roles until ctx ends: the shared parts (newApp), one
// function per role (app.go), then the listeners.
func serve(ctx context.Context, c serveConfig, log *slog.Logger) error {
	apiGC(c)
	if c.migrate {
		if err := ensureMigrated(ctx, c.databaseURL); err != nil {
			return err
		}
		log.Info("migrations applied")
	}
	a, err := newApp(ctx, c, log)
	if err != nil {
		return err
	}
	defer a.close()
	a.g, a.ctx = errgroup.WithContext(ctx)
	if c.hasRole("api") {
		if err := a.addAPI(); err != nil {
			return err
		}
	}
	if c.hasRole("relay") || c.hasRole("projector") || c.hasRole("hub") {
		if err := a.addKafkaRoles(); err != nil {
			return err
		}
	}
	if err := a.listen(); err != nil {
		return err
	}
	if c.hasRole("api") || c.hasRole("hub") {
		c.personal.logSetup(log)
	}
	log.Info("orderflow serving", "http", c.httpAddr, "tls", c.http.tls(), "ops", c.http.opsAddr, "roles", c.roles)
	return a.g.Wait()
}

// servingPool opens a pool logged in as role r, with the serving statement
// timeout.
func (c *serveConfig) servingPool(ctx context.Context, r pg.Role, maxConns int, name string) (*pgxpool.Pool, error) {
	l := c.login(r)
	var err error
	if l.URL, err = withStatementTimeout(l.URL, c.dbStatementTimeout); err != nil {
		return nil, err
	}
	return pg.Connect(ctx, l, pg.Options{MaxConns: poolSize(maxConns), ApplicationName: name, Observer: c.dbBreaker})
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
