package queries_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/queries"
)

// day is 2025-03-<d> at noon UTC.
func day(d int) time.Time { return time.Date(2025, 3, d, 12, 0, 0, 0, time.UTC) }

// shop creates, through the real projections:
//   - c-1, EUR: placed 03-01, paid 03-02 (3400), cancelled+refunded 03-03
//   - c-1, EUR: placed 03-01, paid 03-02 (1000)
//   - c-1, USD: placed 03-02
//   - c-2, EUR: draft
func shop(e *env) {
	a := e.create(newOrder{customer: "c-1", createdAt: day(1), items: []order.ItemAdded{item("mug", 2, 1700)}})
	e.append(a.id, order.OrderPlaced{TotalMinor: 3400, ItemCount: 2, PlacedAt: day(1)})
	e.append(a.id, order.PaymentRecorded{AmountMinor: 3400, Currency: "EUR", Reference: "p1", PaidAt: day(2)})
	e.append(a.id, order.OrderCancelled{Reason: "late", CancelledAt: day(3)},
		order.RefundRecorded{AmountMinor: 3400, Currency: "EUR", Reason: "late", RefundedAt: day(3)})
	b := e.create(newOrder{customer: "c-1", createdAt: day(1), items: []order.ItemAdded{item("cup", 1, 1000)}})
	e.append(b.id, order.OrderPlaced{TotalMinor: 1000, ItemCount: 1, PlacedAt: day(1)})
	e.append(b.id, order.PaymentRecorded{AmountMinor: 1000, Currency: "EUR", Reference: "p2", PaidAt: day(2)})
	c := e.create(newOrder{customer: "c-1", currency: "USD", createdAt: day(2), items: []order.ItemAdded{item("cup", 1, 500)}})
	e.append(c.id, order.OrderPlaced{TotalMinor: 500, ItemCount: 1, PlacedAt: day(2)})
	e.create(newOrder{customer: "c-2", createdAt: day(4)})
	e.project()
}

func TestCustomerStats(t *testing.T) {
	t.Parallel()
	e := newEnv(t, queries.Options{})
	shop(e)
	t.Run("counts by status, span and money per currency", func(t *testing.T) {
		var s queries.CustomerStats
		e.get("/v1/customers/c-1/stats").ok(t, &s)
		want := queries.StatusCounts{Placed: 1, Paid: 1, Cancelled: 1}
		if s.CustomerID != "c-1" || s.OrdersTotal != 3 || s.OrdersByStatus != want {
			t.Errorf("stats = %+v", s)
		}
		if !s.FirstOrderAt.Equal(day(1)) || !s.LastOrderAt.Equal(day(2)) {
			t.Errorf("span = %v .. %v", s.FirstOrderAt, s.LastOrderAt)
		}
		if len(s.Currencies) != 1 || s.Currencies[0] != (queries.CurrencyMoney{Currency: "EUR", PaidMinor: 4400, RefundedMinor: 3400, NetMinor: 1000}) {
			t.Errorf("currencies = %+v", s.Currencies)
		}
	})
	t.Run("a customer without payments has an empty currency list", func(t *testing.T) {
		var s queries.CustomerStats
		e.get("/v1/customers/c-2/stats").ok(t, &s)
		if s.OrdersTotal != 1 || s.OrdersByStatus.Draft != 1 || s.Currencies == nil || len(s.Currencies) != 0 {
			t.Errorf("stats = %+v", s)
		}
	})
	t.Run("a customer with no orders is a 404", func(t *testing.T) {
		e.get("/v1/customers/nobody/stats").problem(t, http.StatusNotFound, "customer-not-found", "")
	})
	t.Run("a customer id longer than the command API accepts is a 400 naming id", func(t *testing.T) {
		e.get("/v1/customers/"+strings.Repeat("c", 101)+"/stats").problem(t, http.StatusBadRequest, "invalid-parameter", "id")
	})
	t.Run("any query parameter is a 400 naming it", func(t *testing.T) {
		e.get("/v1/customers/c-1/stats?currency=EUR").problem(t, http.StatusBadRequest, "invalid-parameter", "currency")
	})
}

// The command API refuses customer ids over order.MaxCustomerIDLen
// characters; the query API looks up one that long (in multi-byte
// characters, too) and answers a longer one as a 400.
func TestCustomerIDsUpToTheCommandLimitAreLookedUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t, queries.Options{})
	longest := strings.Repeat("é", order.MaxCustomerIDLen)
	for _, path := range []string{"/v1/customers/" + url.PathEscape(longest) + "/stats", "/v1/orders?customer_id=" + url.QueryEscape(longest)} {
		if r := e.get(path); r.Status != http.StatusOK && r.Status != http.StatusNotFound {
			t.Errorf("%s: %d %s, want an answer for a customer id of the maximal length", path, r.Status, r.Body)
		}
	}
	tooLong := longest + "x"
	e.get("/v1/customers/"+url.PathEscape(tooLong)+"/stats").problem(t, http.StatusBadRequest, "invalid-parameter", "id")
	e.get("/v1/orders?customer_id="+url.QueryEscape(tooLong)).problem(t, http.StatusBadRequest, "invalid-parameter", "customer_id")
}

type salesReply struct {
	From, To, Currency string
	Days               []queries.SalesDay
}

func TestSales(t *testing.T) {
	t.Parallel()
	e := newEnv(t, queries.Options{})
	shop(e)
	t.Run("rows per day and currency with derived money", func(t *testing.T) {
		var r salesReply
		e.get("/v1/stats/sales?from=2025-03-01&to=2025-03-31").ok(t, &r)
		want := []queries.SalesDay{
			{Day: "2025-03-01", Currency: "EUR", PlacedCount: 2, PlacedMinor: 4400},
			{Day: "2025-03-02", Currency: "EUR", PaidCount: 2, RevenueMinor: 4400, NetRevenueMinor: 4400, AverageOrderValueMinor: 2200},
			{Day: "2025-03-02", Currency: "USD", PlacedCount: 1, PlacedMinor: 500},
			{Day: "2025-03-03", Currency: "EUR", CancelledCount: 1, RefundedCount: 1, RefundedMinor: 3400, NetRevenueMinor: -3400},
		}
		if r.From != "2025-03-01" || r.To != "2025-03-31" || len(r.Days) != len(want) {
			t.Fatalf("reply = %+v", r)
		}
		for i := range want {
			if r.Days[i] != want[i] {
				t.Errorf("day %d = %+v\nwant %+v", i, r.Days[i], want[i])
			}
		}
	})
	t.Run("currency filters and from/to include both ends", func(t *testing.T) {
		var r salesReply
		e.get("/v1/stats/sales?from=2025-03-02&to=2025-03-02&currency=USD").ok(t, &r)
		if r.Currency != "USD" || len(r.Days) != 1 || r.Days[0].Currency != "USD" {
			t.Errorf("reply = %+v", r)
		}
	})
	t.Run("a quiet range has no days", func(t *testing.T) {
		var r salesReply
		e.get("/v1/stats/sales?from=2024-01-01&to=2024-12-31").ok(t, &r)
		if r.Days == nil || len(r.Days) != 0 {
			t.Errorf("days = %v, want []", r.Days)
		}
	})
	cases := []struct{ name, query, field string }{
		{"from is required", "to=2025-03-01", "from"},
		{"to is required", "from=2025-03-01", "to"},
		{"a date with a time", "from=2025-03-01T00:00:00Z&to=2025-03-02", "from"},
		{"to before from", "from=2025-03-02&to=2025-03-01", "to"},
		{"367 days", "from=2024-01-01&to=2025-01-01", "to"},
		{"a currency that is not ISO 4217", "from=2025-03-01&to=2025-03-02&currency=EURO", "currency"},
		{"a lower-case currency", "from=2025-03-01&to=2025-03-02&currency=eur", "currency"},
		{"an unknown parameter", "from=2025-03-01&to=2025-03-02&day=1", "day"},
	}
	for _, c := range cases {
		t.Run(c.name+" is a 400 naming "+c.field, func(t *testing.T) {
			e.get("/v1/stats/sales?"+c.query).problem(t, http.StatusBadRequest, "invalid-parameter", c.field)
		})
	}
	t.Run("366 days (a leap year) is allowed", func(t *testing.T) {
		var r salesReply
		e.get("/v1/stats/sales?from=2024-01-01&to=2024-12-31").ok(t, &r)
	})
}

func TestStatusCounts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, queries.Options{})
	t.Run("an empty platform has all six statuses at 0", func(t *testing.T) {
		r := e.get("/v1/stats/status")
		for _, s := range []string{"draft", "placed", "paid", "shipped", "delivered", "cancelled"} {
			if !strings.Contains(string(r.Body), `"`+s+`":0`) {
				t.Errorf("%s missing: %s", s, r.Body)
			}
		}
	})
	shop(e)
	t.Run("counts by current status", func(t *testing.T) {
		var r struct {
			Statuses queries.StatusCounts
			Total    int64
		}
		e.get("/v1/stats/status").ok(t, &r)
		if want := (queries.StatusCounts{Draft: 1, Placed: 1, Paid: 1, Cancelled: 1}); r.Statuses != want || r.Total != 4 {
			t.Errorf("got %+v total %d, want %+v total 4", r.Statuses, r.Total, want)
		}
	})
	t.Run("a query parameter is a 400", func(t *testing.T) {
		e.get("/v1/stats/status?status=draft").problem(t, http.StatusBadRequest, "invalid-parameter", "status")
	})
}
