package projections

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math/big"
	"math/bits"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/orderflow/orderflow/order"
)

// SalesDaily is sales per UTC day and currency: orders placed, paid,
// cancelled and refunded, each counted on the day it happened, with their
// amounts. Like CustomerStats, a change contributes a delta row and a row is
// the sum of its deltas: summed in memory by the builder, then added in SQL
// (live) or copied (rebuild).
type SalesDaily struct{}

// Name implements Projection.
func (SalesDaily) Name() string { return "sales_daily" }

// Tables implements Projection.
func (SalesDaily) Tables() []string { return []string{"sales_daily"} }

var salesColumns = []column{
	{"day", "date"}, {"currency", "text"}, {"placed_count", "bigint"}, {"placed_minor", "numeric"},
	{"paid_count", "bigint"}, {"revenue_minor", "numeric"}, {"cancelled_count", "bigint"},
	{"refunded_count", "bigint"}, {"refunded_minor", "numeric"},
}

// salesKey is a sales_daily row's key; day is midnight UTC.
type salesKey struct {
	day      time.Time
	currency string
}

func (a salesKey) compare(b salesKey) int {
	return cmp.Or(a.day.Compare(b.day), cmp.Compare(a.currency, b.currency))
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

var upsertSales = insertUnnest("sales_daily", salesColumns, `ON CONFLICT (day, currency) DO UPDATE SET
	placed_count = sales_daily.placed_count + excluded.placed_count,
	placed_minor = sales_daily.placed_minor + excluded.placed_minor,
	paid_count = sales_daily.paid_count + excluded.paid_count,
	revenue_minor = sales_daily.revenue_minor + excluded.revenue_minor,
	cancelled_count = sales_daily.cancelled_count + excluded.cancelled_count,
	refunded_count = sales_daily.refunded_count + excluded.refunded_count,
	refunded_minor = sales_daily.refunded_minor + excluded.refunded_minor`)

// NewBuilder implements Projection.
func (SalesDaily) NewBuilder() Builder { return &salesBuilder{rows: map[salesKey]*salesCounts{}} }

// salesBuilder holds one row per day and currency: any order may add to any
// day. A rebuild keeps them until the end; memory is bounded by days ×
// currencies.
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

// salesRows are the builder's rows column by column, sorted by day and
// currency: the lock order of a live batch, the same in every batch, so two
// batches adding to the same days never wait on each other in a cycle.
type salesRows struct {
	day                                 arr[pgtype.Date]
	currency                            arr[text]
	placed, paid, cancelled, refunded   arr[bigint]
	placedMinor, revenue, refundedMinor arr[pgtype.Numeric]
}

func (b *salesBuilder) sorted() *salesRows {
	r := &salesRows{}
	for _, k := range slices.SortedFunc(maps.Keys(b.rows), salesKey.compare) {
		d := b.rows[k]
		r.day = append(r.day, pgtype.Date{Time: k.day, Valid: true})
		r.currency = append(r.currency, text(k.currency))
		r.placed = append(r.placed, bigint(d.placed))
		r.placedMinor = append(r.placedMinor, d.placedMinor.numeric())
		r.paid = append(r.paid, bigint(d.paid))
		r.revenue = append(r.revenue, d.revenue.numeric())
		r.cancelled = append(r.cancelled, bigint(d.cancelled))
		r.refunded = append(r.refunded, bigint(d.refunded))
		r.refundedMinor = append(r.refundedMinor, d.refundedMinor.numeric())
	}
	clear(b.rows)
	return r
}

func (r *salesRows) arrays() []any {
	return []any{r.day, r.currency, r.placed, r.placedMinor, r.paid, r.revenue, r.cancelled, r.refunded, r.refundedMinor}
}

func (r *salesRows) values(i int, buf []any) []any {
	return append(buf[:0], &r.day[i], &r.currency[i], &r.placed[i], &r.placedMinor[i], &r.paid[i], &r.revenue[i],
		&r.cancelled[i], &r.refunded[i], &r.refundedMinor[i])
}

// Queue implements Builder.
func (b *salesBuilder) Queue(batch *pgx.Batch) {
	if r := b.sorted(); len(r.day) > 0 {
		batch.Queue(upsertSales, r.arrays()...)
	}
}

func (b *salesBuilder) Flush(ctx context.Context, db Copier, schema string, final bool) error {
	if !final {
		return nil
	}
	r := b.sorted()
	buf := make([]any, 0, len(salesColumns))
	if _, err := db.CopyFrom(ctx, pgx.Identifier{schema, "sales_daily"}, colNames(salesColumns),
		pgx.CopyFromSlice(len(r.day), func(i int) ([]any, error) { return r.values(i, buf), nil })); err != nil {
		return fmt.Errorf("copy sales_daily: %w", err)
	}
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
