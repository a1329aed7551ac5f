package main

import (
	"flag"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow/internal/breaker"
	"github.com/orderflow/orderflow/internal/pg"
)

// budgetConfig bounds how long a request waits on the database: a
// deadline per API request, and a circuit breaker that refuses requests at
// once while the database does not answer (README, "A dependency's
// circuit breaker is open").
type budgetConfig struct {
	requestTimeout  time.Duration
	breakerFailures int
	breakerOpenFor  time.Duration
}

func (b *budgetConfig) register(f *flags) {
	f.duration(&b.requestTimeout, "http-request-timeout", "ORDERFLOW_HTTP_REQUEST_TIMEOUT", 15*time.Second, "deadline of each command and query: what it may wait for connections, statements and the database; past it, 503 with Retry-After (default 15s, or half ORDERFLOW_HTTP_WRITE_TIMEOUT if that is shorter)")
	f.int(&b.breakerFailures, "db-breaker-failures", "ORDERFLOW_DB_BREAKER_FAILURES", 5, "consecutive database calls that found it unreachable (or ran out of time) before its circuit breaker opens and commands and queries are refused at once")
	f.duration(&b.breakerOpenFor, "db-breaker-open", "ORDERFLOW_DB_BREAKER_OPEN", 5*time.Second, "how long the database's circuit breaker stays open before one call probes it (the Retry-After of the refusals)")
}

func (b *budgetConfig) validate(f *flags, writeTimeout time.Duration) {
	// The default gives way to a shorter write timeout; a deadline set
	// explicitly must fit in it.
	_, explicit := os.LookupEnv("ORDERFLOW_HTTP_REQUEST_TIMEOUT")
	f.Visit(func(fl *flag.Flag) { explicit = explicit || fl.Name == "http-request-timeout" })
	if !explicit && writeTimeout > 0 && b.requestTimeout >= writeTimeout {
		b.requestTimeout = writeTimeout / 2
	}
	f.check(b.requestTimeout < 100*time.Millisecond, "ORDERFLOW_HTTP_REQUEST_TIMEOUT must be at least 100ms")
	f.check(writeTimeout > 0 && b.requestTimeout >= writeTimeout,
		"ORDERFLOW_HTTP_REQUEST_TIMEOUT (%s) must be shorter than ORDERFLOW_HTTP_WRITE_TIMEOUT (%s), or a request that runs out of time cannot be answered", b.requestTimeout, writeTimeout)
	f.check(b.breakerFailures < 1 || b.breakerFailures > 1000, "ORDERFLOW_DB_BREAKER_FAILURES must be 1 to 1000")
	f.check(b.breakerOpenFor < 100*time.Millisecond, "ORDERFLOW_DB_BREAKER_OPEN must be at least 100ms")
}

// dbBreaker is the database's circuit breaker, fed by every serving pool
// of the process (background work included) and logging each change.
func (b *budgetConfig) dbBreaker(reg prometheus.Registerer, log *slog.Logger) (*breaker.Breaker, error) {
	return breaker.New(breaker.Config{
		Dependency: "postgres", Failure: pg.Unanswered, Failures: b.breakerFailures, OpenFor: b.breakerOpenFor,
		Registerer: reg,
		OnStateChange: func(from, to string) {
			log.Warn("database circuit breaker: "+from+" → "+to, "dependency", "postgres")
		},
	})
}
