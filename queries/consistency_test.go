package queries_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/projections"
	"github.com/orderflow/orderflow/queries"
)

func TestConsistencyToken(t *testing.T) {
	t.Parallel()
	// The wait is a hang guard: the answer must be fresh however slowly a
	// busy machine runs the catch-up below.
	e := newEnv(t, queries.Options{ConsistencyWait: time.Minute})
	a := e.create(newOrder{customer: "c-1", items: []order.ItemAdded{item("mug", 1, 100)}})
	e.project()
	b := e.append(a.id, order.OrderPlaced{TotalMinor: 100, ItemCount: 1, PlacedAt: time.Now()})
	path := "/v1/orders/" + a.id.String()

	t.Run("a token already applied answers fresh at once", func(t *testing.T) {
		r := e.get(path, "Consistency-Token", a.token)
		if r.Status != http.StatusOK || r.Header.Get("Consistency") != "fresh" {
			t.Errorf("status %d, Consistency %q", r.Status, r.Header.Get("Consistency"))
		}
	})
	t.Run("a token ahead of the projection waits until it catches up and answers fresh", func(t *testing.T) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			time.Sleep(200 * time.Millisecond)
			// Only the summary: the other projections stay behind.
			evs, err := e.store.ReadStream(context.Background(), eventStream(a.id), 3, 10)
			if err == nil {
				err = e.rt.Handle(context.Background(), projections.OrderSummary{}, 0, evs[0])
			}
			if err != nil {
				t.Error(err)
			}
		}()
		start := time.Now()
		r := e.get(path, "Consistency-Token", b.token)
		<-done
		var o queries.Order
		r.ok(t, &o)
		if r.Header.Get("Consistency") != "fresh" || o.Version != 3 || o.Status != "placed" {
			t.Errorf("Consistency %q, version %d %s; want fresh 3 placed", r.Header.Get("Consistency"), o.Version, o.Status)
		}
		t.Logf("answered fresh %v after the request, once the projection caught up", time.Since(start).Round(time.Millisecond))
		var l page
		r = e.get("/v1/orders?customer_id=c-1", "Consistency-Token", b.token)
		r.ok(t, &l)
		if r.Header.Get("Consistency") != "fresh" || l.Orders[0].Version != 3 {
			t.Errorf("list: Consistency %q, %+v", r.Header.Get("Consistency"), l.Orders)
		}
	})
	t.Run("without a token there is no Consistency header", func(t *testing.T) {
		if r := e.get(path); r.Header.Get("Consistency") != "" {
			t.Errorf("Consistency %q", r.Header.Get("Consistency"))
		}
	})
	for _, bad := range []string{"x", a.id.String() + ":2", a.id.String() + ":0:1", "nope:2:3", a.id.String() + ":2:x"} {
		t.Run("a malformed token "+bad+" is a 400", func(t *testing.T) {
			e.get(path, "Consistency-Token", bad).problem(t, http.StatusBadRequest, "invalid-consistency-token", "Consistency-Token")
		})
	}
	t.Run("the store-backed reads are fresh without waiting", func(t *testing.T) {
		for _, p := range []string{path + "?as_of=3", path + "/history"} {
			if r := e.get(p, "Consistency-Token", b.token); r.Status != http.StatusOK || r.Header.Get("Consistency") != "fresh" {
				t.Errorf("%s: status %d, Consistency %q", p, r.Status, r.Header.Get("Consistency"))
			}
		}
	})
}

// TestConsistencyTokenDeadline: each endpoint waits on its own projection;
// none of them has applied the token's version, so each answers what it
// has, marked stale, after the (short) deadline.
func TestConsistencyTokenDeadline(t *testing.T) {
	t.Parallel()
	const wait = 150 * time.Millisecond
	e := newEnv(t, queries.Options{ConsistencyWait: wait})
	a := e.create(newOrder{customer: "c-1", createdAt: day(1), items: []order.ItemAdded{item("mug", 1, 100)}})
	e.project()
	b := e.append(a.id, order.OrderPlaced{TotalMinor: 100, ItemCount: 1, PlacedAt: day(1)})
	for _, p := range []string{"/v1/orders/" + a.id.String(), "/v1/orders", "/v1/customers/c-1/stats",
		"/v1/stats/sales?from=2025-03-01&to=2025-03-01", "/v1/stats/status"} {
		t.Run(p, func(t *testing.T) {
			start := time.Now()
			r := e.get(p, "Consistency-Token", b.token)
			if r.Status != http.StatusOK || r.Header.Get("Consistency") != "stale" {
				t.Errorf("status %d, Consistency %q: %s", r.Status, r.Header.Get("Consistency"), r.Body)
			}
			// At least the deadline (the server starts its clock after ours);
			// how much longer depends on the machine's load, so no upper bound.
			if waited := time.Since(start); waited < wait {
				t.Errorf("answered stale after %v, before the %v deadline", waited, wait)
			}
		})
	}
	t.Run("once projected, every endpoint is fresh", func(t *testing.T) {
		e.project()
		for _, p := range []string{"/v1/orders/" + a.id.String(), "/v1/customers/c-1/stats",
			"/v1/stats/sales?from=2025-03-01&to=2025-03-01", "/v1/stats/status"} {
			if r := e.get(p, "Consistency-Token", b.token); r.Header.Get("Consistency") != "fresh" {
				t.Errorf("%s: Consistency %q", p, r.Header.Get("Consistency"))
			}
		}
	})
}

// TestConsistencyTokenTheStoreNeverHadAnswersStaleAtOnce: a token naming an
// order that does not exist, or a version its stream never reached, can
// never be applied, so the answer is stale without waiting. The wait is set
// far beyond the client's 30 s timeout: a request that polled for it would
// fail the test rather than pass slowly.
func TestConsistencyTokenTheStoreNeverHadAnswersStaleAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, queries.Options{ConsistencyWait: time.Hour})
	a := e.create(newOrder{customer: "c-1", items: []order.ItemAdded{item("mug", 1, 100)}})
	e.project()
	tokens := map[string]string{
		"an order that does not exist":      ulid.Make().String() + ":1:1",
		"a version the order never reached": a.id.String() + ":99:99999",
	}
	for name, tok := range tokens {
		for _, p := range []string{"/v1/orders/" + a.id.String(), "/v1/orders?customer_id=c-1", "/v1/customers/c-1/stats", "/v1/stats/status"} {
			t.Run(name+" "+p, func(t *testing.T) {
				if r := e.get(p, "Consistency-Token", tok); r.Status != http.StatusOK || r.Header.Get("Consistency") != "stale" {
					t.Errorf("status %d, Consistency %q: %s", r.Status, r.Header.Get("Consistency"), r.Body)
				}
			})
		}
	}
	t.Run("for the unknown order's own summary, stale and then 404", func(t *testing.T) {
		id := ulid.Make()
		r := e.get("/v1/orders/"+id.String(), "Consistency-Token", id.String()+":1:1")
		r.problem(t, http.StatusNotFound, "order-not-found", "")
		if r.Header.Get("Consistency") != "stale" {
			t.Errorf("Consistency %q", r.Header.Get("Consistency"))
		}
	})
}
