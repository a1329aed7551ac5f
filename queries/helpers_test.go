package queries_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/httpx"
	"github.com/orderflow/orderflow/internal/pgtest"
	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/openapi/openapitest"
	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/projections"
	"github.com/orderflow/orderflow/queries"
)

// env is the query API on a real server (production middleware) over a
// fresh database, with the real event store and projector to fill it.
type env struct {
	t        *testing.T
	db       *pgtest.DB
	store    *eventstore.Store
	registry *order.Registry
	rt       *projections.Runtime
	srv      *httptest.Server
	// projected is the store position up to which project has run.
	projected int64
}

func newEnv(t *testing.T, opts queries.Options) *env {
	t.Helper()
	te := testenv.New(t)
	log := testenv.Logger(t)
	rt, err := projections.NewRuntime(te.DB.Projector, eventstore.New(te.DB.Projector), te.Registry, prometheus.NewRegistry(), log)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	qapi, err := queries.NewAPI(te.DB.Query, eventstore.New(te.DB.Query), te.Registry, opts)
	if err != nil {
		t.Fatal(err)
	}
	qapi.Register(mux)
	srv := httptest.NewServer(httpx.Middleware(log, mux))
	t.Cleanup(srv.Close)
	return &env{t: t, db: te.DB, store: te.Store, registry: te.Registry, rt: rt, srv: srv}
}

// appended is what a command would have answered: the consistency token.
type appended struct {
	id    ulid.ULID
	token string
}

// append stores events on order id as one append, as a command would.
func (e *env) append(id ulid.ULID, evs ...order.Event) appended {
	e.t.Helper()
	data := make([]eventstore.EventData, len(evs))
	for i, ev := range evs {
		name, schema, raw, err := e.registry.Encode(ev)
		if err != nil {
			e.t.Fatal(err)
		}
		data[i] = eventstore.EventData{ID: ulid.Make(), Type: name, SchemaVersion: schema, Data: raw}
	}
	return e.appendRaw(id, data...)
}

func (e *env) appendRaw(id ulid.ULID, data ...eventstore.EventData) appended {
	e.t.Helper()
	res, err := e.store.Append(context.Background(), eventstore.Stream{ID: id, Type: "order"}, eventstore.Any(), data)
	if err != nil {
		e.t.Fatal(err)
	}
	return appended{id: id, token: fmt.Sprintf("%s:%d:%d", id, res.ToVersion, res.Position)}
}

// newOrder is an order's creation and its items.
type newOrder struct {
	customer, currency string
	createdAt          time.Time
	items              []order.ItemAdded
}

func (e *env) create(o newOrder) appended {
	e.t.Helper()
	id := ulid.Make()
	if o.currency == "" {
		o.currency = "EUR"
	}
	if o.createdAt.IsZero() {
		o.createdAt = time.Now()
	}
	evs := []order.Event{order.OrderCreated{OrderID: id, CustomerID: o.customer, Currency: o.currency, CreatedAt: o.createdAt}}
	for _, it := range o.items {
		evs = append(evs, it)
	}
	return e.append(id, evs...)
}

// projected are the projections project runs: the real ones, so that these
// tests read what production would.
var projected = []projections.Projection{projections.OrderSummary{}, projections.CustomerStats{},
	projections.SalesDaily{}, projections.StatusCounts{}}

// project runs every projection over every event appended since the last
// call, as the Kafka consumer would deliver them.
func (e *env) project() {
	e.t.Helper()
	ctx := context.Background()
	for {
		evs, err := e.store.ReadAll(ctx, e.projected, 500)
		if err != nil {
			e.t.Fatal(err)
		}
		if len(evs) == 0 {
			return
		}
		for _, ev := range evs {
			for _, p := range projected {
				if err := e.rt.Handle(ctx, p, 0, ev); err != nil {
					e.t.Fatal(err)
				}
			}
			e.projected = ev.Position
		}
	}
}

// reply is a response read in full.
type reply struct {
	Status int
	Header http.Header
	Body   []byte
}

func (e *env) get(path string, header ...string) reply {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := e.srv.Client().Do(req.WithContext(ctx))
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	// Every answer but a 400 is checked against openapi/openapi.yaml. A 400
	// is left out because strict checking refuses what OpenAPI cannot
	// express (unknown parameters, created_to before created_from, a cursor
	// of another list), which the validator would report as the server
	// refusing a request the document accepts.
	if resp.StatusCode != http.StatusBadRequest {
		_ = openapitest.ValidateExchange(e.t, req, nil, resp, body)
	}
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

// ok fails unless the reply is a 200 and decodes its body into v.
func (r reply) ok(t *testing.T, v any) {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", r.Status, r.Body)
	}
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// problem fails unless the reply is a problem with this status and type
// slug and, if field is not empty, an errors[] entry naming field.
func (r reply) problem(t *testing.T, status int, slug, field string) httpx.Problem {
	t.Helper()
	var p httpx.Problem
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	if got := r.Header.Get("Content-Type"); got != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", got)
	}
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("problem %s: %v", r.Body, err)
	}
	if p.Type != httpx.ProblemTypeBase+slug {
		t.Errorf("type = %s, want …/%s (%s)", p.Type, slug, r.Body)
	}
	if field != "" {
		found := false
		for _, f := range p.Errors {
			found = found || f.Field == field
		}
		if !found {
			t.Errorf("errors %+v name no field %q", p.Errors, field)
		}
	}
	return p
}

func item(sku string, qty, price int64) order.ItemAdded {
	return order.ItemAdded{SKU: sku, Name: strings.ToUpper(sku), Quantity: qty, UnitPriceMinor: price}
}

func eventStream(id ulid.ULID) eventstore.Stream { return eventstore.Stream{ID: id, Type: "order"} }
