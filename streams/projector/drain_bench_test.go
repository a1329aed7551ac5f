package projector_test

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/pgtest"
	"github.com/orderflow/orderflow/internal/seed"
	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/projections"
	"github.com/orderflow/orderflow/streams/envelope"
	"github.com/orderflow/orderflow/streams/kafka"
	"github.com/orderflow/orderflow/streams/projector"
)

var drainOrders = flag.Int("drain-orders", 20000, "orders seeded for BenchmarkDrain (about 6.4 events each)")

// BenchmarkDrain seeds the store with realistic orders, puts all their
// events in Kafka (12 partitions, orders interleaved at random as live
// traffic interleaves them, each order's events in version order), then
// starts the projector and measures how long all four projections take to
// apply the whole backlog, concurrently. events/s is per projection: each
// applies every event. The broker (kfake) runs in this process, as in
// `orderflow serve` without KAFKA_BROKERS.
//
//	go test ./streams/projector -run '^$' -bench Drain -benchtime 1x -drain-orders 156000   # ≈ 1M events
func BenchmarkDrain(b *testing.B) {
	ctx := context.Background()
	db := pgtest.New(b)
	store, reg := eventstore.New(db.Projector), order.NewRegistry()
	res, err := seed.Load(ctx, reg, seed.Config{Orders: *drainOrders}, seed.Target{Events: db.Owner, Partitions: eventstore.New(db.Owner)}, nil)
	if err != nil {
		b.Fatal(err)
	}
	brokers := testenv.Broker(b).Addrs()
	const topic = "orders.events"
	testenv.CreateTopics(b, brokers, 12, topic, kafka.DefaultDLQTopic)
	publishInterleaved(b, store, brokers, topic)
	b.Logf("backlog: %d orders, %d events", res.Orders, res.Events)

	for range b.N {
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		metrics := prometheus.NewRegistry()
		rt, err := projections.NewRuntime(db.Projector, store, reg, metrics, log)
		if err != nil {
			b.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		start := time.Now()
		go func() {
			done <- projector.Run(runCtx, projector.Config{
				Kafka: kafka.Config{Brokers: brokers}, Topic: topic, Verifier: testenv.EventVerifier(b), Runtime: rt, Projections: projections.All(),
				GroupPrefix: "drain." + strconv.Itoa(b.N) + "." + strconv.FormatInt(start.UnixNano(), 36) + ".", Logger: log,
			})
		}()
		for applied(b, metrics) < 4*res.Events {
			select {
			case err := <-done:
				b.Fatalf("projector stopped: %v", err)
			case <-time.After(50 * time.Millisecond):
			}
		}
		took := time.Since(start)
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(res.Events)/took.Seconds(), "events/s")
		reportBatches(b, metrics)
		b.ReportMetric(took.Seconds(), "s")
		if i := b.N; i > 1 {
			b.Fatal("run BenchmarkDrain with -benchtime 1x: a second round would replay into applied models")
		}
	}
}

// applied is the events applied to all projections so far.
func applied(b *testing.B, reg *prometheus.Registry) int64 {
	b.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == "projection_events_applied_total" {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return int64(n)
}

// publishInterleaved writes every stored event to topic as the relay does
// (keyed by order, signed with the test's key), with the orders
// interleaved at random.
func publishInterleaved(b *testing.B, store *eventstore.Store, brokers []string, topic string) {
	b.Helper()
	ctx := context.Background()
	signer := testenv.EventSigner(b)
	streams := testenv.Streams(b, store)
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), Topic: topic, Balancer: &kafkago.Hash{},
		RequiredAcks: kafkago.RequireAll, BatchSize: 1000, BatchTimeout: 5 * time.Millisecond}
	defer func() { _ = w.Close() }()
	rng := rand.New(rand.NewPCG(1, 2))
	msgs := make([]kafkago.Message, 0, 10000)
	flush := func() {
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			b.Fatal(err)
		}
		msgs = msgs[:0]
	}
	for len(streams) > 0 {
		i := rng.IntN(len(streams))
		ev := streams[i][0]
		if streams[i] = streams[i][1:]; len(streams[i]) == 0 {
			streams[i] = streams[len(streams)-1]
			streams = streams[:len(streams)-1]
		}
		m, err := envelope.Message(ev)
		if err == nil {
			err = signer.Sign(&m)
		}
		if err != nil {
			b.Fatal(err)
		}
		msgs = append(msgs, m)
		if len(msgs) == cap(msgs) {
			flush()
		}
	}
	flush()
}

// reportBatches logs each projection's mean batch size and time.
func reportBatches(b *testing.B, reg *prometheus.Registry) {
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "projection_batch_size" && mf.GetName() != "projection_batch_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			b.Logf("%s %s: %d batches, mean %.4g", mf.GetName(), m.GetLabel()[0].GetValue(), h.GetSampleCount(), h.GetSampleSum()/float64(h.GetSampleCount()))
		}
	}
}
