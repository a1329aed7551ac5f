package projections

import (
	"context"
	"fmt"
	"math/big"
	"math/bits"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/orderflow/orderflow/order"
)

// SalesDaily is sales per UTC day and currency: orders placed, paid,
// cancelled and refunded, each counted on the day it happened, with their
// amounts. Like CustomerStats, a change contributes a delta row and a row is
// the sum of its deltas, added in SQL live and in memory by the builder.
type SalesDaily struct{}

// Name implements Projection.
func (SalesDaily) Name() string { return "sales_daily" }

// Tables implements Projection.
func (SalesDaily) Tables() []string { return []string{"sales_daily"} }

var salesColumns = []string{
	"day", "currency", "placed_count", "placed_minor", "paid_count", "revenue_minor",
	"cancelled_count", "refunded_count", "refunded_minor",
}

// salesKey is a sales_daily row's key; day is midnight UTC.
type salesKey struct {
	day      time.Time
	currency string
}

// salesCounts is a sales_daily row without its key, or one change's delta.
type salesCounts struct {
	placed, paid, cancelled, refunded   int64
	placedMinor, revenue, refundedMinor minorSum
}

func (a *salesCounts) add(d salesCounts) {
	a.placed += d.placed
	a.paid += d.paid
	a.cancelled += d.cancelled
	a.refunded += d.refunded
	a.placedMinor.add(d.placedMinor)
	a.revenue.add(d.revenue)
	a.refundedMinor.add(d.refundedMinor)
}

func (a salesCounts) row(k salesKey) []any {
	return []any{
		pgtype.Date{Time: k.day, Valid: true}, k.currency, a.placed, a.placedMinor.numeric(), a.paid,
		a.revenue.numeric(), a.cancelled, a.refunded, a.refundedMinor.numeric(),
	}
}

// salesDelta is what c adds to sales_daily, on the UTC day of the event's
// own time, in the order's currency; ok is false for events that are not
// sales.
func salesDelta(c Change) (k salesKey, d salesCounts, ok bool) {
	var at time.Time
	switch e := c.Event.(type) {
	case order.OrderPlaced:
		at, d.placed, d.placedMinor = e.PlacedAt, 1, sumOf(e.TotalMinor)
	case order.PaymentRecorded:
		at, d.paid, d.revenue = e.PaidAt, 1, sumOf(e.AmountMinor)
	case order.OrderCancelled:
		at, d.cancelled = e.CancelledAt, 1
	case order.RefundRecorded:
		at, d.refunded, d.refundedMinor = e.RefundedAt, 1, sumOf(e.AmountMinor)
	default:
		return k, d, false
	}
	y, m, day := at.UTC().Date()
	return salesKey{time.Date(y, m, day, 0, 0, 0, 0, time.UTC), c.After.Currency}, d, true
}

var upsertSales = `INSERT INTO sales_daily (` + join(salesColumns) + `)
	VALUES (` + placeholders(len(salesColumns)) + `)
	ON CONFLICT (day, currency) DO UPDATE SET
	placed_count = sales_daily.placed_count + excluded.placed_count,
	placed_minor = sales_daily.placed_minor + excluded.placed_minor,
	paid_count = sales_daily.paid_count + excluded.paid_count,
	revenue_minor = sales_daily.revenue_minor + excluded.revenue_minor,
	cancelled_count = sales_daily.cancelled_count + excluded.cancelled_count,
	refunded_count = sales_daily.refunded_count + excluded.refunded_count,
	refunded_minor = sales_daily.refunded_minor + excluded.refunded_minor`

// Apply implements Projection. One change touches one row. A gap fill
// applying several changes of one order touches their days in the order of
// the events' times, which is the same for every order as long as one
// order's timestamps do not go backwards across a midnight (clock skew
// between API servers); if they do, PostgreSQL detects the deadlock, and the
// router's retry applies the event again.
func (SalesDaily) Apply(ctx context.Context, tx pgx.Tx, c Change) error {
	k, d, ok := salesDelta(c)
	if !ok {
		return nil
	}
	if _, err := tx.Exec(ctx, upsertSales, d.row(k)...); err != nil {
		return fmt.Errorf("upsert sales_daily: %w", err)
	}
	return nil
}

// NewBuilder implements Projection.
func (SalesDaily) NewBuilder() Builder { return &salesBuilder{rows: map[salesKey]*salesCounts{}} }

// salesBuilder holds one row per day and currency until the end: any order
// may add to any day. Memory is bounded by days × currencies.
type salesBuilder struct {
	rows map[salesKey]*salesCounts
}

func (b *salesBuilder) AddOrder(changes []Change) {
	for _, c := range changes {
		if k, d, ok := salesDelta(c); ok {
			if row := b.rows[k]; row != nil {
				row.add(d)
			} else {
				b.rows[k] = &d
			}
		}
	}
}

func (b *salesBuilder) Flush(ctx context.Context, db Copier, schema string, final bool) error {
	if !final {
		return nil
	}
	rows := make([][]any, 0, len(b.rows))
	for k, d := range b.rows {
		rows = append(rows, d.row(k))
	}
	if _, err := db.CopyFrom(ctx, pgx.Identifier{schema, "sales_daily"}, salesColumns, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("copy sales_daily: %w", err)
	}
	clear(b.rows)
	return nil
}

// minorSum is an exact sum of int64 amounts of minor units: a 128-bit two's
// complement integer (hi·2^64 + lo). The money columns it fills are numeric
// because such sums can exceed int64 (see the migrations); adding in 128
// bits keeps the rebuild's sums exact without a big.Int per event, and
// 2^63 events of 2^63 units each would be needed to overflow it.
type minorSum struct {
	hi int64
	lo uint64
}

func sumOf(x int64) minorSum { return minorSum{hi: x >> 63, lo: uint64(x)} } // #nosec G115 -- 128-bit two's-complement sum: lo is the low 64 bits of x, by design

func (s *minorSum) add(x minorSum) {
	var carry uint64
	s.lo, carry = bits.Add64(s.lo, x.lo, 0)
	s.hi += x.hi + int64(carry) // #nosec G115 -- carry is 0 or 1
}

// numeric is s as a numeric parameter or COPY value, with scale 0 like the
// column's own sums, so live and rebuilt values compare equal as text.
func (s minorSum) numeric() pgtype.Numeric {
	n := big.NewInt(s.hi)
	n.Lsh(n, 64).Add(n, new(big.Int).SetUint64(s.lo))
	return pgtype.Numeric{Int: n, Valid: true}
}
