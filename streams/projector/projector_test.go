package projector_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/orderflow/orderflow/commands"
	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/pgtest"
	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/projections"
	"github.com/orderflow/orderflow/streams/kafka"
	"github.com/orderflow/orderflow/streams/projector"
)

// TestPipelineFromCommandsToReadModels runs the whole write-to-read path:
// commands append, the relay publishes to a kfake broker over TCP, the
// projector applies from Kafka. The live read models must then equal a
// rebuild from the store, row for row; and an event no projection can
// decode is dead-lettered, counted, and does not stop the others.
func TestPipelineFromCommandsToReadModels(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := testenv.New(t)
	db, store, registry := e.DB, e.Store, e.Registry
	brokers := e.Kafka(t)
	kcfg := kafka.Config{Brokers: brokers}
	log := testenv.Logger(t)
	rl := e.NewRelay(t, nil)
	metrics := prometheus.NewRegistry()
	rt, err := projections.NewRuntime(db.Projector, eventstore.New(db.Projector), registry, metrics, log)
	if err != nil {
		t.Fatal(err)
	}
	all := projections.All()
	done := make(chan error, 2)
	go func() { done <- rl.Run(ctx) }()
	go func() {
		done <- projector.Run(ctx, projector.Config{
			Kafka: kcfg, Topic: testenv.Topic, Partitions: testenv.Partitions, Verifier: testenv.EventVerifier(t), Runtime: rt, Projections: all,
			MaxRetries: 1, InitialInterval: 10 * time.Millisecond, Registerer: metrics, Logger: log,
		})
	}()

	svc, err := commands.NewService(commands.Config{Store: store, Registry: registry})
	if err != nil {
		t.Fatal(err)
	}
	var ids []ulid.ULID
	for i := range 40 {
		id := ulid.Make()
		ids = append(ids, id)
		run := func(c commands.Command) {
			if _, err := svc.Execute(ctx, commands.Request{OrderID: id, Command: c}); err != nil {
				t.Fatalf("order %d: %T: %v", i, c, err)
			}
		}
		run(commands.CreateOrder{OrderID: id, CustomerID: fmt.Sprintf("c-%d", i%7), Currency: "EUR",
			Items: []commands.ItemInput{{SKU: "A", Name: "a", Quantity: 1 + int64(i%3), UnitPriceMinor: 999}}})
		if i%2 == 0 {
			run(commands.PlaceOrder{})
			run(commands.RecordPayment{AmountMinor: 999 * (1 + int64(i%3)), Currency: "EUR", Reference: "p"})
		}
		if i%4 == 0 {
			run(commands.CancelOrder{Reason: "r"})
		}
	}
	// A poison event: a type this code does not know.
	poison := eventstore.Stream{ID: ulid.Make(), Type: order.StreamType}
	if _, err := store.Append(ctx, poison, eventstore.NoStream(), []eventstore.EventData{{
		ID: ulid.Make(), Type: "FromTheFuture", SchemaVersion: 1, Data: []byte(`{}`),
	}}); err != nil {
		t.Fatal(err)
	}

	var wantVersions int64
	for _, id := range ids {
		v, err := store.StreamVersion(ctx, eventstore.Stream{ID: id, Type: order.StreamType})
		if err != nil {
			t.Fatal(err)
		}
		wantVersions += v
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		sts, err := projections.Statuses(ctx, db.Query, eventstore.New(db.Query), all, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		// Partitions are applied concurrently: a projection's highest
		// position says nothing of the others. Caught up means every order's
		// last version is applied in every projection.
		caughtUp := true
		for _, p := range all {
			var applied int64
			if err := db.Query.QueryRow(ctx, `SELECT coalesce(sum(version), 0) FROM `+p.Name()+`_versions`).Scan(&applied); err != nil {
				t.Fatal(err)
			}
			caughtUp = caughtUp && applied == wantVersions
		}
		if caughtUp && testutil.ToFloat64(dlqCounter(t, metrics, "order_summary")) >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("read models did not catch up: %+v, relay %+v", sts, rl.Status())
		}
		time.Sleep(100 * time.Millisecond)
	}

	for _, p := range all {
		live := dump(t, db, p)
		st, err := rt.Rebuild(ctx, db.Owner, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st.Undecodable != 1 {
			t.Errorf("%s: rebuild found %d undecodable orders, want 1", p.Name(), st.Undecodable)
		}
		rebuilt := dump(t, db, p)
		for table, rows := range live {
			if strings.Join(rows, "\n") != strings.Join(rebuilt[table], "\n") {
				t.Errorf("%s: the rebuild from the store differs from the model built from Kafka (%d vs %d rows)",
					table, len(rebuilt[table]), len(rows))
			}
		}
	}
}

func dlqCounter(t *testing.T, reg *prometheus.Registry, projection string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "projection_dlq_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == projection {
					return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x"}, func() float64 { return m.GetCounter().GetValue() })
				}
			}
		}
	}
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x"}, func() float64 { return 0 })
}

func dump(t *testing.T, db *pgtest.DB, p projections.Projection) map[string][]string {
	t.Helper()
	return db.Rows(t, append([]string{p.Name() + "_versions"}, p.Tables()...)...)
}
