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

var summaryColumns = []string{
	"order_id", "customer_id", "currency", "status", "total_minor", "paid_minor", "refunded_minor",
	"line_count", "item_quantity", "version", "created_at", "updated_at", "placed_at", "paid_at",
	"shipped_at", "delivered_at", "cancelled_at", "refunded_at", "carrier", "tracking_number",
	"payment_reference", "cancel_reason",
}

var lineColumns = []string{"order_id", "line_no", "sku", "name", "quantity", "unit_price_minor"}

// summaryRow maps a state to its row; live upserts and rebuild COPY share it,
// which is half of why a rebuild equals the live model.
func summaryRow(s order.State, updatedAt time.Time) []any {
	var qty int64
	for _, l := range s.Items {
		qty += l.Quantity
	}
	return []any{
		pgtype.UUID{Bytes: s.ID, Valid: true}, s.CustomerID, s.Currency, string(s.Status), s.TotalMinor,
		s.PaidMinor, s.RefundedMinor, len(s.Items), qty, s.Version, s.CreatedAt, updatedAt,
		optTime(s.PlacedAt), optTime(s.PaidAt), optTime(s.ShippedAt), optTime(s.DeliveredAt),
		optTime(s.CancelledAt), optTime(s.RefundedAt), optText(s.Carrier), optText(s.TrackingNumber),
		optText(s.PaymentReference), optText(s.CancelReason),
	}
}

func lineRow(id pgtype.UUID, i int, l order.Line) []any {
	return []any{id, i + 1, l.SKU, l.Name, l.Quantity, l.UnitPriceMinor}
}

var upsertSummary = func() string {
	set := ""
	for _, c := range summaryColumns[1:] {
		set += fmt.Sprintf(", %s = excluded.%s", c, c)
	}
	return `INSERT INTO order_summaries (` + join(summaryColumns) + `) VALUES (` + placeholders(len(summaryColumns)) +
		`) ON CONFLICT (order_id) DO UPDATE SET ` + set[2:]
}()

// Apply implements Projection.
func (OrderSummary) Apply(ctx context.Context, tx pgx.Tx, c Change) error {
	if !c.After.Exists() || c.After.ID == ([16]byte{}) {
		return nil // an event before OrderCreated cannot happen; nothing to show
	}
	if _, err := tx.Exec(ctx, upsertSummary, summaryRow(c.After, c.Recorded.RecordedAt)...); err != nil {
		return fmt.Errorf("upsert summary: %w", err)
	}
	id := pgtype.UUID{Bytes: c.After.ID, Valid: true}
	switch e := c.Event.(type) {
	case order.ItemAdded:
		// Lines keep their first-added position: only the added line changes.
		for i, l := range c.After.Items {
			if l.SKU == e.SKU {
				_, err := tx.Exec(ctx, `INSERT INTO order_lines (`+join(lineColumns)+`) VALUES ($1, $2, $3, $4, $5, $6)
					ON CONFLICT (order_id, line_no) DO UPDATE SET sku = excluded.sku, name = excluded.name,
					quantity = excluded.quantity, unit_price_minor = excluded.unit_price_minor`, lineRow(id, i, l)...)
				return err
			}
		}
	case order.ItemRemoved:
		// Removal shifts the later lines up: renumber by rewriting them.
		if _, err := tx.Exec(ctx, `DELETE FROM order_lines WHERE order_id = $1`, id); err != nil {
			return err
		}
		rows := make([][]any, len(c.After.Items))
		for i, l := range c.After.Items {
			rows[i] = lineRow(id, i, l)
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"order_lines"}, lineColumns, pgx.CopyFromRows(rows))
		return err
	}
	return nil
}

// NewBuilder implements Projection.
func (OrderSummary) NewBuilder() Builder { return &summaryBuilder{} }

type summaryBuilder struct {
	summaries, lines [][]any
}

func (b *summaryBuilder) AddOrder(changes []Change) {
	last := changes[len(changes)-1]
	if !last.After.Exists() || last.After.ID == ([16]byte{}) {
		return
	}
	b.summaries = append(b.summaries, summaryRow(last.After, last.Recorded.RecordedAt))
	id := pgtype.UUID{Bytes: last.After.ID, Valid: true}
	for i, l := range last.After.Items {
		b.lines = append(b.lines, lineRow(id, i, l))
	}
}

func (b *summaryBuilder) Flush(ctx context.Context, tx Copier, schema string, _ bool) error {
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{schema, "order_summaries"}, summaryColumns, pgx.CopyFromRows(b.summaries)); err != nil {
		return fmt.Errorf("copy order_summaries: %w", err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{schema, "order_lines"}, lineColumns, pgx.CopyFromRows(b.lines)); err != nil {
		return fmt.Errorf("copy order_lines: %w", err)
	}
	b.summaries, b.lines = b.summaries[:0], b.lines[:0]
	return nil
}
