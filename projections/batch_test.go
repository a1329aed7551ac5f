package projections

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/commands"
	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/order"
)

// Invariant 5 for batches: a random history applied in batches — orders
// spread over partitions, partitions interleaved, deliveries repeated, an
// order's adjacent events swapped (gaps), and two consumers applying the
// same deliveries at once in batches cut differently (a rebalance) — equals
// the model rebuilt from the store, row for row, in every projection.
func TestBatchesRebuildEqualsLive(t *testing.T) {
	t.Parallel()
	for _, p := range All() {
		t.Run(p.Name(), func(t *testing.T) {
			e := newProjEnv(t)
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			rng := rand.New(rand.NewPCG(seed, seed>>1))
			e.randomHistory(rng, 150)
			e.deliverBatches(p, e.readAll(0), 4, seed)
			if e.counter("projection_gap_events_total") == 0 || e.counter("projection_events_skipped_total") == 0 {
				t.Fatal("the delivery had no gap or no redelivery: batches were not tested at their worst")
			}
			live := e.dump(p)
			if len(live[p.Tables()[0]]) == 0 {
				t.Fatalf("live model of %s is empty", p.Name())
			}
			if _, err := e.rt.Rebuild(e.ctx, e.db.Owner, p, nil); err != nil {
				t.Fatal(err)
			}
			diffRows(t, "rebuilt vs live", live, e.dump(p))
		})
	}
}

// deliverBatches hands evs to p in batches the way the projector's
// consumers can at their worst (see TestBatchesRebuildEqualsLive), then once
// more in one batch, which must all be skipped.
func (e *projEnv) deliverBatches(p Projection, evs []eventstore.RecordedEvent, partitions int, seed uint64) {
	e.t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
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
	// One consumer's view: the partitions interleaved, each in its order,
	// some deliveries repeated.
	var stream []Delivery
	for left := len(evs); left > 0; {
		k := rng.IntN(partitions)
		if len(seqs[k]) == 0 {
			continue
		}
		d := Delivery{Event: seqs[k][0], Partition: k}
		seqs[k] = seqs[k][1:]
		left--
		stream = append(stream, d)
		if rng.IntN(6) == 0 {
			stream = append(stream, d)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for c := range 2 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(c)))
			for i := 0; i < len(stream); {
				n := min(1+rng.IntN(120), len(stream)-i)
				rejected, err := e.rt.ApplyBatch(e.ctx, p, stream[i:i+n])
				if err == nil && len(rejected) > 0 {
					err = fmt.Errorf("rejected %v", rejected)
				}
				if err != nil {
					errs <- err
					return
				}
				i += n
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		e.t.Fatal(err)
	}
	before := e.counter("projection_events_skipped_total")
	if _, err := e.rt.ApplyBatch(e.ctx, p, stream); err != nil {
		e.t.Fatal(err)
	}
	if skipped := e.counter("projection_events_skipped_total") - before; int(skipped) != len(stream) {
		e.t.Fatalf("replaying everything skipped %v of %d deliveries", skipped, len(stream))
	}
}

// appendRaw appends an event of any type and data to an order's stream, as a
// future version of the code (or a buggy producer) might have.
func (e *projEnv) appendRaw(id ulid.ULID, expected eventstore.ExpectedVersion, typ string, data string) {
	e.t.Helper()
	_, err := e.store.Append(e.ctx, eventstore.Stream{ID: id, Type: "order"}, expected, []eventstore.EventData{{
		ID: ulid.Make(), Type: typ, SchemaVersion: 1, Data: []byte(data),
	}})
	if err != nil {
		e.t.Fatal(err)
	}
}

func TestABatchRejectsAnUndecodableEventAndItsOrdersLaterEventsOnly(t *testing.T) {
	t.Parallel()
	e := newProjEnv(t)
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	good := func(customer string) ulid.ULID {
		id, st := ulid.Make(), order.State{}
		e.decide(&st, id, commands.CreateOrder{OrderID: id, CustomerID: customer, Currency: "EUR",
			Items: []commands.ItemInput{{SKU: "a", Name: "a", Quantity: 1, UnitPriceMinor: 100}}}, now)
		e.decide(&st, id, commands.PlaceOrder{}, now)
		return id
	}
	a, b := good("alice"), good("bob")
	// p: created, then an event this code cannot decode, then an item.
	p, pst := ulid.Make(), order.State{}
	e.decide(&pst, p, commands.CreateOrder{OrderID: p, CustomerID: "carol", Currency: "EUR"}, now)
	e.appendRaw(p, eventstore.Exact(1), "FromTheFuture", `{}`)
	_, _, raw, err := e.reg.Encode(order.ItemAdded{SKU: "b", Name: "b", Quantity: 1, UnitPriceMinor: 5})
	if err != nil {
		t.Fatal(err)
	}
	e.appendRaw(p, eventstore.Exact(2), "ItemAdded", string(raw))
	// q: its very first event cannot be decoded.
	q := ulid.Make()
	e.appendRaw(q, eventstore.NoStream(), "FromTheFuture", `{}`)

	// The orders interleaved, each in version order, as Kafka delivers.
	byOrder := map[ulid.ULID][]eventstore.RecordedEvent{}
	for _, ev := range e.readAll(0) {
		byOrder[ev.StreamID] = append(byOrder[ev.StreamID], ev)
	}
	partitionOf := map[ulid.ULID]int{a: 0, p: 0, b: 1, q: 1}
	var ds []Delivery
	for rng, ids := rand.New(rand.NewPCG(1, 1)), []ulid.ULID{a, b, p, q}; len(ids) > 0; {
		i := rng.IntN(len(ids))
		id := ids[i]
		ds = append(ds, Delivery{Event: byOrder[id][0], Partition: partitionOf[id]})
		if byOrder[id] = byOrder[id][1:]; len(byOrder[id]) == 0 {
			ids = slices.Delete(ids, i, i+1)
		}
	}
	rejected, err := e.rt.ApplyBatch(e.ctx, StatusCounts{}, ds)
	if err != nil {
		t.Fatal(err)
	}

	var got []string
	for i, r := range rejected {
		if i > 0 && rejected[i-1].Index >= r.Index {
			t.Errorf("rejections not in batch order: %v", rejected)
		}
		ev := ds[r.Index].Event
		got = append(got, fmt.Sprintf("%s v%d", map[ulid.ULID]string{p: "p", q: "q"}[ev.StreamID], ev.Version))
		if !strings.Contains(r.Err.Error(), "unknown event type") {
			t.Errorf("%s rejected for %v, want the undecodable event named", got[len(got)-1], r.Err)
		}
	}
	slices.Sort(got)
	if want := []string{"p v2", "p v3", "q v1"}; !slices.Equal(got, want) {
		t.Errorf("rejected %v, want %v", got, want)
	}
	// a and b are applied, p up to its version 1; q has no versions row
	// (the batch deletes the one it created), as a rebuild would have.
	versions := e.dump(StatusCounts{})["status_counts_versions"]
	if len(versions) != 3 {
		t.Errorf("versions rows %v: want a, b and p", versions)
	}
	for _, row := range versions {
		if strings.HasPrefix(row, "("+uuidText(p)+",") && !strings.HasPrefix(row, "("+uuidText(p)+",1,") {
			t.Errorf("p's versions row is %s, want version 1", row)
		}
	}
	if counts := e.dump(StatusCounts{})["status_counts"]; !slices.Contains(counts, "(placed,2)") || !slices.Contains(counts, "(draft,1)") {
		t.Errorf("status counts %v: want a and b placed, p a draft", counts)
	}
	// The checkpoints count what was applied, not what was rejected.
	wantCP := map[int]int64{}
	for i, d := range ds {
		if !slices.ContainsFunc(rejected, func(r Rejection) bool { return r.Index == i }) {
			wantCP[d.Partition] = max(wantCP[d.Partition], d.Event.Position)
		}
	}
	for part, pos := range wantCP {
		var got int64
		if err := e.db.Projector.QueryRow(e.ctx, `SELECT position FROM projection_checkpoints WHERE projection = $1 AND partition = $2`,
			StatusCounts{}.Name(), part).Scan(&got); err != nil || got != pos {
			t.Errorf("checkpoint of partition %d = %d (%v), want %d", part, got, err, pos)
		}
	}
	// Alone, each rejected event fails again, for the dead-letter queue.
	for _, r := range rejected {
		ev := ds[r.Index].Event
		if err := e.rt.Handle(e.ctx, StatusCounts{}, 0, ev); err == nil || !strings.Contains(err.Error(), "unknown event type") {
			t.Errorf("Handle of rejected %s v%d: %v, want the decode error", ev.StreamID, ev.Version, err)
		}
	}
}

func uuidText(id ulid.ULID) string {
	var u [16]byte = id
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// Two batches holding the same orders (a partition briefly delivered to two
// consumers) lock the orders' versions rows in the same order, whatever
// their deliveries' order: the second waits for the first, then finds every
// version applied and skips them all.
func TestTwoBatchesOfTheSameOrdersSerializeAndTheSecondSkips(t *testing.T) {
	t.Parallel()
	e := newProjEnv(t)
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for range 5 {
		id, st := ulid.Make(), order.State{}
		e.decide(&st, id, commands.CreateOrder{OrderID: id, CustomerID: "alice", Currency: "EUR",
			Items: []commands.ItemInput{{SKU: "a", Name: "a", Quantity: 1, UnitPriceMinor: 100}}}, now)
		e.decide(&st, id, commands.PlaceOrder{}, now)
	}
	evs := e.readAll(0)
	first := make([]Delivery, len(evs))
	for i, ev := range evs {
		first[i] = Delivery{Event: ev, Partition: 0}
	}
	// The same deliveries, orders in the opposite order.
	second := slices.Clone(first)
	slices.SortStableFunc(second, func(x, y Delivery) int { return -strings.Compare(x.Event.StreamID.String(), y.Event.StreamID.String()) })

	tx1, err := e.db.Projector.Begin(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx1.Rollback(e.ctx) }()
	if _, err := e.rt.applyBatch(e.ctx, tx1, CustomerStats{}, first); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := e.rt.ApplyBatch(e.ctx, CustomerStats{}, second)
		done <- err
	}()
	e.awaitLockWait()
	skippedBefore := e.counter("projection_events_skipped_total")
	if err := tx1.Commit(e.ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the second batch never finished")
	}
	if skipped := e.counter("projection_events_skipped_total") - skippedBefore; int(skipped) != len(second) {
		t.Errorf("the second batch skipped %v of %d deliveries", skipped, len(second))
	}
	stats := e.dump(CustomerStats{})["customer_stats"]
	if len(stats) != 1 || !strings.HasPrefix(stats[0], "(alice,5,0,5,") {
		t.Errorf("customer_stats %v: want alice with 5 orders, all placed, counted once", stats)
	}
}

func TestTransientErrorsAreTheDatabasesNotTheEvents(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "40P01"}, true},  // deadlock victim
		{&pgconn.PgError{Code: "40001"}, true},  // serialization failure
		{&pgconn.PgError{Code: "08006"}, true},  // connection failure
		{&pgconn.PgError{Code: "57P01"}, true},  // admin shutdown (a restart)
		{&pgconn.PgError{Code: "53100"}, true},  // disk full
		{&pgconn.PgError{Code: "57014"}, false}, // statement_timeout: alone, the events may fit
		{&pgconn.PgError{Code: "23505"}, false}, // a unique violation an event caused
		{&pgconn.PgError{Code: "22003"}, false}, // a value out of range
		{&pgconn.PgError{Code: "P0001"}, false}, // raised by a trigger
		{fmt.Errorf("write: %w", context.Canceled), true},
		{fmt.Errorf("lock: %w", io.ErrUnexpectedEOF), true},
		{&net.OpError{Op: "read", Err: errors.New("connection reset")}, true},
		{fmt.Errorf("lock: %w", errVersionRowGone), true},
		{errors.New("projection bug"), false},
		{pgx.ErrNoRows, false},
	} {
		if got := Transient(c.err); got != c.want {
			t.Errorf("Transient(%v) = %t, want %t", c.err, got, c.want)
		}
	}
}

func TestPermanentErrorsAreTheReadModelsRefusals(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "23514"}, true},  // a CHECK constraint refuses the value
		{&pgconn.PgError{Code: "23502"}, true},  // NOT NULL
		{&pgconn.PgError{Code: "22003"}, true},  // a value out of range
		{&pgconn.PgError{Code: "40P01"}, false}, // deadlock victim: transient
		{&pgconn.PgError{Code: "57014"}, false}, // statement_timeout: retried alone
		{&pgconn.PgError{Code: "P0001"}, false}, // raised by a trigger: retried
		{fmt.Errorf("write: %w", context.Canceled), false},
		{errors.New("projection bug"), false},
	} {
		if got := Permanent(c.err); got != c.want {
			t.Errorf("Permanent(%v) = %t, want %t", c.err, got, c.want)
		}
	}
}
