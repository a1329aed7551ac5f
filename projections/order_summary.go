package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/orderflow/orderflow/order"
)

// OrderSummary is the order summary and lines read model: one row per order
// with its status, totals and the time of each transition, and its lines.
type OrderSummary struct{}

// Name implements Projection.
func (OrderSummary) Name() string { return "order_summary" }

// Tables implements Projection.
func (OrderSummary) Tables() []string { return []string{"order_summaries", "order_lines"} }

// summaryColumns are order_summaries' columns in the order of summaryRows'
// fields (arrays and values follow it).
var summaryColumns = []column{
	{"order_id", "uuid"}, {"customer_id", "text"}, {"currency", "text"}, {"status", "text"},
	{"total_minor", "bigint"}, {"paid_minor", "bigint"}, {"refunded_minor", "bigint"},
	{"line_count", "integer"}, {"item_quantity", "bigint"}, {"version", "bigint"},
	{"created_at", "timestamptz"}, {"updated_at", "timestamptz"}, {"placed_at", "timestamptz"},
	{"paid_at", "timestamptz"}, {"shipped_at", "timestamptz"}, {"delivered_at", "timestamptz"},
	{"cancelled_at", "timestamptz"}, {"refunded_at", "timestamptz"}, {"carrier", "text"},
	{"tracking_number", "text"}, {"payment_reference", "text"}, {"cancel_reason", "text"},
	{"email", "text"}, {"shipping_address", "text"},
}

// summaryRows holds order_summaries rows column by column: a live batch
// passes each column as one array, a rebuild copies them row by row. add is
// the one mapping from an order's state to its row, which is half of why a
// rebuild equals the live model.
type summaryRows struct {
	id                                                 arr[pgtype.UUID]
	customer, currency, status                         arr[text]
	total, paid, refunded                              arr[bigint]
	lineCount                                          arr[integer]
	quantity, version                                  arr[bigint]
	created, updated                                   arr[tstz]
	placed, paidAt, shipped, delivered, cancelled, ref arr[pgtype.Timestamptz]
	carrier, tracking, payment, cancelReason           arr[pgtype.Text]
	// Personal data, sealed as the events hold it (internal/pii): the
	// query API opens it, a rebuild copies the same ciphertext.
	email, address arr[pgtype.Text]
}

func (r *summaryRows) add(s order.State, updatedAt time.Time) {
	var qty int64
	for _, l := range s.Items {
		qty += l.Quantity
	}
	r.id = append(r.id, pgtype.UUID{Bytes: s.ID, Valid: true})
	r.customer = append(r.customer, text(s.CustomerID))
	r.currency = append(r.currency, text(s.Currency))
	r.status = append(r.status, text(s.Status))
	r.total = append(r.total, bigint(s.TotalMinor))
	r.paid = append(r.paid, bigint(s.PaidMinor))
	r.refunded = append(r.refunded, bigint(s.RefundedMinor))
	r.lineCount = append(r.lineCount, integer(len(s.Items))) // #nosec G115 -- at most order.MaxItems lines
	r.quantity = append(r.quantity, bigint(qty))
	r.version = append(r.version, bigint(s.Version))
	r.created = append(r.created, tstz(s.CreatedAt))
	r.updated = append(r.updated, tstz(updatedAt))
	r.placed = append(r.placed, optTime(s.PlacedAt))
	r.paidAt = append(r.paidAt, optTime(s.PaidAt))
	r.shipped = append(r.shipped, optTime(s.ShippedAt))
	r.delivered = append(r.delivered, optTime(s.DeliveredAt))
	r.cancelled = append(r.cancelled, optTime(s.CancelledAt))
	r.ref = append(r.ref, optTime(s.RefundedAt))
	r.carrier = append(r.carrier, optText(s.Carrier))
	r.tracking = append(r.tracking, optText(s.TrackingNumber))
	r.payment = append(r.payment, optText(s.PaymentReference))
	r.cancelReason = append(r.cancelReason, optText(s.CancelReason))
	r.email = append(r.email, optText(s.Email))
	r.address = append(r.address, optText(s.ShippingAddress))
}

func (r *summaryRows) arrays() []any {
	return []any{
		r.id, r.customer, r.currency, r.status, r.total, r.paid, r.refunded, r.lineCount, r.quantity,
		r.version, r.created, r.updated, r.placed, r.paidAt, r.shipped, r.delivered, r.cancelled, r.ref,
		r.carrier, r.tracking, r.payment, r.cancelReason, r.email, r.address,
	}
}

func (r *summaryRows) values(i int, buf []any) []any {
	return append(buf[:0],
		&r.id[i], &r.customer[i], &r.currency[i], &r.status[i], &r.total[i], &r.paid[i], &r.refunded[i],
		&r.lineCount[i], &r.quantity[i], &r.version[i], &r.created[i], &r.updated[i], &r.placed[i],
		&r.paidAt[i], &r.shipped[i], &r.delivered[i], &r.cancelled[i], &r.ref[i], &r.carrier[i],
		&r.tracking[i], &r.payment[i], &r.cancelReason[i], &r.email[i], &r.address[i])
}

var lineColumns = []column{
	{"order_id", "uuid"}, {"line_no", "integer"}, {"sku", "text"}, {"name", "text"},
	{"quantity", "bigint"}, {"unit_price_minor", "bigint"},
}

// lineRows holds order_lines rows column by column, like summaryRows.
type lineRows struct {
	id              arr[pgtype.UUID]
	no              arr[integer]
	sku, name       arr[text]
	quantity, price arr[bigint]
}

// add appends every line of s, numbered from 1 in the order their SKU was
// first added (a removal renumbers the later lines).
func (r *lineRows) add(id pgtype.UUID, s order.State) {
	for i, l := range s.Items {
		r.id = append(r.id, id)
		r.no = append(r.no, integer(i+1))
		r.sku = append(r.sku, text(l.SKU))
		r.name = append(r.name, text(l.Name))
		r.quantity = append(r.quantity, bigint(l.Quantity))
		r.price = append(r.price, bigint(l.UnitPriceMinor))
	}
}

func (r *lineRows) arrays() []any { return []any{r.id, r.no, r.sku, r.name, r.quantity, r.price} }

func (r *lineRows) values(i int, buf []any) []any {
	return append(buf[:0], &r.id[i], &r.no[i], &r.sku[i], &r.name[i], &r.quantity[i], &r.price[i])
}

var (
	upsertSummaries = insertUnnest("order_summaries", summaryColumns,
		"ON CONFLICT (order_id) DO UPDATE SET "+setExcluded(summaryColumns, 1))
	// A batch rewrites the lines of the orders whose items changed: delete
	// them, then insert the final ones. Only the batch holding the order's
	// versions row writes its lines, so nothing else contends for them.
	deleteLines = `DELETE FROM order_lines WHERE order_id = ANY($1::uuid[])`
	insertLines = insertUnnest("order_lines", lineColumns, "")
)

// NewBuilder implements Projection.
func (OrderSummary) NewBuilder() Builder { return &summaryBuilder{} }

// summaryBuilder keeps each added order's last state as its row, and the
// lines of the orders whose items changed.
type summaryBuilder struct {
	summaries summaryRows
	changed   arr[pgtype.UUID] // orders whose lines are rewritten
	lines     lineRows
}

func (b *summaryBuilder) AddOrder(changes []Change) {
	last := changes[len(changes)-1]
	if !last.After.Exists() || last.After.ID == ([16]byte{}) {
		return // an event before OrderCreated cannot happen; nothing to show
	}
	b.summaries.add(last.After, last.Recorded.RecordedAt)
	for _, c := range changes {
		switch c.Event.(type) {
		case order.ItemAdded, order.ItemRemoved:
			id := pgtype.UUID{Bytes: last.After.ID, Valid: true}
			b.changed = append(b.changed, id)
			b.lines.add(id, last.After)
			return
		}
	}
}

// Queue implements Builder.
func (b *summaryBuilder) Queue(batch *pgx.Batch) {
	if len(b.summaries.id) > 0 {
		batch.Queue(upsertSummaries, b.summaries.arrays()...)
	}
	if len(b.changed) > 0 {
		batch.Queue(deleteLines, b.changed)
	}
	if len(b.lines.id) > 0 {
		batch.Queue(insertLines, b.lines.arrays()...)
	}
	*b = summaryBuilder{}
}

func (b *summaryBuilder) Flush(ctx context.Context, tx Copier, schema string, _ bool) error {
	buf := make([]any, 0, len(summaryColumns))
	s, l := &b.summaries, &b.lines
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{schema, "order_summaries"}, colNames(summaryColumns),
		pgx.CopyFromSlice(len(s.id), func(i int) ([]any, error) { return s.values(i, buf), nil })); err != nil {
		return fmt.Errorf("copy order_summaries: %w", err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{schema, "order_lines"}, colNames(lineColumns),
		pgx.CopyFromSlice(len(l.id), func(i int) ([]any, error) { return l.values(i, buf), nil })); err != nil {
		return fmt.Errorf("copy order_lines: %w", err)
	}
	*b = summaryBuilder{}
	return nil
}
