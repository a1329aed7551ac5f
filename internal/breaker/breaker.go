// Package breaker is a circuit breaker around one dependency (the
// database), built on sony/gobreaker: after Failures consecutive calls
// that failed because the dependency is unreachable, it opens for OpenFor,
// and while it is open the requests that need the dependency are refused
// at once (Mux: 503 problem+json with Retry-After) instead of each waiting
// for it to time out, and readiness says which dependency (Guard). Then it
// lets one call through (half-open): if it succeeds the breaker closes, if
// not it opens again.
//
// The calls are counted where they happen, not where they are refused:
// the dependency's client reports each one through Allow (internal/pg's
// pool tracer), background work included, so that a process whose
// requests are all refused still finds out that the dependency is back.
//
// Only Config.Failure's errors count against the dependency. Everything
// else it answered — a conflict, a constraint, a statement timeout — is a
// success: the dependency is up and said no, and a breaker that opened on
// that would turn a client's mistake into everybody's outage.
package breaker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"

	"github.com/orderflow/orderflow/internal/health"
	"github.com/orderflow/orderflow/internal/httpx"
)

// Config configures a Breaker. Zero values mean the documented defaults.
type Config struct {
	// Dependency names what is behind the breaker, in metrics, readiness
	// and logs ("postgres"). Required.
	Dependency string
	// Failure says whether a call's error means the dependency is down.
	// Required.
	Failure func(error) bool
	// Failures is how many consecutive failures open the breaker.
	// Default 5.
	Failures int
	// OpenFor is how long it stays open before it lets a probe through.
	// Default 5s.
	OpenFor time.Duration
	// Registerer receives dependency_breaker_state{dependency}: 0 closed,
	// 1 half-open, 2 open. May be nil.
	Registerer prometheus.Registerer
	// OnStateChange, if set, is told of every change (for a log line).
	OnStateChange func(from, to string)
}

// Breaker is a circuit breaker; safe for concurrent use.
type Breaker struct {
	cfg Config
	cb  *gobreaker.TwoStepCircuitBreaker[struct{}]

	mu       sync.Mutex
	openedAt time.Time // when it last opened
}

// New checks cfg and registers the metric.
func New(cfg Config) (*Breaker, error) {
	if cfg.Dependency == "" || cfg.Failure == nil {
		return nil, errors.New("breaker: Dependency and Failure are required")
	}
	if cfg.Failures == 0 {
		cfg.Failures = 5
	}
	if cfg.OpenFor == 0 {
		cfg.OpenFor = 5 * time.Second
	}
	if cfg.Failures < 1 || cfg.Failures > math.MaxUint32 || cfg.OpenFor < 0 {
		return nil, errors.New("breaker: Failures must be at least 1 and OpenFor positive")
	}
	b := &Breaker{cfg: cfg}
	threshold := uint32(cfg.Failures)
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        cfg.Dependency,
		MaxRequests: 1,
		Timeout:     cfg.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= threshold },
		// A caller that gave up says nothing about the dependency.
		IsExcluded:   func(err error) bool { return errors.Is(err, context.Canceled) },
		IsSuccessful: func(err error) bool { return err == nil || !cfg.Failure(err) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				b.mu.Lock()
				b.openedAt = time.Now()
				b.mu.Unlock()
			}
			if cfg.OnStateChange != nil {
				cfg.OnStateChange(from.String(), to.String())
			}
		},
	})
	if cfg.Registerer != nil {
		err := cfg.Registerer.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "dependency_breaker_state",
			Help:        "Circuit breaker of a dependency: 0 closed, 1 half-open (probing), 2 open (requests refused).",
			ConstLabels: prometheus.Labels{"dependency": cfg.Dependency},
		}, func() float64 { return float64(b.cb.State()) }))
		if err != nil {
			return nil, fmt.Errorf("breaker: metrics: %w", err)
		}
	}
	return b, nil
}

// Allow is called before a call to the dependency: done reports its
// outcome. It fails while the breaker is open (or while the half-open
// probe is out): the call is then not counted.
func (b *Breaker) Allow() (done func(error), err error) { return b.cb.Allow() }

// Open reports whether the breaker is open, and how long until it lets a
// probe through.
func (b *Breaker) Open() (bool, time.Duration) {
	if b.cb.State() != gobreaker.StateOpen {
		return false, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return true, max(time.Until(b.openedAt.Add(b.cfg.OpenFor)), 0)
}

// Guard wraps a readiness check of the dependency: while the breaker is
// open it fails at once, naming the breaker, instead of waiting for the
// dependency.
func (b *Breaker) Guard(check health.Check) health.Check {
	return func(ctx context.Context) (string, error) {
		if open, probe := b.Open(); open {
			b.mu.Lock()
			since := b.openedAt
			b.mu.Unlock()
			return "", fmt.Errorf("circuit breaker open since %s (%d consecutive failures); next probe in %s",
				since.UTC().Format(time.RFC3339), b.cfg.Failures, probe.Round(time.Millisecond))
		}
		return check(ctx)
	}
}

// Mux returns a registrar that mounts handlers on reg behind the breaker:
// while it is open, a request is answered 503 problem+json, type
// unavailable, with Retry-After the time until the next probe, and never
// reaches the handler. A request that ran out of its deadline (mount Mux
// inside httpx.DeadlineMux) counts as a failure: a dependency that hangs
// instead of refusing fails no call until the callers' deadlines, and some
// of its calls (a group commit's batch) carry deadlines of their own,
// longer than any request's.
func (b *Breaker) Mux(reg httpx.Registrar) httpx.Registrar { return gatedMux{b: b, reg: reg} }

type gatedMux struct {
	b   *Breaker
	reg httpx.Registrar
}

func (m gatedMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.reg.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if open, probe := m.b.Open(); open {
			p := httpx.Unavailable("Dependency unavailable",
				"a service this request needs is not answering; requests are refused until it does; retrying (with the same Idempotency-Key, for a command) is safe")
			p.RetryAfter = max(int(math.Ceil(probe.Seconds())), 1)
			httpx.WriteProblem(w, r, p)
			return
		}
		h(w, r)
		if err := r.Context().Err(); errors.Is(err, context.DeadlineExceeded) {
			if done, refused := m.b.Allow(); refused == nil {
				done(err)
			}
		}
	})
}
