package projections

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/benchstat"
	"github.com/orderflow/orderflow/internal/pgtest"
	"github.com/orderflow/orderflow/internal/seed"
	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/order"
)

// benchEnv is a database seeded with realistic orders, and their events in
// a live delivery order: orders interleaved at random (as live traffic
// interleaves them), each order's events in version order.
type benchEnv struct {
	db  *pgtest.DB
	rt  *Runtime
	evs []eventstore.RecordedEvent
}

func newBenchEnv(b *testing.B, orders int) *benchEnv {
	b.Helper()
	db := pgtest.New(b)
	ctx := context.Background()
	store, reg := eventstore.New(db.Projector), order.NewRegistry()
	if _, err := seed.Load(ctx, reg, seed.Config{Orders: orders}, seed.Target{Events: db.Owner, Partitions: eventstore.New(db.Owner)}, nil); err != nil {
		b.Fatal(err)
	}
	rt, err := NewRuntime(db.Projector, store, reg, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	streams := testenv.Streams(b, store)
	rng := rand.New(rand.NewPCG(1, 2))
	e := &benchEnv{db: db, rt: rt}
	for len(streams) > 0 {
		i := rng.IntN(len(streams))
		e.evs = append(e.evs, streams[i][0])
		if streams[i] = streams[i][1:]; len(streams[i]) == 0 {
			streams[i] = streams[len(streams)-1]
			streams = streams[:len(streams)-1]
		}
	}
	return e
}

// reset empties p's read model, so that the events can be applied again.
func (e *benchEnv) reset(b *testing.B, p Projection) {
	b.Helper()
	tables := append([]string{versionsTable(p), "projection_checkpoints"}, p.Tables()...)
	sql := "TRUNCATE " + strings.Join(tables, ", ")
	if p.Name() == (StatusCounts{}).Name() {
		sql = "TRUNCATE " + versionsTable(p) + ", projection_checkpoints; UPDATE status_counts SET orders = 0"
	}
	if _, err := e.db.Owner.Exec(context.Background(), sql); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkApplyBatch applies batches of a live-like backlog (most orders
// have one event in a batch: the costly case, one versions row per event):
// 1000 events, the projector's largest batch, as when draining a backlog,
// and 20, about what a 10ms linger collects at 1 500 events/s. An op is one
// batch; events/s is per projection; p50/p99 of a batch's time from an HDR
// histogram.
//
//	go test ./projections -run '^$' -bench ApplyBatch -benchmem -benchtime 50x
func BenchmarkApplyBatch(b *testing.B) {
	e := newBenchEnv(b, 4000)
	for _, size := range []int{1000, 20} {
		for _, p := range All() {
			b.Run(fmt.Sprintf("%s/%d", p.Name(), size), func(b *testing.B) {
				e.reset(b, p)
				ds := make([]Delivery, 0, size)
				next := 0
				rec := benchstat.New()
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					if next+size > len(e.evs) {
						b.StopTimer()
						e.reset(b, p)
						next = 0
						b.StartTimer()
					}
					ds = ds[:0]
					for _, ev := range e.evs[next : next+size] {
						ds = append(ds, Delivery{Event: ev, Partition: int(ev.StreamID[15] % 12)})
					}
					next += size
					start := time.Now()
					if rejected, err := e.rt.ApplyBatch(context.Background(), p, ds); err != nil || len(rejected) > 0 {
						b.Fatal(err, rejected)
					}
					rec.Since(start)
				}
				b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
				for _, q := range []float64{50, 99} {
					b.ReportMetric(float64(rec.Quantile(q).Microseconds())/1000, fmt.Sprintf("p%.0f_batch_ms", q))
				}
			})
		}
	}
}

// BenchmarkHandle applies one event per transaction, as the projector did
// before batches (and still does for an event retried alone). An op is one
// event.
//
//	go test ./projections -run '^$' -bench Handle -benchmem -benchtime 2000x
func BenchmarkHandle(b *testing.B) {
	e := newBenchEnv(b, 4000)
	for _, p := range All() {
		b.Run(p.Name(), func(b *testing.B) {
			e.reset(b, p)
			next := 0
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if next == len(e.evs) {
					b.StopTimer()
					e.reset(b, p)
					next = 0
					b.StartTimer()
				}
				ev := e.evs[next]
				next++
				if err := e.rt.Handle(context.Background(), p, int(ev.StreamID[15]%12), ev); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
