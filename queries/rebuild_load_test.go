package queries_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/queries"
)

// TestRebuildUnderQueryLoadServesEveryQuery rebuilds every projection while
// clients query each read model and new orders keep arriving: no query may
// fail, miss an order that existed before the rebuild, or see an empty or
// half-built model.
func TestRebuildUnderQueryLoadServesEveryQuery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, queries.Options{})
	const orders = 300
	ids := make([]ulid.ULID, orders)
	for i := range ids {
		ids[i] = e.create(newOrder{customer: fmt.Sprintf("c-%d", i%20), items: []order.ItemAdded{item("A", 1, 100)}}).id
	}
	e.project()

	ctx, stop := context.WithCancel(context.Background())
	var (
		wg       sync.WaitGroup
		queried  atomic.Int64
		failures = make(chan string, 100)
	)
	fail := func(format string, args ...any) {
		select {
		case failures <- fmt.Sprintf(format, args...):
		default:
		}
	}
	client := e.srv.Client()
	get := func(path string, v any) bool {
		resp, err := client.Get(e.srv.URL + path)
		if err != nil {
			fail("GET %s: %v", path, err)
			return false
		}
		defer func() { _ = resp.Body.Close() }()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			fail("GET %s: %d %s", path, resp.StatusCode, body)
			return false
		}
		if err := json.Unmarshal(body, v); err != nil {
			fail("GET %s: %v", path, err)
			return false
		}
		queried.Add(1)
		return true
	}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for ctx.Err() == nil {
				var one struct {
					OrderID string `json:"order_id"`
				}
				if id := ids[rng.IntN(orders)]; get("/v1/orders/"+id.String(), &one) && one.OrderID != id.String() {
					fail("order %s answered as %s", id, one.OrderID)
				}
				var list struct {
					Orders []json.RawMessage `json:"orders"`
				}
				if get(fmt.Sprintf("/v1/orders?customer_id=c-%d&limit=200", rng.IntN(20)), &list) && len(list.Orders) < orders/20 {
					fail("customer list has %d orders, want at least %d", len(list.Orders), orders/20)
				}
				var counts struct {
					Total int `json:"total"`
				}
				if get("/v1/stats/status", &counts) && counts.Total < orders {
					fail("status counts total %d, want at least %d", counts.Total, orders)
				}
				var cs struct {
					OrdersTotal int `json:"orders_total"`
				}
				if get(fmt.Sprintf("/v1/customers/c-%d/stats", rng.IntN(20)), &cs) && cs.OrdersTotal < orders/20 {
					fail("customer stats %d orders, want at least %d", cs.OrdersTotal, orders/20)
				}
			}
		}()
	}
	// New orders keep arriving in the store, so every rebuild has events to
	// catch up on after its bulk load, and in its swap.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			e.create(newOrder{customer: "c-live", items: []order.ItemAdded{item("B", 2, 50)}})
			time.Sleep(5 * time.Millisecond)
		}
	}()

	for _, p := range projected {
		if _, err := e.rt.Rebuild(context.Background(), e.db.Owner, p, nil); err != nil {
			stop()
			wg.Wait()
			t.Fatalf("rebuild %s: %v", p.Name(), err)
		}
	}
	stop()
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Error(f)
	}
	if queried.Load() < 100 {
		t.Fatalf("only %d queries ran during the rebuilds: the test proved nothing", queried.Load())
	}
	t.Logf("%d queries answered during the rebuild of %d projections", queried.Load(), len(projected))
}
