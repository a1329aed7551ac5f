package projections_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow/commands"
	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/pgtest"
	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/projections"
)

type env struct {
	db    *pgtest.DB
	store *eventstore.Store
	rt    *projections.Runtime
	reg   *order.Registry
}

func newEnv(t *testing.T) *env {
	t.Helper()
	te := testenv.New(t)
	rt, err := projections.NewRuntime(te.DB.Projector, eventstore.New(te.DB.Projector), te.Registry, prometheus.NewRegistry(), testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	return &env{db: te.DB, store: te.Store, rt: rt, reg: te.Registry}
}

// decide runs a command against the stored order and appends its events.
func (e *env) decide(t *testing.T, id ulid.ULID, cmd commands.Command, now time.Time) error {
	t.Helper()
	ctx := context.Background()
	stream := eventstore.Stream{ID: id, Type: order.StreamType}
	recs, err := e.store.ReadStream(ctx, stream, 1, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var s order.State
	for _, r := range recs {
		ev, err := e.reg.Decode(r.Type, r.SchemaVersion, r.Data)
		if err != nil {
			t.Fatal(err)
		}
		s.Apply(ev)
	}
	evs, err := cmd.Decide(s, now)
	if err != nil {
		return err
	}
	data := make([]eventstore.EventData, len(evs))
	for i, ev := range evs {
		name, schema, raw, err := e.reg.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		data[i] = eventstore.EventData{ID: ulid.Make(), Type: name, SchemaVersion: schema, Data: raw}
	}
	if _, err := e.store.Append(ctx, stream, eventstore.Any(), data); err != nil {
		t.Fatal(err)
	}
	return nil
}

// history writes n orders with random but valid lives.
func (e *env) history(t *testing.T, n int, rng *rand.Rand) {
	t.Helper()
	currencies := []string{"EUR", "USD", "JPY"}
	base := time.Now().UTC().Add(-72 * time.Hour)
	for i := range n {
		id := ulid.Make()
		now := base.Add(time.Duration(rng.IntN(72*60)) * time.Minute)
		cur := currencies[rng.IntN(len(currencies))]
		create := commands.CreateOrder{OrderID: id, CustomerID: fmt.Sprintf("c-%d", rng.IntN(n/5+1)), Currency: cur,
			Items: []commands.ItemInput{{SKU: fmt.Sprintf("S-%d", i), Name: "first", Quantity: 1 + int64(rng.IntN(3)), UnitPriceMinor: int64(rng.IntN(5000))}}}
		if err := e.decide(t, id, create, now); err != nil {
			t.Fatal(err)
		}
		for j := range rng.IntN(4) {
			_ = e.decide(t, id, commands.AddItem{SKU: fmt.Sprintf("X-%d", j), Name: "extra", Quantity: 2, UnitPriceMinor: 150}, now)
		}
		if rng.IntN(4) == 0 {
			_ = e.decide(t, id, commands.RemoveItem{SKU: "X-0"}, now)
		}
		stage := rng.IntN(6)
		if stage >= 1 {
			_ = e.decide(t, id, commands.PlaceOrder{}, now.Add(time.Minute))
		}
		if stage >= 2 {
			s := e.load(t, id)
			_ = e.decide(t, id, commands.RecordPayment{AmountMinor: s.TotalMinor, Currency: cur, Reference: "psp"}, now.Add(2*time.Minute))
		}
		if stage >= 3 && rng.IntN(3) > 0 {
			_ = e.decide(t, id, commands.ShipOrder{Carrier: "dhl", TrackingNumber: "T1"}, now.Add(26*time.Hour))
			if stage >= 4 {
				_ = e.decide(t, id, commands.DeliverOrder{}, now.Add(50*time.Hour))
			}
		} else if stage >= 3 {
			_ = e.decide(t, id, commands.CancelOrder{Reason: "changed mind"}, now.Add(3*time.Hour))
		}
	}
}

func (e *env) load(t *testing.T, id ulid.ULID) order.State {
	t.Helper()
	recs, err := e.store.ReadStream(context.Background(), eventstore.Stream{ID: id, Type: order.StreamType}, 1, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var s order.State
	for _, r := range recs {
		ev, _ := e.reg.Decode(r.Type, r.SchemaVersion, r.Data)
		s.Apply(ev)
	}
	return s
}

// deliver hands every stored event to the projection the way Kafka might:
// each at least once, some twice, and some orders' events swapped so that
// a later version arrives first.
func (e *env) deliver(t *testing.T, p projections.Projection, rng *rand.Rand) {
	t.Helper()
	ctx := context.Background()
	evs, err := e.store.ReadAll(ctx, 0, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(evs); i++ {
		if i+1 < len(evs) && evs[i].StreamID == evs[i+1].StreamID && rng.IntN(5) == 0 {
			evs[i], evs[i+1] = evs[i+1], evs[i] // reordered: the gap path
		}
		if err := e.rt.Handle(ctx, p, rng.IntN(3), evs[i]); err != nil {
			t.Fatal(err)
		}
		if rng.IntN(4) == 0 {
			if err := e.rt.Handle(ctx, p, 0, evs[i]); err != nil { // redelivered
				t.Fatal(err)
			}
		}
	}
}

// dump returns every row of the projection's tables as text.
func (e *env) dump(t *testing.T, p projections.Projection) map[string][]string {
	t.Helper()
	return e.db.Rows(t, append([]string{p.Name() + "_versions"}, p.Tables()...)...)
}

func TestOrderSummaryRebuildEqualsLive(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rng := rand.New(rand.NewPCG(1, 2))
	e.history(t, 200, rng)
	p := projections.OrderSummary{}
	e.deliver(t, p, rng)
	live := e.dump(t, p)
	if len(live["order_summaries"]) != 200 {
		t.Fatalf("live model has %d orders, want 200", len(live["order_summaries"]))
	}
	oid := func() (o uint32) {
		if err := e.db.Owner.QueryRow(context.Background(), `SELECT 'public.order_summaries'::regclass::oid`).Scan(&o); err != nil {
			t.Fatal(err)
		}
		return o
	}
	before := oid()
	stats, err := e.rt.Rebuild(context.Background(), e.db.Owner, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Orders != 200 {
		t.Fatalf("rebuild folded %d orders", stats.Orders)
	}
	if oid() == before {
		t.Fatal("the rebuild did not swap in new tables")
	}
	rebuilt := e.dump(t, p)
	for table, rows := range live {
		if len(rows) != len(rebuilt[table]) {
			t.Fatalf("%s: live %d rows, rebuilt %d", table, len(rows), len(rebuilt[table]))
		}
		for i := range rows {
			if rows[i] != rebuilt[table][i] {
				t.Fatalf("%s row %d differs:\nlive    %s\nrebuilt %s", table, i, rows[i], rebuilt[table][i])
			}
		}
	}
}

func TestRedeliveryAndGapsHaveExactlyOnceEffect(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	id := ulid.Make()
	now := time.Now().UTC()
	if err := e.decide(t, id, commands.CreateOrder{OrderID: id, CustomerID: "c", Currency: "EUR",
		Items: []commands.ItemInput{{SKU: "A", Name: "a", Quantity: 2, UnitPriceMinor: 100}}}, now); err != nil {
		t.Fatal(err)
	}
	if err := e.decide(t, id, commands.AddItem{SKU: "A", Name: "a", Quantity: 3, UnitPriceMinor: 100}, now); err != nil {
		t.Fatal(err)
	}
	evs, err := e.store.ReadStream(ctx, eventstore.Stream{ID: id, Type: "order"}, 1, 10)
	if err != nil || len(evs) != 3 {
		t.Fatalf("%d events, %v", len(evs), err)
	}
	p := projections.OrderSummary{}
	// Version 3 first: versions 1 and 2 come from the store; then 1, 2 and
	// 3 again are redeliveries and change nothing.
	for _, ev := range []eventstore.RecordedEvent{evs[2], evs[0], evs[1], evs[2]} {
		if err := e.rt.Handle(ctx, p, 0, ev); err != nil {
			t.Fatal(err)
		}
	}
	var qty, version int64
	if err := e.db.Query.QueryRow(ctx, `SELECT quantity FROM order_lines WHERE sku = 'A'`).Scan(&qty); err != nil {
		t.Fatal(err)
	}
	if err := e.db.Query.QueryRow(ctx, `SELECT version FROM order_summaries`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if qty != 5 || version != 3 {
		t.Fatalf("quantity %d version %d, want 5 and 3: an event was applied twice or missed", qty, version)
	}
}
