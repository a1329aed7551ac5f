package projections

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/orderflow/orderflow/order"
)

// StatusCounts is the number of orders in each status, for dashboards: six
// rows, one per status, including those no order is in.
type StatusCounts struct{}

// Name implements Projection.
func (StatusCounts) Name() string { return "status_counts" }

// Tables implements Projection.
func (StatusCounts) Tables() []string { return []string{"status_counts"} }

// lifecycle lists the statuses in the order an order moves through them;
// cancelled, reachable from draft, placed and paid, comes last. Every status
// change moves an order to a later status in this list. It is the order in
// which a batch writes the per-status rows (see upsertStatusCounts);
// customer_stats keeps its status columns in it too.
var lifecycle = [...]order.Status{
	order.StatusDraft, order.StatusPlaced, order.StatusPaid,
	order.StatusShipped, order.StatusDelivered, order.StatusCancelled,
}

// statusRank is s's index in lifecycle; an unknown status sorts last.
func statusRank(s order.Status) int {
	if i := slices.Index(lifecycle[:], s); i >= 0 {
		return i
	}
	return len(lifecycle)
}

// statusDelta is a change of one status's order count.
type statusDelta struct {
	status order.Status
	n      int64
}

// statusDeltas is what one change does to the per-status counts, in
// lifecycle order: -1 for the status the order left, +1 for the one it
// entered; nothing when its status did not change (most events). It
// returns the deltas in an array and how many there are, so that the hot
// path allocates nothing.
func statusDeltas(c Change) (d [2]statusDelta, n int) {
	from, to := c.Before.Status, c.After.Status
	if from == to {
		return d, 0
	}
	if from != "" {
		d[n] = statusDelta{from, -1}
		n++
	}
	if to != "" {
		d[n] = statusDelta{to, +1}
		n++
	}
	if n == 2 && statusRank(d[1].status) < statusRank(d[0].status) {
		d[0], d[1] = d[1], d[0]
	}
	return d, n
}

// upsertStatusCounts adds a batch's deltas in one statement. The six rows
// are the hottest in the projections: every status change of every order
// moves two of them. A batch therefore sums its changes' deltas per status
// in memory first and writes each row at most once, holding its lock from
// this statement (the last of the model's) to the commit: one short lock
// per batch instead of one per event. INSERT ... SELECT FROM unnest inserts
// (and, on conflict, updates and locks) the rows in the arrays' order,
// which is lifecycle order in every batch, so two batches (of two projector
// nodes, or a rebuild's catch-up and the live projector) cannot deadlock.
// Statuses whose deltas cancel out in the batch are not written at all.
const upsertStatusCounts = `INSERT INTO status_counts (status, orders)
	SELECT s, n FROM unnest($1::text[], $2::bigint[]) AS d(s, n)
	ON CONFLICT (status) DO UPDATE SET orders = status_counts.orders + excluded.orders`

// NewBuilder implements Projection.
func (StatusCounts) NewBuilder() Builder { return &statusBuilder{} }

// statusBuilder sums the deltas per status, in lifecycle order.
type statusBuilder struct {
	counts [len(lifecycle)]int64
}

func (b *statusBuilder) AddOrder(changes []Change) {
	for _, c := range changes {
		d, n := statusDeltas(c)
		for _, d := range d[:n] {
			if i := statusRank(d.status); i < len(b.counts) {
				b.counts[i] += d.n
			}
		}
	}
}

// Queue implements Builder: the statuses whose count changed.
func (b *statusBuilder) Queue(batch *pgx.Batch) {
	var statuses arr[text]
	var ns arr[bigint]
	for i, n := range b.counts {
		if n != 0 {
			statuses, ns = append(statuses, text(lifecycle[i])), append(ns, bigint(n))
		}
	}
	if len(statuses) > 0 {
		batch.Queue(upsertStatusCounts, statuses, ns)
	}
	*b = statusBuilder{}
}

// Flush writes all six counts once, when final: each is a sum over all
// orders, and a rebuild starts from no rows, so it writes the zeros the
// migration seeds for the live model too.
func (b *statusBuilder) Flush(ctx context.Context, db Copier, schema string, final bool) error {
	if !final {
		return nil
	}
	if _, err := db.CopyFrom(ctx, pgx.Identifier{schema, "status_counts"}, []string{"status", "orders"},
		pgx.CopyFromSlice(len(lifecycle), func(i int) ([]any, error) { return []any{string(lifecycle[i]), b.counts[i]}, nil })); err != nil {
		return fmt.Errorf("copy status_counts: %w", err)
	}
	*b = statusBuilder{}
	return nil
}
