package projector_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
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

// hangGuard bounds every wait; the tests synchronise on conditions.
const hangGuard = 60 * time.Second

const batchTopic = "orders.events"

// batchEnv is a store seeded with realistic orders, a broker whose topic
// (one partition, so that the events share batches) holds them, and a
// projector to start.
type batchEnv struct {
	t       *testing.T
	ctx     context.Context
	db      *pgtest.DB
	store   *eventstore.Store // the projector's (reads)
	writer  *eventstore.Store // the command role's (appends)
	brokers []string
	metrics *prometheus.Registry
	rt      *projections.Runtime
	events  []eventstore.RecordedEvent // the seeded events, in position order
}

func newBatchEnv(t *testing.T, orders int) *batchEnv {
	t.Helper()
	ctx := context.Background()
	db := pgtest.New(t)
	store, reg := eventstore.New(db.Projector), order.NewRegistry()
	if _, err := seed.Load(ctx, reg, seed.Config{Orders: orders, Customers: 10}, seed.Target{Events: db.Owner, Partitions: eventstore.New(db.Owner)}, nil); err != nil {
		t.Fatal(err)
	}
	brokers := testenv.Broker(t).Addrs()
	testenv.CreateTopics(t, brokers, 1, batchTopic, kafka.DefaultDLQTopic)
	metrics := prometheus.NewRegistry()
	rt, err := projections.NewRuntime(db.Projector, store, reg, metrics, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	evs, err := store.ReadAll(ctx, 0, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	return &batchEnv{t: t, ctx: ctx, db: db, store: store, writer: eventstore.New(db.Command), brokers: brokers, metrics: metrics, rt: rt, events: evs}
}

// publish writes evs to the topic as the relay does (keyed by order,
// signed with the test's key), then raw values as they are, signed too (a
// relay bug, which only the envelope check can catch).
func (e *batchEnv) publish(evs []eventstore.RecordedEvent, raw ...string) {
	e.t.Helper()
	w := &kafkago.Writer{Addr: kafkago.TCP(e.brokers...), Topic: batchTopic, Balancer: &kafkago.Hash{}, RequiredAcks: kafkago.RequireAll}
	defer func() { _ = w.Close() }()
	var msgs []kafkago.Message
	signer := testenv.EventSigner(e.t)
	for _, ev := range evs {
		m, err := envelope.Message(ev)
		if err != nil {
			e.t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	for _, r := range raw {
		msgs = append(msgs, kafkago.Message{Key: []byte("not-an-order"), Value: []byte(r)})
	}
	for i := range msgs {
		if err := signer.Sign(&msgs[i]); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := w.WriteMessages(e.ctx, msgs...); err != nil {
		e.t.Fatal(err)
	}
}

// run starts the projector for ps until the test ends.
func (e *batchEnv) run(ps ...projections.Projection) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() {
		done <- projector.Run(ctx, projector.Config{
			Kafka: kafka.Config{Brokers: e.brokers}, Topic: batchTopic, Verifier: testenv.EventVerifier(e.t), Runtime: e.rt, Projections: ps,
			// Everything published before the start lands in a few batches.
			MaxBatch: 1000, Linger: 200 * time.Millisecond,
			MaxRetries: 1, InitialInterval: 10 * time.Millisecond,
			Registerer: e.metrics,
		})
	}()
	e.t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				e.t.Errorf("projector: %v", err)
			}
		case <-time.After(hangGuard):
			e.t.Error("projector did not stop")
		}
	})
}

// value is the value of metric name with label projection = p (0 if none);
// for a histogram, its sample count and sum.
func (e *batchEnv) value(name, p string) (v, sum float64) {
	e.t.Helper()
	mfs, err := e.metrics.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := p == ""
			for _, l := range m.GetLabel() {
				match = match || (l.GetName() == "projection" || l.GetName() == "handler") && l.GetValue() == p
			}
			if !match {
				continue
			}
			switch {
			case m.Counter != nil:
				v += m.GetCounter().GetValue()
			case m.Gauge != nil:
				v += m.GetGauge().GetValue()
			case m.Histogram != nil:
				v += float64(m.GetHistogram().GetSampleCount())
				sum += m.GetHistogram().GetSampleSum()
			}
		}
	}
	return v, sum
}

func (e *batchEnv) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// deadLetters waits for n dead letters in the table, and returns them.
func (e *batchEnv) deadLetters(n int) []projections.DeadLetter {
	e.t.Helper()
	var out []projections.DeadLetter
	e.waitFor(fmt.Sprintf("%d dead letters", n), func() bool {
		var err error
		out, err = projections.ListDeadLetters(e.ctx, e.db.Query, projections.DeadLetterFilter{State: "all", Limit: projections.MaxDeadLetters})
		if err != nil {
			e.t.Fatal(err)
		}
		return len(out) >= n
	})
	return out
}

// A batch holding an event no code can decode and a message that is not an
// envelope at all applies everything else; the two bad ones are retried
// alone and dead-lettered with their error, once per projection.
func TestProjectorDeadLettersTheBadEventsOfABatchAndAppliesTheRest(t *testing.T) {
	t.Parallel()
	e := newBatchEnv(t, 30)
	poison := ulid.Make()
	if _, err := e.writer.Append(e.ctx, eventstore.Stream{ID: poison, Type: "order"}, eventstore.NoStream(),
		[]eventstore.EventData{{ID: ulid.Make(), Type: "FromTheFuture", SchemaVersion: 1, Data: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	all, err := e.store.ReadAll(e.ctx, 0, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	half := len(e.events) / 2
	// Good events, the poison event and a malformed message in the middle,
	// more good events: all in one partition.
	e.publish(append(append([]eventstore.RecordedEvent{}, e.events[:half]...), all[len(all)-1]), "this is not an envelope")
	e.publish(e.events[half:])
	ps := projections.All()
	e.run(ps...)

	good := float64(len(e.events))
	for _, p := range ps {
		e.waitFor(p.Name()+" caught up and its bad events dead-lettered", func() bool {
			applied, _ := e.value("projection_events_applied_total", p.Name())
			dlq, _ := e.value("projection_dlq_total", p.Name())
			return applied >= good && dlq >= 2
		})
	}
	for _, p := range ps {
		if applied, _ := e.value("projection_events_applied_total", p.Name()); applied != good {
			t.Errorf("%s applied %v events, want the %v good ones", p.Name(), applied, good)
		}
		if dlq, _ := e.value("projection_dlq_total", p.Name()); dlq != 2 {
			t.Errorf("%s dead-lettered %v events, want 2", p.Name(), dlq)
		}
		// Only the two bad events went through the router, one at a time.
		if failed, _ := e.value("orderflow_consumer_messages_total", p.Name()); failed != 2 {
			t.Errorf("%s: %v messages handled alone, want the 2 bad ones", p.Name(), failed)
		}
		if n, events := e.value("projection_batch_size", p.Name()); events/n <= 1 {
			t.Errorf("%s: %v transactions for %v events: the events were not batched", p.Name(), n, events)
		}
	}
	dlq := e.deadLetters(2 * len(ps))
	reasons := map[string]int{}
	for _, d := range dlq {
		switch r := d.Reason; {
		case strings.Contains(r, "unknown event type"):
			if d.OrderID == nil || *d.OrderID != poison {
				t.Errorf("dead letter of the poison event parks order %v, want %s", d.OrderID, poison)
			}
			reasons["undecodable"]++
		case strings.Contains(r, "decode envelope"):
			if d.OrderID != nil {
				t.Errorf("a message that is not an envelope parks order %v", d.OrderID)
			}
			reasons["malformed"]++
		default:
			t.Errorf("dead letter with reason %q", r)
		}
		if d.Projection == "" || d.State != projections.Parked {
			t.Errorf("dead letter %+v: want its projection, parked", d)
		}
	}
	if reasons["undecodable"] != len(ps) || reasons["malformed"] != len(ps) {
		t.Errorf("dead letters by reason %v, want each bad event once per projection", reasons)
	}
}

// An event that makes the batch's statements fail in the database (here a
// trigger rejects one customer's summaries) fails the whole batch; its
// events are then applied one at a time: the first event of each of that
// customer's orders is dead-lettered, and the orders' later events are
// parked behind it, never applied and never retried.
func TestProjectorIsolatesTheEventsThatFailTheirBatchInTheDatabase(t *testing.T) {
	t.Parallel()
	e := newBatchEnv(t, 40)
	const bad = "cust-0000003"
	if _, err := e.db.Owner.Exec(e.ctx, `
		CREATE FUNCTION reject_customer() RETURNS trigger LANGUAGE plpgsql AS
		$$ BEGIN RAISE EXCEPTION 'test: customer % is rejected', NEW.customer_id; END $$;
		CREATE TRIGGER reject_customer BEFORE INSERT OR UPDATE ON order_summaries
		FOR EACH ROW WHEN (NEW.customer_id = '`+bad+`') EXECUTE FUNCTION reject_customer()`); err != nil {
		t.Fatal(err)
	}
	var badEvents, badOrders int
	if err := e.db.Query.QueryRow(e.ctx, `SELECT count(*), count(DISTINCT stream_id) FROM events WHERE stream_id IN
		(SELECT stream_id FROM events WHERE event_type = 'OrderCreated' AND data->>'customer_id' = $1)`, bad).Scan(&badEvents, &badOrders); err != nil {
		t.Fatal(err)
	}
	if badOrders == 0 {
		t.Fatalf("the seed gave %s no order", bad)
	}
	e.publish(e.events)
	e.run(projections.OrderSummary{})

	p := projections.OrderSummary{}.Name()
	e.waitFor("every event applied, dead-lettered or parked", func() bool {
		applied, _ := e.value("projection_events_applied_total", p)
		dlq, _ := e.value("projection_dlq_total", p)
		parked, _ := e.value("projection_events_parked_total", p)
		return int(applied)+int(dlq)+int(parked) >= len(e.events)
	})
	if dlq, _ := e.value("projection_dlq_total", p); int(dlq) != badOrders {
		t.Errorf("dead-lettered %v events, want the first of each of %s's %d orders", dlq, bad, badOrders)
	}
	if parked, _ := e.value("projection_events_parked_total", p); int(parked) != badEvents-badOrders {
		t.Errorf("parked %v events behind them, want the other %d of %s's orders", parked, badEvents-badOrders, bad)
	}
	var summaries, orders int
	if err := e.db.Query.QueryRow(e.ctx, `SELECT count(*) FROM order_summaries`).Scan(&summaries); err != nil {
		t.Fatal(err)
	}
	if err := e.db.Query.QueryRow(e.ctx, `SELECT count(DISTINCT stream_id) FROM events`).Scan(&orders); err != nil {
		t.Fatal(err)
	}
	if summaries != orders-badOrders {
		t.Errorf("%d summaries, want every order but %s's: %d", summaries, bad, orders-badOrders)
	}
	reasons := map[bool]int{}
	for _, d := range e.deadLetters(badEvents) {
		rejected := strings.Contains(d.Reason, "is rejected")
		if !rejected && !strings.Contains(d.Reason, "parked behind version") {
			t.Errorf("dead letter with reason %q, want the trigger's or parked behind it", d.Reason)
		}
		reasons[rejected]++
	}
	if reasons[true] != badOrders {
		t.Errorf("%d dead letters with the trigger's reason, want one per order: %d", reasons[true], badOrders)
	}
}

// While the database holds a batch back, the lag shows; a batch whose
// connection the database drops (as in a restart) is handed over again,
// not dead-lettered; afterwards the lag is back to 0.
func TestProjectorShowsLagAndRetriesABatchTheDatabaseDropped(t *testing.T) {
	t.Parallel()
	e := newBatchEnv(t, 30)
	// Hold every batch of status_counts at its first statement.
	hold, err := e.db.Owner.Begin(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = hold.Rollback(e.ctx) }()
	if _, err := hold.Exec(e.ctx, `LOCK TABLE status_counts_versions IN EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	e.publish(e.events)
	e.run(projections.StatusCounts{})
	p := projections.StatusCounts{}.Name()

	e.waitFor("a lag while the batch is held", func() bool {
		events, _ := e.value("projection_lag_events", p)
		seconds, _ := e.value("projection_lag_seconds", p)
		return events > 0 && seconds > 0
	})
	if events, _ := e.value("projection_lag_events", p); events > float64(len(e.events)) {
		t.Errorf("lag of %v events, but only %d were published", events, len(e.events))
	}
	// Drop the waiting batch's connection, as a restart would.
	const held = `SELECT pid FROM pg_stat_activity WHERE datname = current_database()
		AND wait_event_type = 'Lock' AND query LIKE '%status_counts_versions%' AND pid <> ALL($1)`
	var killed []int32
	e.waitFor("the held batch's backend", func() bool {
		if err := e.db.Owner.QueryRow(e.ctx, `SELECT coalesce(array_agg(pid), '{}') FROM (`+held+`) h`, []int32{}).Scan(&killed); err != nil {
			t.Fatal(err)
		}
		return len(killed) > 0
	})
	if _, err := e.db.Owner.Exec(e.ctx, `SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid`, killed); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the batch handed over again, on a new connection, and held again", func() bool {
		rows, err := e.db.Owner.Query(e.ctx, held, killed)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		return rows.Next()
	})
	if err := hold.Commit(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.waitFor("caught up", func() bool {
		applied, _ := e.value("projection_events_applied_total", p)
		return applied >= float64(len(e.events))
	})
	e.waitFor("no lag", func() bool {
		events, _ := e.value("projection_lag_events", p)
		seconds, _ := e.value("projection_lag_seconds", p)
		return events == 0 && seconds == 0
	})
	if dlq, _ := e.value("projection_dlq_total", p); dlq != 0 {
		t.Errorf("%v events dead-lettered: a dropped connection is not the events' fault", dlq)
	}
	if alone, _ := e.value("orderflow_consumer_messages_total", p); alone != 0 {
		t.Errorf("%v events retried alone: the batch should have been handed over whole", alone)
	}
}
