package queries_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/httpx"
	"github.com/orderflow/orderflow/internal/pg"
	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/queries"
)

// The events are the stream as stored, beside the history's upcast copy:
// an old schema stays old here.
func TestEventsAreTheStoredStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t, queries.Options{})
	a := e.create(newOrder{customer: "c-1"})
	e.appendRaw(a.id, eventstore.EventData{ID: ulid.Make(), Type: order.NameItemAdded, SchemaVersion: 1,
		Data: json.RawMessage(`{"sku":"mug","name":"Mug","quantity":2,"price_minor":1250}`)})
	var page struct {
		OrderID string                `json:"order_id"`
		Events  []eventstore.Envelope `json:"events"`
	}
	e.get("/v1/orders/"+a.id.String()+"/events").ok(t, &page)
	last := page.Events[len(page.Events)-1]
	if page.OrderID != a.id.String() || last.SchemaVersion != 1 || last.Version != int64(len(page.Events)) {
		t.Fatalf("events %+v: want the stored v1 ItemAdded last", page)
	}
	if r := e.get("/v1/orders/" + ulid.Make().String() + "/events"); r.Status != http.StatusNotFound {
		t.Fatalf("an unknown order: %d %s, want 404", r.Status, r.Body)
	}
}

// A database that cannot answer is the server's failure, never an order
// that does not exist (the command side's copy of this route said 404
// order-not-found).
func TestEventsOnAFailedDatabaseAreNotANotFound(t *testing.T) {
	t.Parallel()
	te := testenv.New(t)
	pool, err := pg.Connect(context.Background(), te.DB.Login(pg.Query), pg.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pool.Close() // every read now fails
	mux := http.NewServeMux()
	qapi, err := queries.NewAPI(pool, eventstore.New(pool), te.Registry, queries.Options{})
	if err != nil {
		t.Fatal(err)
	}
	qapi.Register(mux)
	srv := httptest.NewServer(httpx.Middleware(testenv.Logger(t), mux))
	t.Cleanup(srv.Close)

	resp, err := srv.Client().Get(srv.URL + "/v1/orders/" + ulid.Make().String() + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var p httpx.Problem
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode < 500 || resp.Header.Get("Content-Type") != "application/problem+json" || p.Type == httpx.ProblemTypeBase+"order-not-found" {
		t.Fatalf("a failed database answered %d %s %+v, want a 5xx problem", resp.StatusCode, resp.Header.Get("Content-Type"), p)
	}
}
