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
// change moves an order to a later status in this list. That makes it the
// lock order of the per-status rows (see Apply); customer_stats keeps its
// status columns in it too.
var lifecycle = []order.Status{
	order.StatusDraft, order.StatusPlaced, order.StatusPaid,
	order.StatusShipped, order.StatusDelivered, order.StatusCancelled,
}

// statusRank is s's index in lifecycle; an unknown status sorts last.
func statusRank(s order.Status) int {
	if i := slices.Index(lifecycle, s); i >= 0 {
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
// entered; nothing when its status did not change (most events).
func statusDeltas(c Change) []statusDelta {
	from, to := c.Before.Status, c.After.Status
	if from == to {
		return nil
	}
	d := make([]statusDelta, 0, 2)
	if from != "" {
		d = append(d, statusDelta{from, -1})
	}
	if to != "" {
		d = append(d, statusDelta{to, +1})
	}
	slices.SortFunc(d, func(a, b statusDelta) int { return statusRank(a.status) - statusRank(b.status) })
	return d
}

// upsertStatusCounts adds the deltas in one statement. INSERT ... SELECT
// FROM unnest inserts (and, on conflict, updates and locks) the rows in the
// arrays' order, so the rows are locked in lifecycle order. The six rows are
// the hottest in the projections (every status change of every order updates
// two of them, from concurrent Kafka partitions), and ordered locking is
// what rules deadlocks out: a transaction that applies one change locks two
// rows in that order; one that applies several changes of one order (a gap
// fill) locks the rows of successive statuses, which only ever move forward
// in lifecycle, so it too takes them in that order. Sorting by status name
// would not do: a gap fill applying draft→placed then placed→paid would hold
// "placed" while wanting "paid", and a single placed→paid elsewhere would
// hold "paid" (alphabetically first) while wanting "placed".
const upsertStatusCounts = `INSERT INTO status_counts (status, orders)
	SELECT s, n FROM unnest($1::text[], $2::bigint[]) AS d(s, n)
	ON CONFLICT (status) DO UPDATE SET orders = status_counts.orders + excluded.orders`

// Apply implements Projection.
func (StatusCounts) Apply(ctx context.Context, tx pgx.Tx, c Change) error {
	deltas := statusDeltas(c)
	if len(deltas) == 0 {
		return nil
	}
	statuses, ns := make([]string, len(deltas)), make([]int64, len(deltas))
	for i, d := range deltas {
		statuses[i], ns[i] = string(d.status), d.n
	}
	if _, err := tx.Exec(ctx, upsertStatusCounts, statuses, ns); err != nil {
		return fmt.Errorf("upsert status counts: %w", err)
	}
	return nil
}

// NewBuilder implements Projection.
func (StatusCounts) NewBuilder() Builder { return newStatusBuilder() }

// statusBuilder sums the same deltas Apply writes, starting from the six
// zero rows the migration seeds, so a rebuild has the live model's rows,
// zeros included.
type statusBuilder struct {
	counts map[order.Status]int64
}

func newStatusBuilder() *statusBuilder {
	b := &statusBuilder{counts: make(map[order.Status]int64, len(lifecycle))}
	for _, s := range lifecycle {
		b.counts[s] = 0
	}
	return b
}

func (b *statusBuilder) AddOrder(changes []Change) {
	for _, c := range changes {
		for _, d := range statusDeltas(c) {
			b.counts[d.status] += d.n
		}
	}
}

// Flush writes the counts once, when final: each is a sum over all orders.
func (b *statusBuilder) Flush(ctx context.Context, db Copier, schema string, final bool) error {
	if !final {
		return nil
	}
	rows := make([][]any, 0, len(b.counts))
	for s, n := range b.counts {
		rows = append(rows, []any{string(s), n})
	}
	if _, err := db.CopyFrom(ctx, pgx.Identifier{schema, "status_counts"}, []string{"status", "orders"}, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("copy status_counts: %w", err)
	}
	*b = *newStatusBuilder()
	return nil
}
