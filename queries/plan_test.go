package queries

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/internal/pgtest"
)

// TestListPlansUseTheIndexes checks the plans the comment on listParams.sql
// describes, on 200k summaries of 2,000 customers: each first and next page
// scans the sort's index (the customer's for a customer), with the keyset as
// an index bound, never a sequential scan nor a sort of more than one
// customer's orders — so a page costs the same at 1M orders.
func TestListPlansUseTheIndexes(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	_, err := db.Owner.Exec(ctx, `INSERT INTO order_summaries (order_id, customer_id, currency, status, total_minor,
		paid_minor, refunded_minor, line_count, item_quantity, version, created_at, updated_at)
		SELECT gen_random_uuid(), 'c-' || (i % 2000), 'EUR',
		       -- Skewed like a live shop: most orders delivered, few placed.
		       CASE WHEN i % 100 = 0 THEN 'placed' WHEN i % 100 < 5 THEN 'draft' WHEN i % 100 < 8 THEN 'cancelled'
		            WHEN i % 100 < 12 THEN 'paid' WHEN i % 100 < 20 THEN 'shipped' ELSE 'delivered' END,
		       (i * 7919) % 100000, 0, 0, 1, 1, 2,
		       timestamptz '2025-01-01' + i * interval '1 minute',
		       timestamptz '2025-01-01' + ((i * 7919) % 200000) * interval '1 minute'
		FROM generate_series(1, 200000) i`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Owner.Exec(ctx, `ANALYZE order_summaries`); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, query, index string
		// filtered: the sort column is not in the index, so the keyset is
		// a filter over the customer's rows.
		filtered bool
	}{
		{"a customer's first page, newest first", "customer_id=c-7", "order_summaries_customer_created_idx", false},
		{"a customer's orders, oldest first", "customer_id=c-7&sort=created_at", "order_summaries_customer_created_idx", false},
		{"a customer's orders by total: their index, then a small sort", "customer_id=c-7&sort=-total", "order_summaries_customer_created_idx", true},
		{"everything, newest first", "", "order_summaries_created_idx", false},
		{"everything by last change", "sort=-updated_at", "order_summaries_updated_idx", false},
		{"everything by total", "sort=total", "order_summaries_total_idx", false},
		{"everything by total, largest first", "sort=-total", "order_summaries_total_idx", false},
		{"one status, newest first", "status=placed", "order_summaries_status_created_idx", false},
	}
	for _, c := range cases {
		t.Run(c.name+" uses "+c.index, func(t *testing.T) {
			for _, next := range []bool{false, true} {
				l, err := parseList(httptest.NewRequest("GET", "/v1/orders?"+c.query, nil))
				if err != nil {
					t.Fatal(err)
				}
				if next { // the second page: the keyset predicate must be an index bound too
					sql, args := l.sql()
					rows, err := db.Query.Query(ctx, sql, args...)
					if err != nil {
						t.Fatal(err)
					}
					var last Summary
					for rows.Next() {
						if last, err = scanSummary(rows); err != nil {
							t.Fatal(err)
						}
					}
					rows.Close()
					c := nextCursor(last, l)
					var errs paramErrors
					l.afterKey, l.afterID, _ = decodeCursor(c, l, &errs)
				}
				sql, args := l.sql()
				var raw []byte
				if err := db.Query.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+sql, args...).Scan(&raw); err != nil {
					t.Fatal(err)
				}
				var plan []struct{ Plan node }
				if err := json.Unmarshal(raw, &plan); err != nil {
					t.Fatal(err)
				}
				var (
					types, indexes []string
					bounded        bool // the keyset is an index condition, not a filter
					bigSort        bool
				)
				plan[0].Plan.walk(func(n node) {
					types = append(types, n.Type)
					if n.Index != "" {
						indexes = append(indexes, n.Index)
					}
					bounded = bounded || strings.Contains(n.IndexCond, "ROW(")
					// A sort is fine over one customer's few hundred
					// orders (the planner picks a bitmap scan there), never
					// over a share of the table.
					bigSort = bigSort || (n.Type == "Sort" && n.Plans[0].Rows > 1000)
				})
				if !slices.Contains(indexes, c.index) || bigSort || slices.Contains(types, "Seq Scan") || (next && !bounded && !c.filtered) {
					t.Errorf("next page %v: plan nodes %v on indexes %v, keyset bound %v; want %s\n%s", next, types, indexes, bounded, c.index, raw)
				}
			}
		})
	}
}

type node struct {
	Type      string  `json:"Node Type"`
	Index     string  `json:"Index Name"`
	IndexCond string  `json:"Index Cond"`
	Rows      float64 `json:"Plan Rows"`
	Plans     []node  `json:"Plans"`
}

func (n node) walk(f func(node)) {
	f(n)
	for _, c := range n.Plans {
		c.walk(f)
	}
}
