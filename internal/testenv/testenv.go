// Package testenv is the one test environment of the project: a test asks
// for what it needs and gets it fresh, torn down when it ends.
//
//	e := testenv.New(t)                // a migrated database with partitions, a store, the codec registry
//	                                   // (e.DB has a pool per database role: e.DB.Command, .Relay, .Projector, .Query)
//	brokers := e.Kafka(t)              // an embedded broker (kfake over TCP) with the events topics
//	r := e.StartRelay(t, nil)          // a relay publishing the store to that broker, test-sized intervals
//	srv := e.Serve(t, "ORDERFLOW_ROLES=api,hub") // the real binary, built and serving this database
//
// Every environment is its own database and its own broker, so tests that
// use one call t.Parallel(). Set ORDERFLOW_TEST_LOG=1 to see the components'
// logs in the test output.
//
// Waits in here are hang guards (a minute), never latency targets: tests
// must pass on a machine whose cores are busy with other tests.
package testenv

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/pgtest"
	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/streams/kafka"
)

// Patience bounds every wait for a component to get somewhere: long enough
// for a CPU-starved machine, short enough that a hang fails the test.
const Patience = time.Minute

// Env is one test's environment.
type Env struct {
	DB       *pgtest.DB
	Store    *eventstore.Store
	Registry *order.Registry

	mu     sync.Mutex
	broker *kafka.Broker // started by Kafka
}

// New returns a fresh, migrated database with this month's partition and
// the ones ahead, a store on its command-role pool (the role that may
// append), and the codec registry.
func New(t testing.TB) *Env {
	t.Helper()
	return NewOn(t, pgtest.AdminURL(t))
}

// NewOn is New on another server than DATABASE_URL's, such as a test's own
// StartPostgres cluster.
func NewOn(t testing.TB, adminURL string) *Env {
	t.Helper()
	db := pgtest.NewOn(t, adminURL)
	store := eventstore.New(db.Command)
	if err := store.EnsureAhead(context.Background(), time.Now()); err != nil {
		t.Fatalf("testenv: partitions: %v", err)
	}
	return &Env{DB: db, Store: store, Registry: order.NewRegistry()}
}

// Logger returns a logger that writes to the test's log when
// ORDERFLOW_TEST_LOG is set, and discards otherwise.
func Logger(t testing.TB) *slog.Logger {
	if os.Getenv("ORDERFLOW_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// Streams reads the whole store and returns its events grouped by stream,
// in the order streams first appear (seeded stores write one stream after
// another), each stream's events in version order.
func Streams(tb testing.TB, store *eventstore.Store) [][]eventstore.RecordedEvent {
	tb.Helper()
	ctx := context.Background()
	var streams [][]eventstore.RecordedEvent
	for after := int64(0); ; {
		evs, err := store.ReadAll(ctx, after, 10000)
		if err != nil {
			tb.Fatal(err)
		}
		if len(evs) == 0 {
			return streams
		}
		for _, ev := range evs {
			if n := len(streams); n == 0 || streams[n-1][0].StreamID != ev.StreamID {
				streams = append(streams, nil)
			}
			streams[len(streams)-1] = append(streams[len(streams)-1], ev)
		}
		after = evs[len(evs)-1].Position
	}
}
