package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/commands"
	"github.com/orderflow/orderflow/commands/httpapi"
	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/httpx"
	"github.com/orderflow/orderflow/internal/pgtest"
	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/openapi/openapitest"
	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/queries"
)

// api is the command API on a real server, with the production middleware,
// on a fresh database.
type api struct {
	t   *testing.T
	db  *pgtest.DB
	srv *httptest.Server
}

func newAPI(t *testing.T) *api {
	t.Helper()
	e := testenv.New(t)
	mux := http.NewServeMux()
	register(t, mux, e.DB, e.Store)
	srv := httptest.NewServer(httpx.Middleware(testenv.Logger(t), mux))
	t.Cleanup(srv.Close)
	return &api{t: t, db: e.DB, srv: srv}
}

// register adds the api role's routes to mux as serve does: the command
// API over a service on store, and the query API (GET /v1/orders/{id}/events
// is how these tests read what the commands appended).
func register(t *testing.T, mux *http.ServeMux, db *pgtest.DB, store *eventstore.Store) {
	log := testenv.Logger(t)
	svc, err := commands.NewService(commands.Config{Store: store, Registry: order.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	httpapi.NewAPI(svc, log).Register(mux)
	qapi, err := queries.NewAPI(db.Query, eventstore.New(db.Query), order.NewRegistry(), queries.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	qapi.Register(mux)
}

// call is one request. Body is sent as is; ContentType defaults to
// application/json when there is a body.
type call struct {
	Method, Path string
	Body         string
	ContentType  string
	Header       map[string]string
}

// reply is a response, read in full.
type reply struct {
	Status int
	Header http.Header
	Body   []byte
	// SpecErr is why the document rejects the request; nil if it conforms.
	SpecErr error
}

// do sends c and checks the exchange against the OpenAPI document.
func (a *api) do(c call) reply {
	a.t.Helper()
	req, err := http.NewRequest(c.Method, a.srv.URL+c.Path, strings.NewReader(c.Body))
	if err != nil {
		a.t.Fatal(err)
	}
	if c.Body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.ContentType != "" {
		req.Header.Set("Content-Type", c.ContentType)
	}
	for k, v := range c.Header {
		req.Header.Set(k, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := a.srv.Client().Do(req.WithContext(ctx))
	if err != nil {
		a.t.Fatalf("%s %s: %v", c.Method, c.Path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	specErr := openapitest.ValidateExchange(a.t, req, []byte(c.Body), resp, body)
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: body, SpecErr: specErr}
}

func (a *api) post(path string, body any, header ...string) reply {
	a.t.Helper()
	return a.do(call{Method: http.MethodPost, Path: path, Body: jsonOf(a.t, body), Header: headers(header...)})
}

// headers turns "Name", "value", ... into a map.
func headers(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// outcome is the body of a 200/201.
type outcome struct {
	OrderID  string `json:"order_id"`
	Version  int64  `json:"version"`
	Position int64  `json:"position"`
}

func (r reply) outcome(t *testing.T) outcome {
	t.Helper()
	var o outcome
	if err := json.Unmarshal(r.Body, &o); err != nil {
		t.Fatalf("outcome %s: %v", r.Body, err)
	}
	return o
}

func (r reply) problem(t *testing.T) httpx.Problem {
	t.Helper()
	var p httpx.Problem
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("problem %s: %v", r.Body, err)
	}
	return p
}

// want fails unless the reply has the status (and, for problems, the type
// slug).
func (r reply) want(t *testing.T, status int, slug string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d; body %s", r.Status, status, r.Body)
	}
	if slug != "" {
		if p := r.problem(t); p.Type != httpx.ProblemTypeBase+slug {
			t.Fatalf("problem type = %q, want %s; body %s", p.Type, slug, r.Body)
		}
	}
}

// Bodies of the common commands.
var (
	mug   = commands.ItemInput{SKU: "MUG-01", Name: "Mug", Quantity: 2, UnitPriceMinor: 1250}
	plate = commands.ItemInput{SKU: "PLATE-01", Name: "Plate", Quantity: 1, UnitPriceMinor: 900}
)

func createBody(items ...commands.ItemInput) map[string]any {
	b := map[string]any{"customer_id": "cust-42", "currency": "EUR"}
	if len(items) > 0 {
		b["items"] = items
	}
	return b
}

// create makes a draft order with items and returns its id.
func (a *api) create(items ...commands.ItemInput) string {
	a.t.Helper()
	r := a.post("/v1/orders", createBody(items...))
	r.want(a.t, http.StatusCreated, "")
	return r.outcome(a.t).OrderID
}

// paid makes an order with the mug and takes it to paid.
func (a *api) paid() string {
	a.t.Helper()
	id := a.create(mug)
	a.post("/v1/orders/"+id+"/place", "").want(a.t, http.StatusOK, "")
	a.post("/v1/orders/"+id+"/payments", map[string]any{"amount_minor": 2500, "currency": "EUR", "reference": "psp-1"}).
		want(a.t, http.StatusOK, "")
	return id
}

// envelopes reads an order's events through the API.
func (a *api) envelopes(id string) []eventstore.Envelope {
	a.t.Helper()
	r := a.do(call{Method: http.MethodGet, Path: "/v1/orders/" + id + "/events"})
	r.want(a.t, http.StatusOK, "")
	var page struct {
		OrderID string                `json:"order_id"`
		Events  []eventstore.Envelope `json:"events"`
	}
	if err := json.Unmarshal(r.Body, &page); err != nil {
		a.t.Fatal(err)
	}
	return page.Events
}

func types(evs []eventstore.Envelope) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}

// rows counts what a command can write: events and idempotency keys.
type rows struct{ Events, Keys int }

func (a *api) rows() rows {
	a.t.Helper()
	var r rows
	err := a.db.Owner.QueryRow(context.Background(),
		`SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM append_keys)`).Scan(&r.Events, &r.Keys)
	if err != nil {
		a.t.Fatal(err)
	}
	return r
}

// unchanged fails if anything was written since before.
func (a *api) unchanged(before rows) {
	a.t.Helper()
	if after := a.rows(); after != before {
		a.t.Errorf("rows changed: before %+v, after %+v", before, after)
	}
}

// sameExceptPerRequest compares two responses' headers, ignoring those that
// differ per request.
func sameExceptPerRequest(t *testing.T, first, replay http.Header) {
	t.Helper()
	skip := map[string]bool{"Date": true, "X-Request-Id": true, "Idempotent-Replayed": true}
	for k := range first {
		if !skip[k] && strings.Join(first[k], ",") != strings.Join(replay[k], ",") {
			t.Errorf("header %s: first %q, replay %q", k, first[k], replay[k])
		}
	}
	for k := range replay {
		if _, ok := first[k]; !ok && !skip[k] {
			t.Errorf("header %s only on the replay: %q", k, replay[k])
		}
	}
}

func bigBody(n int) string {
	var b bytes.Buffer
	b.WriteString(`{"reason":"`)
	b.WriteString(strings.Repeat("x", n))
	b.WriteString(`"}`)
	return b.String()
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
