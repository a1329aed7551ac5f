package projections

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/commands"
	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/order"
)

// poisonCarrier makes order_summaries refuse a row: the constraint stands
// for a read model's bug that an event's content triggers, and dropping it
// for the fix.
const poisonCarrier = "POISON"

func (e *projEnv) poisonSummaries(on bool) {
	e.t.Helper()
	sql := `ALTER TABLE order_summaries ADD CONSTRAINT poison CHECK (carrier IS DISTINCT FROM '` + poisonCarrier + `')`
	if !on {
		sql = `ALTER TABLE order_summaries DROP CONSTRAINT poison`
	}
	if _, err := e.db.Owner.Exec(e.ctx, sql); err != nil {
		e.t.Fatal(err)
	}
}

// deliverLikeTheProjector hands evs to p as streams/projector does: one
// batch; if it fails, each event alone, and an event that fails alone is
// parked as its poison queue parks it.
func (e *projEnv) deliverLikeTheProjector(p Projection, evs []eventstore.RecordedEvent) (parkedAlone int) {
	e.t.Helper()
	ds := make([]Delivery, len(evs))
	for i, ev := range evs {
		ds[i] = Delivery{Event: ev, Partition: 0}
	}
	rejected, err := e.rt.ApplyBatch(e.ctx, p, ds)
	alone := evs
	if err == nil {
		alone = nil
		for _, r := range rejected {
			alone = append(alone, evs[r.Index])
		}
	}
	for _, ev := range alone {
		if err := e.rt.Handle(e.ctx, p, 0, ev); err != nil {
			env, merr := eventstore.MarshalEnvelope(ev)
			if merr != nil {
				e.t.Fatal(merr)
			}
			if err := e.rt.Park(e.ctx, p, env, err.Error()); err != nil {
				e.t.Fatal(err)
			}
			parkedAlone++
		}
	}
	return parkedAlone
}

func (e *projEnv) inTx(f func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(e.ctx, e.db.Projector, f)
}

func TestAPoisonEventParksItsOrderOnlyAndReplayAfterTheFixEqualsARebuild(t *testing.T) {
	t.Parallel()
	e := newProjEnv(t)
	p := OrderSummary{}
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	placed := func(id ulid.ULID, st *order.State) {
		e.decide(st, id, commands.CreateOrder{OrderID: id, CustomerID: "c", Currency: "EUR",
			Items: []commands.ItemInput{{SKU: "a", Name: "a", Quantity: 1, UnitPriceMinor: 100}}}, now)
		e.decide(st, id, commands.PlaceOrder{}, now)
		e.decide(st, id, commands.RecordPayment{AmountMinor: 100, Currency: "EUR", Reference: "r"}, now)
	}
	good, poisoned := ulid.Make(), ulid.Make()
	var gst, pst order.State
	placed(good, &gst)
	placed(poisoned, &pst)
	e.poisonSummaries(true)
	before := e.readAll(0)
	head, pv, gv := before[len(before)-1].Position, pst.Version, gst.Version
	e.decide(&pst, poisoned, commands.ShipOrder{Carrier: poisonCarrier, TrackingNumber: "t"}, now)
	e.decide(&pst, poisoned, commands.DeliverOrder{}, now)
	e.decide(&gst, good, commands.ShipOrder{Carrier: "dhl", TrackingNumber: "t"}, now)

	// Everything up to the payments, then the ship (poison) and the rest.
	if n := e.deliverLikeTheProjector(p, before); n != 0 {
		t.Fatalf("%d events parked before the poison one", n)
	}
	if n := e.deliverLikeTheProjector(p, e.readAll(head)); n != 1 {
		t.Fatalf("%d events failed alone and were parked by the poison queue, want the ship only", n)
	}
	versionOf := func(id ulid.ULID) (v int64) {
		if err := e.db.Owner.QueryRow(e.ctx, `SELECT version FROM order_summary_versions WHERE stream_id = $1`, uuidText(id)).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := versionOf(poisoned); v != pv {
		t.Fatalf("the poisoned order applied up to version %d, want %d (the ship and the delivery parked)", v, pv)
	}
	if v := versionOf(good); v != gv+1 {
		t.Fatalf("the other order applied up to version %d, want %d", v, gv+1)
	}

	// A later batch with the poisoned order's redelivery and the other
	// order's next event: the batch commits, the poisoned order stays parked.
	e.decide(&gst, good, commands.DeliverOrder{}, now)
	if n := e.deliverLikeTheProjector(p, e.readAll(head)); n != 0 {
		t.Fatalf("%d events went to the poison queue in a batch with a parked order", n)
	}
	if v := versionOf(good); v != gv+2 {
		t.Fatalf("the other order applied up to version %d, want %d", v, gv+2)
	}
	letters, err := ListDeadLetters(e.ctx, e.db.Query, DeadLetterFilter{Projection: p.Name(), OrderID: &poisoned})
	if err != nil {
		t.Fatal(err)
	}
	if len(letters) != 2 || letters[0].Version != pv+2 || letters[1].Version != pv+1 || letters[1].EventType != "OrderShipped" {
		t.Fatalf("dead letters %+v, want the ship and the delivery, newest first", letters)
	}
	if counts, err := ParkedCounts(e.ctx, e.db.Query); err != nil || counts[p.Name()] != 2 || counts["status_counts"] != 0 {
		t.Fatalf("parked counts %v %v", counts, err)
	}

	// Replay before the fix: it still fails, and nothing changes.
	unfixed := e.dump(p)
	err = e.inTx(func(tx pgx.Tx) error { _, err := e.rt.Replay(e.ctx, tx, letters[1].ID); return err })
	if !errors.Is(err, ErrStillFails) {
		t.Fatalf("replay before the fix: %v, want ErrStillFails", err)
	}
	diffRows(t, "after a failed replay", unfixed, e.dump(p))

	// The fix, then the replay: both parked events, in version order.
	e.poisonSummaries(false)
	var res Resolved
	if err := e.inTx(func(tx pgx.Tx) (err error) { res, err = e.rt.Replay(e.ctx, tx, letters[0].ID); return err }); err != nil {
		t.Fatal(err)
	}
	if res.Applied != 2 || len(res.Letters) != 2 || res.Letters[0].Version != pv+1 {
		t.Fatalf("replay: %+v", res)
	}
	if v := versionOf(poisoned); v != pv+2 {
		t.Fatalf("after the replay the poisoned order is at version %d, want %d", v, pv+2)
	}
	replayed := e.dump(p)
	for i := range 2 {
		if err := e.inTx(func(tx pgx.Tx) (err error) { res, err = e.rt.Replay(e.ctx, tx, letters[i].ID); return err }); err != nil || res.Already != Replayed || len(res.Letters) != 0 {
			t.Fatalf("second replay of %d: %+v %v, want a no-op", letters[i].ID, res, err)
		}
	}
	diffRows(t, "after replaying twice", replayed, e.dump(p))
	if _, err := e.rt.Rebuild(e.ctx, e.db.Owner, p, nil); err != nil {
		t.Fatal(err)
	}
	diffRows(t, "rebuilt vs live after the replay", replayed, e.dump(p))
	if counts, _ := ParkedCounts(e.ctx, e.db.Query); counts[p.Name()] != 0 {
		t.Fatalf("parked after the replay: %v", counts)
	}
}

func TestDiscardGivesUpADeadLetterOnceAndBadIdsAreRefused(t *testing.T) {
	t.Parallel()
	e := newProjEnv(t)
	p := StatusCounts{}
	q := ulid.Make()
	e.appendRaw(q, eventstore.NoStream(), "FromTheFuture", `{}`)
	if n := e.deliverLikeTheProjector(p, e.readAll(0)); n != 1 {
		t.Fatalf("%d parked, want the undecodable event", n)
	}
	if err := e.rt.Park(e.ctx, p, []byte("this is not an envelope"), "decode envelope: invalid"); err != nil {
		t.Fatal(err)
	}
	letters, err := ListDeadLetters(e.ctx, e.db.Query, DeadLetterFilter{Projection: p.Name()})
	if err != nil || len(letters) != 2 {
		t.Fatalf("letters %+v %v", letters, err)
	}
	notEvent, event := letters[0], letters[1]
	if notEvent.OrderID != nil || event.OrderID == nil || *event.OrderID != q {
		t.Fatalf("letters %+v", letters)
	}
	err = e.inTx(func(tx pgx.Tx) error { _, err := e.rt.Replay(e.ctx, tx, notEvent.ID); return err })
	if !errors.Is(err, ErrNotAnEvent) {
		t.Fatalf("replay of a message that is not an event: %v", err)
	}
	for i, want := range []int{1, 0} {
		var res Resolved
		if err := e.inTx(func(tx pgx.Tx) (err error) { res, err = Discard(e.ctx, tx, event.ID); return err }); err != nil {
			t.Fatal(err)
		}
		if len(res.Letters) != want || (i == 1 && res.Already != Discarded) {
			t.Fatalf("discard %d: %+v", i+1, res)
		}
	}
	for _, f := range []func(tx pgx.Tx) error{
		func(tx pgx.Tx) error { _, err := e.rt.Replay(e.ctx, tx, 1<<40); return err },
		func(tx pgx.Tx) error { _, err := Discard(e.ctx, tx, 1<<40); return err },
	} {
		if err := e.inTx(f); !errors.Is(err, ErrDeadLetterNotFound) {
			t.Fatalf("unknown id: %v, want ErrDeadLetterNotFound", err)
		}
	}
	for _, f := range []DeadLetterFilter{{Limit: -1}, {Limit: MaxDeadLetters + 1}, {State: "gone"}, {Before: -1}} {
		if _, err := ListDeadLetters(context.Background(), e.db.Query, f); !errors.Is(err, ErrInvalidFilter) {
			t.Fatalf("filter %+v: %v", f, err)
		}
	}
}
