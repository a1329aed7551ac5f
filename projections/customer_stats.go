package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orderflow/orderflow/order"
)

// CustomerStats is the per-customer read model: order counts by current
// status and the span of the customer's orders (customer_stats), and money
// paid and refunded per currency (customer_paid).
//
// Live and rebuild share one idea: a change contributes a delta row, and a
// table row is the sum of its deltas. Apply upserts each delta, adding in
// SQL; the builder adds the same deltas in memory and copies the sums. The
// SQL sum and the Go sum are the same operations (+, least, greatest), and a
// row exists in both paths exactly when some change produced a delta for its
// key, so the rebuilt tables equal the live ones.
type CustomerStats struct{}

// Name implements Projection.
func (CustomerStats) Name() string { return "customer_stats" }

// Tables implements Projection, in the order Apply writes them.
func (CustomerStats) Tables() []string { return []string{"customer_stats", "customer_paid"} }

// The status columns follow lifecycle.
var customerStatsColumns = []string{
	"customer_id", "orders_total", "draft", "placed", "paid", "shipped", "delivered", "cancelled",
	"first_order_at", "last_order_at",
}

var customerPaidColumns = []string{"customer_id", "currency", "paid_minor", "refunded_minor"}

// customerCounts is a customer_stats row without its key, or one change's
// delta to it.
type customerCounts struct {
	orders      int64
	byStatus    [6]int64 // lifecycle order
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

func (a customerCounts) row(customer string) []any {
	r := []any{customer, a.orders}
	for _, n := range a.byStatus {
		r = append(r, n)
	}
	return append(r, a.first, a.last)
}

// customerDelta is what c adds to its customer's row: an order created, or
// moved from one status column to another. Its times are the order's
// created_at, which least/greatest absorb on every later change, so a
// status change never needs to read the row. ok is false for changes that
// leave the row as it is.
func customerDelta(c Change) (d customerCounts, ok bool) {
	deltas := statusDeltas(c)
	if len(deltas) == 0 || c.After.CustomerID == "" {
		return d, false
	}
	if c.Before.Status == "" {
		d.orders = 1
	}
	for _, s := range deltas {
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

var upsertCustomerStats = `INSERT INTO customer_stats (` + join(customerStatsColumns) + `)
	VALUES (` + placeholders(len(customerStatsColumns)) + `)
	ON CONFLICT (customer_id) DO UPDATE SET
	orders_total = customer_stats.orders_total + excluded.orders_total,
	draft = customer_stats.draft + excluded.draft,
	placed = customer_stats.placed + excluded.placed,
	paid = customer_stats.paid + excluded.paid,
	shipped = customer_stats.shipped + excluded.shipped,
	delivered = customer_stats.delivered + excluded.delivered,
	cancelled = customer_stats.cancelled + excluded.cancelled,
	first_order_at = least(customer_stats.first_order_at, excluded.first_order_at),
	last_order_at = greatest(customer_stats.last_order_at, excluded.last_order_at)`

const upsertCustomerPaid = `INSERT INTO customer_paid (customer_id, currency, paid_minor, refunded_minor)
	VALUES ($1, $2, $3, $4)
	ON CONFLICT (customer_id, currency) DO UPDATE SET
	paid_minor = customer_paid.paid_minor + excluded.paid_minor,
	refunded_minor = customer_paid.refunded_minor + excluded.refunded_minor`

// Apply implements Projection. A transaction touches one customer's
// customer_stats row and then (for money) one customer_paid row of that
// customer, in that order, however many changes of the order it applies; so
// two transactions for orders of one customer take the rows in the same
// order and cannot deadlock.
func (CustomerStats) Apply(ctx context.Context, tx pgx.Tx, c Change) error {
	if d, ok := customerDelta(c); ok {
		if _, err := tx.Exec(ctx, upsertCustomerStats, d.row(c.After.CustomerID)...); err != nil {
			return fmt.Errorf("upsert customer_stats: %w", err)
		}
	}
	if k, paid, refunded, ok := paidDelta(c); ok {
		if _, err := tx.Exec(ctx, upsertCustomerPaid, k.customer, k.currency, paid.numeric(), refunded.numeric()); err != nil {
			return fmt.Errorf("upsert customer_paid: %w", err)
		}
	}
	return nil
}

// NewBuilder implements Projection.
func (CustomerStats) NewBuilder() Builder {
	return &customerBuilder{stats: map[string]*customerCounts{}, paid: map[paidKey]*[2]minorSum{}}
}

// customerBuilder holds one row per customer and per customer and currency
// until the end: a customer's orders are spread over the whole scan, which
// goes by order id. Memory is bounded by the number of customers, not orders.
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

func (b *customerBuilder) Flush(ctx context.Context, db Copier, schema string, final bool) error {
	if !final {
		return nil
	}
	stats := make([][]any, 0, len(b.stats))
	for id, c := range b.stats {
		stats = append(stats, c.row(id))
	}
	if _, err := db.CopyFrom(ctx, pgx.Identifier{schema, "customer_stats"}, customerStatsColumns, pgx.CopyFromRows(stats)); err != nil {
		return fmt.Errorf("copy customer_stats: %w", err)
	}
	paid := make([][]any, 0, len(b.paid))
	for k, m := range b.paid {
		paid = append(paid, []any{k.customer, k.currency, m[0].numeric(), m[1].numeric()})
	}
	if _, err := db.CopyFrom(ctx, pgx.Identifier{schema, "customer_paid"}, customerPaidColumns, pgx.CopyFromRows(paid)); err != nil {
		return fmt.Errorf("copy customer_paid: %w", err)
	}
	clear(b.stats)
	clear(b.paid)
	return nil
}
