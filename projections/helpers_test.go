package projections

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow/commands"
	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/pgtest"
	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/order"
)

// projEnv is a freshly migrated database with an event store and a runtime.
type projEnv struct {
	t     *testing.T
	ctx   context.Context
	db    *pgtest.DB
	store *eventstore.Store
	reg   *order.Registry
	rt    *Runtime
	prom  *prometheus.Registry // the runtime's metrics
}

func newProjEnv(t *testing.T) *projEnv {
	t.Helper()
	te := testenv.New(t)
	prom := prometheus.NewRegistry()
	rt, err := NewRuntime(te.DB.Projector, eventstore.New(te.DB.Projector), te.Registry, prom, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	return &projEnv{t: t, ctx: context.Background(), db: te.DB, store: te.Store, reg: te.Registry, rt: rt, prom: prom}
}

// decide runs a real decision against st at time now, appends its events
// expecting st's version, and folds them into st. Histories built this way
// are ones the command side can produce.
func (e *projEnv) decide(st *order.State, id ulid.ULID, cmd commands.Command, now time.Time) {
	e.t.Helper()
	evs, err := cmd.Decide(*st, now)
	if err != nil {
		e.t.Fatalf("decide %T on a %s order: %v", cmd, st.Status, err)
	}
	data := make([]eventstore.EventData, len(evs))
	for i, ev := range evs {
		name, v, raw, err := e.reg.Encode(ev)
		if err != nil {
			e.t.Fatal(err)
		}
		data[i] = eventstore.EventData{ID: ulid.Make(), Type: name, SchemaVersion: v, Data: raw}
		st.Apply(ev)
	}
	expected := eventstore.NoStream()
	if v := st.Version - int64(len(evs)); v > 0 {
		expected = eventstore.Exact(v)
	}
	if _, err := e.store.Append(e.ctx, eventstore.Stream{ID: id, Type: "order"}, expected, data); err != nil {
		e.t.Fatalf("append %T: %v", cmd, err)
	}
}

// randomHistory appends n orders with random but valid lives: several
// customers and currencies, items added and removed, every end status,
// cancellations from draft, placed and paid (with refunds), and event times
// spread over about a week of UTC days (an order's events hours apart, so
// they cross midnights).
func (e *projEnv) randomHistory(rng *rand.Rand, n int) {
	e.t.Helper()
	customers := []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace"}
	currencies := []string{"EUR", "USD", "JPY", "KWD"}
	base := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	for range n {
		id, st := ulid.Make(), order.State{}
		now := base.Add(time.Duration(rng.Int64N(int64(5 * 24 * time.Hour))))
		do := func(cmd commands.Command) {
			now = now.Add(time.Duration(rng.Int64N(int64(20 * time.Hour))))
			e.decide(&st, id, cmd, now)
		}
		item := func() commands.ItemInput {
			sku := fmt.Sprintf("sku-%d", rng.IntN(6))
			// Price follows the SKU, so re-adding one never conflicts; a
			// free SKU makes zero-amount orders and payments possible.
			price := int64(len(sku)*137) * int64(sku[4]-'0')
			return commands.ItemInput{SKU: sku, Name: "item " + sku, Quantity: 1 + rng.Int64N(5), UnitPriceMinor: price}
		}
		create := commands.CreateOrder{OrderID: id, CustomerID: customers[rng.IntN(len(customers))], Currency: currencies[rng.IntN(len(currencies))]}
		for range rng.IntN(3) {
			if it := item(); !slices.ContainsFunc(create.Items, func(c commands.ItemInput) bool { return c.SKU == it.SKU }) {
				create.Items = append(create.Items, it)
			}
		}
		do(create)
		for range rng.IntN(5) {
			if len(st.Items) > 0 && rng.IntN(3) == 0 {
				do(commands.RemoveItem{SKU: st.Items[rng.IntN(len(st.Items))].SKU})
			} else {
				do(commands.AddItem(item()))
			}
		}
		e.randomLife(rng, &st, do, item)
	}
}

// randomLife walks the order forward from draft until it stops or ends.
func (e *projEnv) randomLife(rng *rand.Rand, st *order.State, do func(commands.Command), item func() commands.ItemInput) {
	for {
		r := rng.IntN(100)
		switch st.Status {
		case order.StatusDraft:
			switch {
			case r < 15:
				return
			case r < 25:
				do(commands.CancelOrder{Reason: "changed mind"})
			default:
				if len(st.Items) == 0 {
					do(commands.AddItem(item()))
				}
				do(commands.PlaceOrder{})
			}
		case order.StatusPlaced:
			switch {
			case r < 15:
				return
			case r < 30:
				do(commands.CancelOrder{Reason: "not paid"})
			default:
				do(commands.RecordPayment{AmountMinor: st.TotalMinor, Currency: st.Currency, Reference: "pay-" + st.ID.String()})
			}
		case order.StatusPaid:
			switch {
			case r < 10:
				return
			case r < 35:
				do(commands.CancelOrder{Reason: "out of stock"})
			default:
				do(commands.ShipOrder{Carrier: "DHL", TrackingNumber: "T" + st.ID.String()})
			}
		case order.StatusShipped:
			if r < 20 {
				return
			}
			do(commands.DeliverOrder{})
		default: // delivered, cancelled: the end
			return
		}
	}
}

// readAll returns every event after position after, in position order.
func (e *projEnv) readAll(after int64) []eventstore.RecordedEvent {
	e.t.Helper()
	var all []eventstore.RecordedEvent
	for {
		evs, err := e.store.ReadAll(e.ctx, after, 1000)
		if err != nil {
			e.t.Fatal(err)
		}
		if len(evs) == 0 {
			return all
		}
		all = append(all, evs...)
		after = evs[len(evs)-1].Position
	}
}

// deliverLive hands evs to p the way Kafka does at its worst: orders spread
// over concurrent partitions (an order always on one, as with the order id
// as key), every event delivered twice in a row, some adjacent events of an
// order swapped (the later one finds a gap and fills it from the store; the
// earlier one then arrives as a redelivery), and finally each partition
// replayed from its start, as after a rebalance with no commit.
func (e *projEnv) deliverLive(p Projection, evs []eventstore.RecordedEvent, partitions int, rng *rand.Rand) {
	e.t.Helper()
	seqs := make([][]eventstore.RecordedEvent, partitions)
	for _, ev := range evs {
		k := int(ev.StreamID[15]) % partitions
		seqs[k] = append(seqs[k], ev)
	}
	for _, seq := range seqs {
		for i := 0; i+1 < len(seq); i++ {
			if seq[i].StreamID == seq[i+1].StreamID && rng.IntN(8) == 0 {
				seq[i], seq[i+1] = seq[i+1], seq[i]
				i++
			}
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, partitions)
	for k, seq := range seqs {
		wg.Go(func() {
			for _, ev := range slices.Concat(seq, seq) {
				for range 2 {
					if err := e.rt.Handle(e.ctx, p, k, ev); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		e.t.Fatal(err)
	}
}

// awaitLockWait returns once some session of the test database waits for a
// lock, so a test can order two transactions deterministically.
func (e *projEnv) awaitLockWait() {
	e.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for waiting := 0; waiting == 0; {
		if time.Now().After(deadline) {
			e.t.Fatal("no session ever waited for a lock")
		}
		if err := e.db.Owner.QueryRow(e.ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			e.t.Fatal(err)
		}
	}
}

// counter returns the value of a runtime counter summed over its labels.
func (e *projEnv) counter(name string) float64 {
	e.t.Helper()
	families, err := e.prom.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	var v float64
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				v += m.GetCounter().GetValue()
			}
		}
	}
	return v
}

// dump returns every row of every table of p, versions table included, as
// text in a fixed order (sorted by the row's text; each table has a primary
// key, so that is a total order). The session time zone is UTC so that
// timestamps read the same on any server.
func (e *projEnv) dump(p Projection) map[string][]string {
	e.t.Helper()
	return e.db.Rows(e.t, append([]string{versionsTable(p)}, p.Tables()...)...)
}

// diffRows fails t with the first differences between two dumps.
func diffRows(t *testing.T, what string, want, got map[string][]string) {
	t.Helper()
	pgtest.DiffRows(t, what, want, got)
}

// checkRebuildEqualsLive is invariant 5 for p: a random history applied
// live, with redeliveries, gaps and concurrent partitions, equals the model
// rebuilt from the store, row for row. A second round appends more history
// while the rebuild runs (so the catch-up applies it onto the bulk-loaded
// tables), delivers it live afterwards (it must all be skipped as already
// applied), and checks that this equals a plain bulk rebuild.
func checkRebuildEqualsLive(t *testing.T, p Projection) {
	e := newProjEnv(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed>>1))

	e.randomHistory(rng, 300)
	first := e.readAll(0)
	e.deliverLive(p, first, 4, rng)
	if e.counter("projection_gap_events_total") == 0 || e.counter("projection_events_skipped_total") == 0 {
		t.Fatal("the delivery had no gap or no redelivery: the live path was not tested at its worst")
	}
	live := e.dump(p)
	if len(live[p.Tables()[0]]) == 0 {
		t.Fatalf("live model of %s is empty", p.Name())
	}
	if _, err := e.rt.Rebuild(e.ctx, e.db.Owner, p, nil); err != nil {
		t.Fatal(err)
	}
	diffRows(t, "rebuilt vs live", live, e.dump(p))

	head := first[len(first)-1].Position
	appended := false
	st, err := e.rt.Rebuild(e.ctx, e.db.Owner, p, func(done, total int64) {
		if !appended { // after the bulk load, before the catch-up
			appended = true
			e.randomHistory(rng, 40)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.CaughtUp == 0 {
		t.Fatal("the rebuild caught up nothing: the second round did not test the catch-up")
	}
	e.deliverLive(p, e.readAll(head), 2, rng)
	caughtUp := e.dump(p)
	if _, err := e.rt.Rebuild(e.ctx, e.db.Owner, p, nil); err != nil {
		t.Fatal(err)
	}
	diffRows(t, "bulk rebuild vs rebuild with catch-up", e.dump(p), caughtUp)
}

// scenarioOrder is one order of a hand-computed scenario.
type scenarioOrder struct {
	customer, currency string
	steps              []scenarioStep
}

type scenarioStep struct {
	at  string // RFC 3339
	cmd commands.Command
}

// applyScenario appends the orders and applies their events live, in order.
func (e *projEnv) applyScenario(p Projection, orders []scenarioOrder) {
	e.t.Helper()
	for _, o := range orders {
		id, st := ulid.Make(), order.State{}
		for _, s := range o.steps {
			at, err := time.Parse(time.RFC3339, s.at)
			if err != nil {
				e.t.Fatal(err)
			}
			cmd := s.cmd
			if c, ok := cmd.(commands.CreateOrder); ok {
				c.OrderID, c.CustomerID, c.Currency = id, o.customer, o.currency
				cmd = c
			}
			if c, ok := cmd.(commands.RecordPayment); ok {
				c.AmountMinor, c.Currency = st.TotalMinor, st.Currency
				cmd = c
			}
			e.decide(&st, id, cmd, at)
		}
	}
	for _, ev := range e.readAll(0) {
		if err := e.rt.Handle(e.ctx, p, 0, ev); err != nil {
			e.t.Fatal(err)
		}
	}
}

// checkScenario compares p's tables (not its versions table) with want,
// live and after a rebuild.
func (e *projEnv) checkScenario(p Projection, want map[string][]string) {
	e.t.Helper()
	for _, round := range []string{"live", "rebuilt"} {
		if round == "rebuilt" {
			if _, err := e.rt.Rebuild(e.ctx, e.db.Owner, p, nil); err != nil {
				e.t.Fatal(err)
			}
		}
		got := e.dump(p)
		delete(got, versionsTable(p))
		diffRows(e.t, round, want, got)
	}
}

// handScenario is the small history the hand-computed tests share:
//
//	A alice EUR: created 03-01 10:00, 2×1000 placed 03-01 22:00, paid 03-02 01:00,
//	  cancelled and refunded 03-03 09:00
//	B alice EUR: created 03-02 08:00, 1×500 placed 09:00, paid 09:30, shipped 12:00
//	C bob USD:   created 03-01 23:59:59, 3×250 placed 03-02 00:00:01, cancelled 03-04
//	D bob USD:   created 03-05 10:00, an item added and removed: a draft
//	E carol JPY: created 03-01 12:00, 1×3000 placed 13:00, paid 14:00, shipped 15:00,
//	  delivered 03-06
func handScenario() []scenarioOrder {
	items := func(sku string, qty, price int64) []commands.ItemInput {
		return []commands.ItemInput{{SKU: sku, Name: sku, Quantity: qty, UnitPriceMinor: price}}
	}
	ship := commands.ShipOrder{Carrier: "DHL", TrackingNumber: "T1"}
	return []scenarioOrder{
		{"alice", "EUR", []scenarioStep{
			{"2025-03-01T10:00:00Z", commands.CreateOrder{Items: items("a", 2, 1000)}},
			{"2025-03-01T22:00:00Z", commands.PlaceOrder{}},
			{"2025-03-02T01:00:00Z", commands.RecordPayment{Reference: "p-a"}},
			{"2025-03-03T09:00:00Z", commands.CancelOrder{Reason: "late"}},
		}},
		{"alice", "EUR", []scenarioStep{
			{"2025-03-02T08:00:00Z", commands.CreateOrder{Items: items("b", 1, 500)}},
			{"2025-03-02T09:00:00Z", commands.PlaceOrder{}},
			{"2025-03-02T09:30:00Z", commands.RecordPayment{Reference: "p-b"}},
			{"2025-03-02T12:00:00Z", ship},
		}},
		{"bob", "USD", []scenarioStep{
			{"2025-03-01T23:59:59Z", commands.CreateOrder{Items: items("c", 3, 250)}},
			{"2025-03-02T00:00:01Z", commands.PlaceOrder{}},
			{"2025-03-04T00:00:00Z", commands.CancelOrder{Reason: "unpaid"}},
		}},
		{"bob", "USD", []scenarioStep{
			{"2025-03-05T10:00:00Z", commands.CreateOrder{}},
			{"2025-03-05T10:01:00Z", commands.AddItem(items("d", 1, 100)[0])},
			{"2025-03-05T10:02:00Z", commands.RemoveItem{SKU: "d"}},
		}},
		{"carol", "JPY", []scenarioStep{
			{"2025-03-01T12:00:00Z", commands.CreateOrder{Items: items("e", 1, 3000)}},
			{"2025-03-01T13:00:00Z", commands.PlaceOrder{}},
			{"2025-03-01T14:00:00Z", commands.RecordPayment{Reference: "p-e"}},
			{"2025-03-01T15:00:00Z", ship},
			{"2025-03-06T00:00:00Z", commands.DeliverOrder{}},
		}},
	}
}
