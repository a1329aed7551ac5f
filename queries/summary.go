package queries

import (
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/order"
)

// Summary is an order as the list shows it. Transition times and the
// optional texts are omitted while null, so a client tests presence.
type Summary struct {
	OrderID          string     `json:"order_id"`
	CustomerID       string     `json:"customer_id"`
	Currency         string     `json:"currency"`
	Status           string     `json:"status"`
	TotalMinor       int64      `json:"total_minor"`
	PaidMinor        int64      `json:"paid_minor"`
	RefundedMinor    int64      `json:"refunded_minor"`
	LineCount        int        `json:"line_count"`
	ItemQuantity     int64      `json:"item_quantity"`
	Version          int64      `json:"version"`
	CreatedAt        time.Time  `json:"created_at"`
	UpdatedAt        time.Time  `json:"updated_at"`
	PlacedAt         *time.Time `json:"placed_at,omitempty"`
	PaidAt           *time.Time `json:"paid_at,omitempty"`
	ShippedAt        *time.Time `json:"shipped_at,omitempty"`
	DeliveredAt      *time.Time `json:"delivered_at,omitempty"`
	CancelledAt      *time.Time `json:"cancelled_at,omitempty"`
	RefundedAt       *time.Time `json:"refunded_at,omitempty"`
	Carrier          *string    `json:"carrier,omitempty"`
	TrackingNumber   *string    `json:"tracking_number,omitempty"`
	PaymentReference *string    `json:"payment_reference,omitempty"`
	CancelReason     *string    `json:"cancel_reason,omitempty"`
	// Personal data, opened (personal.go): order.Erased once erased.
	Email           *string `json:"email,omitempty"`
	ShippingAddress *string `json:"shipping_address,omitempty"`
}

// Order is one order with its lines: GET /v1/orders/{id}.
type Order struct {
	Summary
	Lines []Line `json:"lines"`
}

// Line is one line of an order, numbered from 1 in the order its SKU was
// first added.
type Line struct {
	LineNo         int    `json:"line_no"`
	SKU            string `json:"sku"`
	Name           string `json:"name"`
	Quantity       int64  `json:"quantity"`
	UnitPriceMinor int64  `json:"unit_price_minor"`
	LineTotalMinor int64  `json:"line_total_minor"`
}

// summarySelect lists order_summaries' columns in Summary's order, prefixed
// with s. so it can be joined.
const summarySelect = `s.order_id, s.customer_id, s.currency, s.status, s.total_minor, s.paid_minor,
	s.refunded_minor, s.line_count, s.item_quantity, s.version, s.created_at, s.updated_at, s.placed_at,
	s.paid_at, s.shipped_at, s.delivered_at, s.cancelled_at, s.refunded_at, s.carrier, s.tracking_number,
	s.payment_reference, s.cancel_reason, s.email, s.shipping_address`

// summaryDest returns scan destinations for summarySelect into s, and a
// function to call after the scan.
func summaryDest(s *Summary) ([]any, func()) {
	var id pgtype.UUID
	dest := []any{&id, &s.CustomerID, &s.Currency, &s.Status, &s.TotalMinor, &s.PaidMinor,
		&s.RefundedMinor, &s.LineCount, &s.ItemQuantity, &s.Version, &s.CreatedAt, &s.UpdatedAt, &s.PlacedAt,
		&s.PaidAt, &s.ShippedAt, &s.DeliveredAt, &s.CancelledAt, &s.RefundedAt, &s.Carrier, &s.TrackingNumber,
		&s.PaymentReference, &s.CancelReason, &s.Email, &s.ShippingAddress}
	return dest, func() {
		s.OrderID = ulid.ULID(id.Bytes).String()
		s.CreatedAt, s.UpdatedAt = s.CreatedAt.UTC(), s.UpdatedAt.UTC()
		for _, t := range []**time.Time{&s.PlacedAt, &s.PaidAt, &s.ShippedAt, &s.DeliveredAt, &s.CancelledAt, &s.RefundedAt} {
			if *t != nil {
				u := (*t).UTC()
				*t = &u
			}
		}
	}
}

func scanSummary(row pgx.Row) (Summary, error) {
	var s Summary
	dest, done := summaryDest(&s)
	if err := row.Scan(dest...); err != nil {
		return Summary{}, err
	}
	done()
	return s, nil
}

// orderFromState maps a folded state the way the order_summary projection
// maps it to rows, so that ?as_of at the current version and the read model
// return the same document under the same ETag. Times are truncated to the
// microsecond because that is what PostgreSQL keeps (pgx truncates).
func orderFromState(st order.State, updatedAt time.Time) Order {
	us := func(t time.Time) time.Time { return t.Truncate(time.Microsecond).UTC() }
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		u := us(t)
		return &u
	}
	text := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	o := Order{Summary: Summary{
		OrderID: st.ID.String(), CustomerID: st.CustomerID, Currency: st.Currency, Status: string(st.Status),
		TotalMinor: st.TotalMinor, PaidMinor: st.PaidMinor, RefundedMinor: st.RefundedMinor,
		LineCount: len(st.Items), Version: st.Version, CreatedAt: us(st.CreatedAt), UpdatedAt: us(updatedAt),
		PlacedAt: opt(st.PlacedAt), PaidAt: opt(st.PaidAt), ShippedAt: opt(st.ShippedAt),
		DeliveredAt: opt(st.DeliveredAt), CancelledAt: opt(st.CancelledAt), RefundedAt: opt(st.RefundedAt),
		Carrier: text(st.Carrier), TrackingNumber: text(st.TrackingNumber),
		PaymentReference: text(st.PaymentReference), CancelReason: text(st.CancelReason),
		Email: text(st.Email), ShippingAddress: text(st.ShippingAddress),
	}, Lines: make([]Line, len(st.Items))}
	for i, l := range st.Items {
		o.ItemQuantity += l.Quantity
		o.Lines[i] = newLine(i+1, l.SKU, l.Name, l.Quantity, l.UnitPriceMinor)
	}
	return o
}

func newLine(no int, sku, name string, qty, unit int64) Line {
	total, err := order.LineTotal(qty, unit)
	if err != nil {
		// Decisions refuse lines whose total overflows; saturate like the
		// fold does rather than show a wrapped negative amount.
		total = math.MaxInt64
	}
	return Line{LineNo: no, SKU: sku, Name: name, Quantity: qty, UnitPriceMinor: unit, LineTotalMinor: total}
}
