package testenv

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow/internal/pg"
	"github.com/orderflow/orderflow/streams/kafka"
	"github.com/orderflow/orderflow/streams/relay"
)

// RelayConfig is a relay of the environment's store to brokers (nil: the
// environment's broker, started if need be), with intervals sized for
// tests, the test's signing key (EventKey) and a registry of its own.
func (e *Env) RelayConfig(t testing.TB, brokers []string) relay.Config {
	t.Helper()
	if brokers == nil {
		brokers = e.Kafka(t)
	}
	return relay.Config{
		Login:         e.DB.Login(pg.Relay),
		Pool:          e.DB.Relay,
		Kafka:         kafka.Config{Brokers: brokers, DialTimeout: 2 * time.Second},
		Signer:        EventSigner(t),
		Topic:         Topic,
		Partitions:    Partitions,
		PollInterval:  200 * time.Millisecond,
		FollowerRetry: 200 * time.Millisecond,
		MinBackoff:    50 * time.Millisecond,
		MaxBackoff:    500 * time.Millisecond,
		WriteTimeout:  2 * time.Second,
		Registerer:    prometheus.NewRegistry(),
		Logger:        Logger(t),
	}
}

// NewRelay builds a relay to the environment's broker from RelayConfig,
// changed by mod if not nil.
func (e *Env) NewRelay(t testing.TB, mod func(*relay.Config)) *relay.Relay {
	t.Helper()
	cfg := e.RelayConfig(t, nil)
	if mod != nil {
		mod(&cfg)
	}
	r, err := relay.New(cfg)
	if err != nil {
		t.Fatalf("testenv: relay: %v", err)
	}
	return r
}

// StartRelay runs a NewRelay until the test ends.
func (e *Env) StartRelay(t testing.TB, mod func(*relay.Config)) *relay.Relay {
	t.Helper()
	r := e.NewRelay(t, mod)
	Run(t, "relay", r.Run)
	return r
}

// Run runs a component's Run(ctx) in a goroutine until the returned stop is
// called or the test ends. stop cancels it and waits for Run to return; an
// error from Run fails the test.
func Run(t testing.TB, name string, run func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("%s: %v", name, err)
				}
			case <-time.After(Patience):
				t.Errorf("%s did not stop within %s of its context ending", name, Patience)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
