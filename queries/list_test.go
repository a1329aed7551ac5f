package queries_test

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/queries"
)

type page struct {
	Orders     []queries.Summary `json:"orders"`
	NextCursor string            `json:"next_cursor"`
}

// sortKey compares two summaries in a sort's order, order_id breaking ties.
func sortKey(sort string) func(a, b queries.Summary) int {
	asc := func(a, b queries.Summary) int {
		var c int
		switch sort[len(sort)-len("total"):] {
		case "total":
			c = cmp.Compare(a.TotalMinor, b.TotalMinor)
		default:
			if sort == "created_at" || sort == "-created_at" {
				c = a.CreatedAt.Compare(b.CreatedAt)
			} else {
				c = a.UpdatedAt.Compare(b.UpdatedAt)
			}
		}
		return cmp.Or(c, cmp.Compare(a.OrderID, b.OrderID))
	}
	if sort[0] == '-' {
		return func(a, b queries.Summary) int { return asc(b, a) }
	}
	return asc
}

// TestPaginationWalksEveryOrderOnceWhileOrdersArrive walks every sort in
// pages of 7 while two orders are created before each page: every order
// that existed at the start comes back exactly once, nothing comes back
// twice, and the walk is in the sort's order.
func TestPaginationWalksEveryOrderOnceWhileOrdersArrive(t *testing.T) {
	t.Parallel()
	e := newEnv(t, queries.Options{})
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	seq := 0
	add := func() {
		seq++
		// Totals repeat (seq%5) and creation times repeat in pairs, so the
		// order_id tie-breaker is exercised in every sort.
		e.create(newOrder{customer: "c", createdAt: base.Add(time.Duration(seq/2) * time.Hour),
			items: []order.ItemAdded{item("sku", 1, int64(100*(seq%5)))}})
	}
	for range 30 {
		add()
	}
	e.project()

	for _, sort := range []string{"created_at", "-created_at", "updated_at", "-updated_at", "total", "-total"} {
		t.Run("sort="+sort, func(t *testing.T) {
			var initial page
			e.get("/v1/orders?limit=200&sort="+url.QueryEscape(sort)).ok(t, &initial)
			if initial.NextCursor != "" {
				t.Fatal("a page of 200 has a next cursor")
			}
			var walked []queries.Summary
			cursor := ""
			for pages := 0; ; pages++ {
				if pages > 50 {
					t.Fatal("the walk does not end")
				}
				add()
				add()
				e.project()
				path := "/v1/orders?limit=7&sort=" + url.QueryEscape(sort)
				if cursor != "" {
					path += "&cursor=" + cursor
				}
				var p page
				e.get(path).ok(t, &p)
				if len(p.Orders) > 7 {
					t.Fatalf("page of %d orders", len(p.Orders))
				}
				walked = append(walked, p.Orders...)
				if p.NextCursor == "" {
					break
				}
				cursor = p.NextCursor
			}
			seen := map[string]bool{}
			for _, s := range walked {
				if seen[s.OrderID] {
					t.Errorf("%s came back twice", s.OrderID)
				}
				seen[s.OrderID] = true
			}
			for _, s := range initial.Orders {
				if !seen[s.OrderID] {
					t.Errorf("%s was skipped", s.OrderID)
				}
			}
			if !slices.IsSortedFunc(walked, sortKey(sort)) {
				t.Errorf("the walk is not in %s order", sort)
			}
			if !slices.IsSortedFunc(initial.Orders, sortKey(sort)) {
				t.Errorf("the single page is not in %s order", sort)
			}
		})
	}
}

func TestListFilters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, queries.Options{})
	base := time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 6 {
		a := e.create(newOrder{customer: fmt.Sprintf("c-%d", i%2), createdAt: base.Add(time.Duration(i) * 24 * time.Hour),
			items: []order.ItemAdded{item("x", 1, int64(1000*(i+1)))}})
		if i%3 == 0 {
			e.append(a.id, order.OrderPlaced{TotalMinor: int64(1000 * (i + 1)), ItemCount: 1, PlacedAt: base})
		}
		if i == 3 {
			e.append(a.id, order.OrderCancelled{Reason: "changed mind", CancelledAt: base})
		}
		ids = append(ids, a.id.String())
	}
	e.project()
	// Orders: 0 c-0 placed 1000, 1 c-1 draft 2000, 2 c-0 draft 3000,
	// 3 c-1 cancelled 4000, 4 c-0 draft 5000, 5 c-1 draft 6000.
	cases := []struct {
		name, query string
		want        []int // indexes into ids, in the default order (-created_at)
	}{
		{"no filter lists everything newest first", "", []int{5, 4, 3, 2, 1, 0}},
		{"customer_id keeps one customer's orders", "customer_id=c-0", []int{4, 2, 0}},
		{"one status", "status=draft", []int{5, 4, 2, 1}},
		{"repeated status means any of them", "status=placed&status=cancelled", []int{3, 0}},
		{"created_from is inclusive and created_to exclusive", "created_from=" + url.QueryEscape(base.Add(24*time.Hour).Format(time.RFC3339)) +
			"&created_to=" + url.QueryEscape(base.Add(3*24*time.Hour).Format(time.RFC3339)), []int{2, 1}},
		{"min_total and max_total are inclusive", "min_total=2000&max_total=4000", []int{3, 2, 1}},
		{"filters combine", "customer_id=c-1&status=draft&min_total=3000", []int{5}},
		{"a customer without orders gets an empty list", "customer_id=nobody", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var p page
			e.get("/v1/orders?"+c.query).ok(t, &p)
			var got []string
			for _, s := range p.Orders {
				got = append(got, s.OrderID)
			}
			var want []string
			for _, i := range c.want {
				want = append(want, ids[i])
			}
			if !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
			if p.Orders == nil {
				t.Error(`"orders" is null, want []`)
			}
		})
	}
	t.Run("the list has no lines", func(t *testing.T) {
		r := e.get("/v1/orders?limit=1")
		var raw struct{ Orders []map[string]any }
		r.ok(t, &raw)
		if _, ok := raw.Orders[0]["lines"]; ok {
			t.Errorf("a list item has lines: %v", raw.Orders[0])
		}
	})
}

func TestListRejectsBadParameters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, queries.Options{})
	for i := range 3 {
		e.create(newOrder{customer: "c", items: []order.ItemAdded{item("x", 1, int64(i+1))}})
	}
	e.project()
	var first page
	e.get("/v1/orders?limit=1&status=draft").ok(t, &first)
	if first.NextCursor == "" {
		t.Fatal("no next cursor")
	}
	cases := []struct{ name, query, field string }{
		{"an unknown parameter", "colour=red", "colour"},
		{"a misspelt parameter", "customer=c", "customer"},
		{"an unknown status", "status=lost", "status"},
		{"an empty status", "status=", "status"},
		{"a bad created_from", "created_from=2025-01-01", "created_from"},
		{"a created_to not after created_from", "created_from=2025-01-02T00:00:00Z&created_to=2025-01-01T00:00:00Z", "created_to"},
		{"a negative min_total", "min_total=-1", "min_total"},
		{"a non-integer max_total", "max_total=1.5", "max_total"},
		{"max_total below min_total", "min_total=10&max_total=9", "max_total"},
		{"an unknown sort", "sort=price", "sort"},
		{"limit 0", "limit=0", "limit"},
		{"limit 201", "limit=201", "limit"},
		{"limit given twice", "limit=1&limit=2", "limit"},
		{"a customer_id too long", "customer_id=" + strings.Repeat("c", 101), "customer_id"},
		{"a garbage cursor", "cursor=%21%21", "cursor"},
		{"a cursor of another filter", "limit=1&status=placed&cursor=" + first.NextCursor, "cursor"},
		{"a cursor of another sort", "limit=1&status=draft&sort=total&cursor=" + first.NextCursor, "cursor"},
	}
	for _, c := range cases {
		t.Run(c.name+" is a 400 naming "+c.field, func(t *testing.T) {
			e.get("/v1/orders?"+c.query).problem(t, http.StatusBadRequest, "invalid-parameter", c.field)
		})
	}
	t.Run("the same cursor with another limit continues the list", func(t *testing.T) {
		var p page
		e.get("/v1/orders?limit=5&status=draft&cursor="+first.NextCursor).ok(t, &p)
		if len(p.Orders) != 2 {
			t.Errorf("got %d orders after the first, want 2", len(p.Orders))
		}
	})
}
