package queries

import (
	"fmt"
	"net/http"
	"time"

	"github.com/orderflow/orderflow/internal/httpx"
	"github.com/orderflow/orderflow/order"
)

// StatusCounts has one field per status, all always present.
type StatusCounts struct {
	Draft     int64 `json:"draft"`
	Placed    int64 `json:"placed"`
	Paid      int64 `json:"paid"`
	Shipped   int64 `json:"shipped"`
	Delivered int64 `json:"delivered"`
	Cancelled int64 `json:"cancelled"`
}

func (c *StatusCounts) field(s order.Status) *int64 {
	switch s {
	case order.StatusDraft:
		return &c.Draft
	case order.StatusPlaced:
		return &c.Placed
	case order.StatusPaid:
		return &c.Paid
	case order.StatusShipped:
		return &c.Shipped
	case order.StatusDelivered:
		return &c.Delivered
	case order.StatusCancelled:
		return &c.Cancelled
	}
	return nil
}

// CustomerStats is GET /v1/customers/{id}/stats.
type CustomerStats struct {
	CustomerID     string          `json:"customer_id"`
	OrdersTotal    int64           `json:"orders_total"`
	OrdersByStatus StatusCounts    `json:"orders_by_status"`
	FirstOrderAt   time.Time       `json:"first_order_at"`
	LastOrderAt    time.Time       `json:"last_order_at"`
	Currencies     []CurrencyMoney `json:"currencies"`
}

// CurrencyMoney is a customer's lifetime money in one currency. Amounts in
// different currencies are never added up.
type CurrencyMoney struct {
	Currency      string `json:"currency"`
	PaidMinor     int64  `json:"paid_minor"`
	RefundedMinor int64  `json:"refunded_minor"`
	NetMinor      int64  `json:"net_minor"` // paid - refunded
}

// customerStats serves GET /v1/customers/{id}/stats. The stats row and the
// money rows are read in one statement (one snapshot), as the projector
// writes them in one transaction.
func (a *API) customerStats(w http.ResponseWriter, r *http.Request) error {
	q := parseQuery(r)
	id := r.PathValue("id")
	checkCustomerID(&q.errs, "id", id)
	tok, tokErr := parseToken(r)
	if err := q.err(); err != nil {
		return err
	}
	if tokErr != nil {
		return tokErr
	}
	if err := a.await(w, r, customerVersions, tok); err != nil {
		return err
	}
	rows, err := a.pool.Query(r.Context(), `SELECT s.orders_total, s.draft, s.placed, s.paid, s.shipped, s.delivered,
		s.cancelled, s.first_order_at, s.last_order_at, p.currency, p.paid_minor, p.refunded_minor
		FROM customer_stats s LEFT JOIN customer_paid p ON p.customer_id = s.customer_id
		WHERE s.customer_id = $1 ORDER BY p.currency`, id)
	if err != nil {
		return fmt.Errorf("customer stats: %w", err)
	}
	defer rows.Close()
	out := CustomerStats{CustomerID: id, Currencies: []CurrencyMoney{}}
	found := false
	for rows.Next() {
		var (
			c              = &out.OrdersByStatus
			cur            *string
			paid, refunded *int64
		)
		if err := rows.Scan(&out.OrdersTotal, &c.Draft, &c.Placed, &c.Paid, &c.Shipped, &c.Delivered, &c.Cancelled,
			&out.FirstOrderAt, &out.LastOrderAt, &cur, &paid, &refunded); err != nil {
			return fmt.Errorf("customer stats: %w", err)
		}
		found = true
		if cur != nil {
			out.Currencies = append(out.Currencies, CurrencyMoney{Currency: *cur, PaidMinor: *paid,
				RefundedMinor: *refunded, NetMinor: *paid - *refunded})
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("customer stats: %w", err)
	}
	if !found {
		return customerNotFound()
	}
	out.FirstOrderAt, out.LastOrderAt = out.FirstOrderAt.UTC(), out.LastOrderAt.UTC()
	httpx.WriteJSON(w, http.StatusOK, out)
	return nil
}

// SalesDay is one day and currency of GET /v1/stats/sales.
type SalesDay struct {
	Day             string `json:"day"` // YYYY-MM-DD, UTC
	Currency        string `json:"currency"`
	PlacedCount     int64  `json:"placed_count"`
	PlacedMinor     int64  `json:"placed_minor"`
	PaidCount       int64  `json:"paid_count"`
	CancelledCount  int64  `json:"cancelled_count"`
	RefundedCount   int64  `json:"refunded_count"`
	RevenueMinor    int64  `json:"revenue_minor"`
	RefundedMinor   int64  `json:"refunded_minor"`
	NetRevenueMinor int64  `json:"net_revenue_minor"`
	// AverageOrderValueMinor is revenue / paid_count, rounded toward zero;
	// 0 on a day without payments.
	AverageOrderValueMinor int64 `json:"average_order_value_minor"`
}

// maxSalesDays bounds ?from..to (both inclusive): a year, leap or not.
const maxSalesDays = 366

const dayLayout = "2006-01-02"

// sales serves GET /v1/stats/sales?from&to[&currency]: a primary-key range
// scan of sales_daily. Days without activity have no row and are absent.
func (a *API) sales(w http.ResponseWriter, r *http.Request) error {
	q := parseQuery(r, "from", "to", "currency")
	day := func(name string) (time.Time, bool) {
		v, ok := q.one(name)
		if !ok {
			if _, given := q.values[name]; !given {
				q.errs.add(name, "is required (YYYY-MM-DD)")
			}
			return time.Time{}, false
		}
		d, err := time.Parse(dayLayout, v)
		if err != nil {
			q.errs.add(name, "must be a date YYYY-MM-DD")
			return time.Time{}, false
		}
		return d, true
	}
	from, okFrom := day("from")
	to, okTo := day("to")
	if okFrom && okTo {
		switch days := int(to.Sub(from).Hours()/24) + 1; {
		case to.Before(from):
			q.errs.add("to", "must not be before from")
		case days > maxSalesDays:
			q.errs.add("to", "the range covers %d days; at most %d (both ends included)", days, maxSalesDays)
		}
	}
	currency, hasCurrency := q.one("currency")
	if hasCurrency && !order.IsCurrency(currency) {
		q.errs.add("currency", "must be an ISO 4217 code an order can be priced in, such as EUR")
	}
	tok, tokErr := parseToken(r)
	if err := q.err(); err != nil {
		return err
	}
	if tokErr != nil {
		return tokErr
	}
	if err := a.await(w, r, salesVersions, tok); err != nil {
		return err
	}
	sql := `SELECT day, currency, placed_count, placed_minor, paid_count, revenue_minor, cancelled_count,
		refunded_count, refunded_minor FROM sales_daily WHERE day BETWEEN $1 AND $2`
	args := []any{from, to}
	if hasCurrency {
		sql += ` AND currency = $3`
		args = append(args, currency)
	}
	rows, err := a.pool.Query(r.Context(), sql+` ORDER BY day, currency`, args...)
	if err != nil {
		return fmt.Errorf("sales: %w", err)
	}
	defer rows.Close()
	out := []SalesDay{}
	for rows.Next() {
		var (
			s SalesDay
			d time.Time
		)
		if err := rows.Scan(&d, &s.Currency, &s.PlacedCount, &s.PlacedMinor, &s.PaidCount, &s.RevenueMinor,
			&s.CancelledCount, &s.RefundedCount, &s.RefundedMinor); err != nil {
			return fmt.Errorf("sales: %w", err)
		}
		s.Day = d.Format(dayLayout)
		s.NetRevenueMinor = s.RevenueMinor - s.RefundedMinor
		if s.PaidCount > 0 {
			s.AverageOrderValueMinor = s.RevenueMinor / s.PaidCount
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sales: %w", err)
	}
	resp := struct {
		From     string     `json:"from"`
		To       string     `json:"to"`
		Currency string     `json:"currency,omitempty"`
		Days     []SalesDay `json:"days"`
	}{from.Format(dayLayout), to.Format(dayLayout), currency, out}
	httpx.WriteJSON(w, http.StatusOK, resp)
	return nil
}

// statusCounts serves GET /v1/stats/status: six rows at most; a status no
// order has reached yet has no row and counts 0.
func (a *API) statusCounts(w http.ResponseWriter, r *http.Request) error {
	q := parseQuery(r)
	tok, tokErr := parseToken(r)
	if err := q.err(); err != nil {
		return err
	}
	if tokErr != nil {
		return tokErr
	}
	if err := a.await(w, r, statusVersions, tok); err != nil {
		return err
	}
	rows, err := a.pool.Query(r.Context(), `SELECT status, orders FROM status_counts`)
	if err != nil {
		return fmt.Errorf("status counts: %w", err)
	}
	defer rows.Close()
	var out struct {
		Statuses StatusCounts `json:"statuses"`
		Total    int64        `json:"total"`
	}
	for rows.Next() {
		var (
			s string
			n int64
		)
		if err := rows.Scan(&s, &n); err != nil {
			return fmt.Errorf("status counts: %w", err)
		}
		if f := out.Statuses.field(order.Status(s)); f != nil {
			*f = n
			out.Total += n
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("status counts: %w", err)
	}
	httpx.WriteJSON(w, http.StatusOK, out)
	return nil
}
