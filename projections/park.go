package projections

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/orderflow/orderflow/eventstore"
)

// Parking: how a poison event holds back its order, and only its order.
//
// An event a projection gives up on (its poison queue: Park) becomes a
// row of projection_dead_letters in state parked. From then on the order is
// parked for that projection: every batch asks, in its first round trip
// and under the order's versions row lock, which of its orders have parked
// rows above their applied version, and parks their new events beside the
// first one instead of applying them (version n+1 without the parked n
// would be wrong, and gap-filling n from the store would fail again). A
// parked event is settled: it moves the checkpoint, and Kafka's offsets go
// past it; the other orders of the batch are applied as before. Replay
// (deadletters.go) takes the same versions row lock, so a batch sees an
// order either parked or replayed, never half of each.
//
// Parked rows at or below the applied version (a rebuild applied them after
// a fix) no longer park the order; replaying them applies nothing.

// parkedOrders is, per order of a batch, the lowest version parked for the
// projection. Queued after the versions rows' lock: each statement of the
// batch sees what committed before it, so a replay that held the lock has
// committed by then.
const parkedOrders = `SELECT order_id, min(version) FROM projection_dead_letters
	WHERE projection = $1 AND state = 'parked' AND order_id = ANY($2::uuid[])
	GROUP BY order_id ORDER BY order_id`

// insertParked parks events; an event already parked parks nothing new
// (projection_dead_letters_parked).
const insertParked = `INSERT INTO projection_dead_letters (projection, order_id, version, event_type, envelope, reason)
	SELECT $1, o, v, t, e, r FROM unnest($2::uuid[], $3::bigint[], $4::text[], $5::bytea[], $6::text[]) AS p(o, v, t, e, r)
	ON CONFLICT DO NOTHING`

// parkedRows are the events a batch parks, column by column, and the
// parked orders it read: parkedFrom[o] is order o's lowest parked version,
// 0 when it is not parked.
type parkedRows struct {
	parkedFrom []int64
	ids        arr[pgtype.UUID]
	versions   arr[bigint]
	types      arr[text]
	envelopes  [][]byte
	reasons    arr[text]
}

func (p *parkedRows) reset() {
	clear(p.envelopes)
	p.parkedFrom, p.ids, p.versions, p.types = p.parkedFrom[:0], p.ids[:0], p.versions[:0], p.types[:0]
	p.envelopes, p.reasons = p.envelopes[:0], p.reasons[:0]
}

// readParked reads parkedOrders' rows into w.park.parkedFrom, aligned with w.ids.
func (w *scratch) readParked(br pgx.BatchResults) error {
	w.park.parkedFrom = append(w.park.parkedFrom[:0], make([]int64, len(w.ids))...)
	rows, err := br.Query()
	if err != nil {
		return fmt.Errorf("read parked orders: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id pgtype.UUID
		var from int64
		if err := rows.Scan(&id, &from); err != nil {
			return fmt.Errorf("read parked orders: %w", err)
		}
		o, found := slices.BinarySearchFunc(w.ids, id, func(a, b pgtype.UUID) int { return bytes.Compare(a.Bytes[:], b.Bytes[:]) })
		if found {
			w.park.parkedFrom[o] = from
		}
	}
	return rows.Err()
}

// parks reports whether order o, applied up to version cur, is parked.
func (w *scratch) parks(o int, cur int64) bool { return w.park.parkedFrom[o] > cur }

// parkAll parks todo, order o's events above its applied version.
func (w *scratch) parkAll(o int, todo []eventstore.RecordedEvent) error {
	reason := fmt.Sprintf("parked behind version %d, which this projection could not apply", w.park.parkedFrom[o])
	for _, ev := range todo {
		env, err := eventstore.MarshalEnvelope(ev)
		if err != nil {
			return fmt.Errorf("park order %s version %d: %w", ev.StreamID, ev.Version, err)
		}
		p := &w.park
		p.ids = append(p.ids, w.ids[o])
		p.versions, p.types = append(p.versions, bigint(ev.Version)), append(p.types, text(ev.Type))
		p.envelopes, p.reasons = append(p.envelopes, env), append(p.reasons, text(reason))
	}
	return nil
}

// queueParked queues the insert of what the batch parked.
func (w *scratch) queueParked(b *pgx.Batch, projection string) {
	if p := &w.park; len(p.ids) > 0 {
		b.Queue(insertParked, projection, p.ids, p.versions, p.types, p.envelopes, p.reasons)
	}
}

// Park records msg, the value of a Kafka message that projection p gave up
// on, as a dead letter, with why: the poison queue's end for a projection.
// Its order is parked from then on. A value that is not an event envelope
// is kept too, with no order. Parking an event already parked does nothing.
func (r *Runtime) Park(ctx context.Context, p Projection, msg []byte, reason string) error {
	var (
		order   *pgtype.UUID
		version *int64
		typ     string
	)
	if ev, err := eventstore.UnmarshalEnvelope(msg); err == nil {
		order, version, typ = &pgtype.UUID{Bytes: ev.StreamID, Valid: true}, &ev.Version, ev.Type
	}
	_, err := r.pool.Exec(ctx, `INSERT INTO projection_dead_letters (projection, order_id, version, event_type, envelope, reason)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`, p.Name(), order, version, typ, msg, reason)
	if err != nil {
		return fmt.Errorf("projection %s: park a dead letter: %w", p.Name(), err)
	}
	return nil
}
