package projections

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/orderflow/orderflow/order"
)

// CustomerStats is the per-customer read model: order counts by current
// status and the span of the customer's orders (customer_stats), and money
// paid and refunded per currency (customer_paid).
//
// Live and rebuild share one idea: a change contributes a delta row, and a
// table row is the sum of its deltas. The builder adds the deltas of its
// changes in memory; a live batch then adds each sum to its row in SQL, a
// rebuild copies the sums. The SQL sum and the Go sum are the same
// operations (+, least, greatest), and a row exists in both paths exactly
// when some change produced a delta for its key, so the rebuilt tables equal
// the live ones.
type CustomerStats struct{}

// Name implements Projection.
func (CustomerStats) Name() string { return "customer_stats" }

// Tables implements Projection, in the order Queue writes them.
func (CustomerStats) Tables() []string { return []string{"customer_stats", "customer_paid"} }

// The status columns follow lifecycle.
var customerStatsColumns = []column{
	{"customer_id", "text"}, {"orders_total", "bigint"}, {"draft", "bigint"}, {"placed", "bigint"},
	{"paid", "bigint"}, {"shipped", "bigint"}, {"delivered", "bigint"}, {"cancelled", "bigint"},
	{"first_order_at", "timestamptz"}, {"last_order_at", "timestamptz"},
}

var customerPaidColumns = []column{
	{"customer_id", "text"}, {"currency", "text"}, {"paid_minor", "numeric"}, {"refunded_minor", "numeric"},
}

// customerCounts is a customer_stats row without its key, or one change's
// delta to it.
type customerCounts struct {
	orders      int64
	byStatus    [len(lifecycle)]int64
	first, last time.Time
}

func (a *customerCounts) add(d customerCounts) {
	a.orders += d.orders
	for i, n := range d.byStatus {
		a.byStatus[i] += n
	}
	if d.first.Before(a.first) {
		a.first = d.first
	}
	if d.last.After(a.last) {
		a.last = d.last
	}
}

// customerDelta is what c adds to its customer's row: an order created, or
// moved from one status column to another. Its times are the order's
// created_at, which least/greatest absorb on every later change, so a
// status change never needs to read the row. ok is false for changes that
// leave the row as it is.
func customerDelta(c Change) (d customerCounts, ok bool) {
	deltas, n := statusDeltas(c)
	if n == 0 || c.After.CustomerID == "" {
		return d, false
	}
	if c.Before.Status == "" {
		d.orders = 1
	}
	for _, s := range deltas[:n] {
		if i := statusRank(s.status); i < len(d.byStatus) {
			d.byStatus[i] += s.n
		}
	}
	d.first, d.last = c.After.CreatedAt, c.After.CreatedAt
	return d, true
}

// paidKey is a customer_paid row's key.
type paidKey struct{ customer, currency string }

// paidDelta is what c adds to customer_paid: a payment or a refund, in the
// order's currency (the decisions make a payment's and a refund's currency
// the order's, and one rule for every money row keeps them comparable).
func paidDelta(c Change) (k paidKey, paid, refunded minorSum, ok bool) {
	k = paidKey{c.After.CustomerID, c.After.Currency}
	switch e := c.Event.(type) {
	case order.PaymentRecorded:
		return k, sumOf(e.AmountMinor), minorSum{}, true
	case order.RefundRecorded:
		return k, minorSum{}, sumOf(e.AmountMinor), true
	}
	return k, paid, refunded, false
}

var upsertCustomerStats = insertUnnest("customer_stats", customerStatsColumns, `ON CONFLICT (customer_id) DO UPDATE SET
	orders_total = customer_stats.orders_total + excluded.orders_total,
	draft = customer_stats.draft + excluded.draft,
	placed = customer_stats.placed + excluded.placed,
	paid = customer_stats.paid + excluded.paid,
	shipped = customer_stats.shipped + excluded.shipped,
	delivered = customer_stats.delivered + excluded.delivered,
	cancelled = customer_stats.cancelled + excluded.cancelled,
	first_order_at = least(customer_stats.first_order_at, excluded.first_order_at),
	last_order_at = greatest(customer_stats.last_order_at, excluded.last_order_at)`)

var upsertCustomerPaid = insertUnnest("customer_paid", customerPaidColumns, `ON CONFLICT (customer_id, currency) DO UPDATE SET
	paid_minor = customer_paid.paid_minor + excluded.paid_minor,
	refunded_minor = customer_paid.refunded_minor + excluded.refunded_minor`)

// NewBuilder implements Projection.
func (CustomerStats) NewBuilder() Builder {
	return &customerBuilder{stats: map[string]*customerCounts{}, paid: map[paidKey]*[2]minorSum{}}
}

// customerBuilder holds one row per customer and per customer and currency.
// A rebuild keeps them until the end: a customer's orders are spread over
// the whole scan, which goes by order id. Memory is bounded by the number of
// customers, not orders.
type customerBuilder struct {
	stats map[string]*customerCounts
	paid  map[paidKey]*[2]minorSum
}

func (b *customerBuilder) AddOrder(changes []Change) {
	for _, c := range changes {
		if d, ok := customerDelta(c); ok {
			if row := b.stats[c.After.CustomerID]; row != nil {
				row.add(d)
			} else {
				b.stats[c.After.CustomerID] = &d
			}
		}
		if k, paid, refunded, ok := paidDelta(c); ok {
			row := b.paid[k]
			if row == nil {
				row = new([2]minorSum)
				b.paid[k] = row
			}
			row[0].add(paid)
			row[1].add(refunded)
		}
	}
}

// customerRows are the builder's rows column by column, keys sorted: the
// live batch's lock order of the shared rows (customer_stats by customer,
// then customer_paid by customer and currency, in every batch, so that two
// batches never wait on each other in a cycle).
type customerRows struct {
	id           arr[text]
	orders       arr[bigint]
	byStatus     [len(lifecycle)]arr[bigint]
	first, last  arr[tstz]
	paidID, cur  arr[text]
	paid, refund arr[pgtype.Numeric]
}

func (b *customerBuilder) rows() *customerRows {
	r := &customerRows{}
	for _, id := range slices.Sorted(maps.Keys(b.stats)) {
		c := b.stats[id]
		r.id = append(r.id, text(id))
		r.orders = append(r.orders, bigint(c.orders))
		for i, n := range c.byStatus {
			r.byStatus[i] = append(r.byStatus[i], bigint(n))
		}
		r.first, r.last = append(r.first, tstz(c.first)), append(r.last, tstz(c.last))
	}
	keys := slices.SortedFunc(maps.Keys(b.paid), func(a, b paidKey) int {
		return cmp.Or(cmp.Compare(a.customer, b.customer), cmp.Compare(a.currency, b.currency))
	})
	for _, k := range keys {
		m := b.paid[k]
		r.paidID, r.cur = append(r.paidID, text(k.customer)), append(r.cur, text(k.currency))
		r.paid, r.refund = append(r.paid, m[0].numeric()), append(r.refund, m[1].numeric())
	}
	clear(b.stats)
	clear(b.paid)
	return r
}

func (r *customerRows) statsArrays() []any {
	a := []any{r.id, r.orders}
	for _, col := range r.byStatus {
		a = append(a, col)
	}
	return append(a, r.first, r.last)
}

func (r *customerRows) statsValues(i int, buf []any) []any {
	buf = append(buf[:0], &r.id[i], &r.orders[i])
	for _, col := range r.byStatus {
		buf = append(buf, &col[i])
	}
	return append(buf, &r.first[i], &r.last[i])
}

// Queue implements Builder.
func (b *customerBuilder) Queue(batch *pgx.Batch) {
	r := b.rows()
	if len(r.id) > 0 {
		batch.Queue(upsertCustomerStats, r.statsArrays()...)
	}
	if len(r.paidID) > 0 {
		batch.Queue(upsertCustomerPaid, r.paidID, r.cur, r.paid, r.refund)
	}
}

func (b *customerBuilder) Flush(ctx context.Context, db Copier, schema string, final bool) error {
	if !final {
		return nil
	}
	r := b.rows()
	buf := make([]any, 0, len(customerStatsColumns))
	if _, err := db.CopyFrom(ctx, pgx.Identifier{schema, "customer_stats"}, colNames(customerStatsColumns),
		pgx.CopyFromSlice(len(r.id), func(i int) ([]any, error) { return r.statsValues(i, buf), nil })); err != nil {
		return fmt.Errorf("copy customer_stats: %w", err)
	}
	if _, err := db.CopyFrom(ctx, pgx.Identifier{schema, "customer_paid"}, colNames(customerPaidColumns),
		pgx.CopyFromSlice(len(r.paidID), func(i int) ([]any, error) {
			return append(buf[:0], &r.paidID[i], &r.cur[i], &r.paid[i], &r.refund[i]), nil
		})); err != nil {
		return fmt.Errorf("copy customer_paid: %w", err)
	}
	return nil
}
