package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/openapi/openapitest"
)

// who is one principal the walk sends requests as.
type who struct {
	name  string
	token string         // "" for an anonymous request
	p     auth.Principal // what the token says (zero for anonymous)
}

// documentedAs maps the patterns the table knows by another path in the
// document: the dashboard's page is "GET /" there, "GET /{$}" on the mux.
var documentedAs = map[string]string{"GET /": "GET /{$}"}

// undocumented are the table's patterns that are no API operation: the
// dashboard's files and the Go profiler.
var undocumented = []string{"GET /assets/", "GET /debug/pprof/", "GET /debug/pprof/profile", "GET /debug/pprof/trace"}

// TestEveryRouteAndChannelForEveryRole walks every operation of the
// OpenAPI document and every channel kind, with a token of every role (and
// none, and one without roles), against the real binary, and checks each
// answer against internal/auth's rule table: 401 without a token, 403 for
// a role the rule does not grant, the route's own answer (whatever it is,
// but never 401, 403 or another customer's 404) for one it grants; then
// the ownership limits of a customer's grants. A documented operation the
// table does not know fails the test, and so would one the server
// answered without the rule (the guard serves every route it registers).
func TestEveryRouteAndChannelForEveryRole(t *testing.T) {
	t.Parallel()
	srv := testenv.New(t).Serve(t)
	const owner, other = "c-owner", "c-other"
	tok := func(sub string, roles ...auth.Role) who {
		return who{token: testenv.Token(t, sub, roles...), p: auth.Principal{Subject: sub, Roles: roles}}
	}
	principals := []who{{name: "anonymous"}}
	for _, r := range auth.Roles {
		w := tok(owner, r)
		w.name = string(r)
		principals = append(principals, w)
	}
	noRoles := tok("nobody")
	noRoles.name = "a token without roles"
	principals = append(principals, noRoles)
	customer, otherCustomer, staff := principals[1], tok(other, auth.Customer), principals[2]

	// The orders the walk acts on: the owner's and another customer's,
	// read back until the read models have them.
	mine := createOrder(t, srv, customer)
	theirs := createOrder(t, srv, otherCustomer)
	for _, id := range []string{mine, theirs} {
		waitFor(t, srv, staff, "/v1/orders/"+id)
	}
	waitFor(t, srv, staff, "/v1/customers/"+owner+"/stats")

	doc, err := openapitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			pattern := method + " " + path
			if alias, ok := documentedAs[pattern]; ok {
				pattern = alias
			}
			seen[pattern] = true
			rule, ok := auth.RouteRule(pattern)
			if !ok {
				t.Errorf("%s %s is documented but has no rule in internal/auth's table", method, path)
				continue
			}
			for _, w := range principals {
				t.Run(fmt.Sprintf("%s %s as %s", method, path, w.name), func(t *testing.T) {
					checkRoute(t, srv, rule, method, path, w, mine)
				})
			}
		}
	}
	for _, p := range auth.RoutePatterns() {
		if !seen[p] && !slices.Contains(undocumented, p) {
			t.Errorf("the rule table has %s, which the document does not", p)
		}
	}

	t.Run("a customer's grants stop at its own orders", func(t *testing.T) {
		as := otherCustomer
		for _, c := range []struct {
			method, path, body string
			status             int
			problem            string
		}{
			{"GET", "/v1/orders/" + mine, "", 404, "order-not-found"},
			{"POST", "/v1/orders/" + mine + "/items", itemBody, 404, "order-not-found"},
			{"DELETE", "/v1/orders/" + mine + "/items/SKU-1", "", 404, "order-not-found"},
			{"POST", "/v1/orders/" + mine + "/place", "", 404, "order-not-found"},
			{"GET", "/v1/customers/" + owner + "/stats", "", 403, "forbidden"},
			{"GET", "/v1/orders?customer_id=" + owner, "", 403, "forbidden"},
			{"POST", "/v1/orders", orderBody(owner), 403, "forbidden"},
		} {
			r := call(t, srv.URL, c.method, c.path, c.body, as.token)
			if r.status != c.status || r.problem != "https://orderflow.dev/problems/"+c.problem {
				t.Errorf("%s %s as another customer: %d %s, want %d %s", c.method, c.path, r.status, r.problem, c.status, c.problem)
			}
		}
		// Its list is its own.
		var list struct {
			Orders []struct {
				OrderID string `json:"order_id"`
			} `json:"orders"`
		}
		r := call(t, srv.URL, "GET", "/v1/orders", "", as.token)
		if err := json.Unmarshal(r.body, &list); err != nil || r.status != 200 || len(list.Orders) != 1 || list.Orders[0].OrderID != theirs {
			t.Errorf("another customer's list: %d %s", r.status, r.body)
		}
	})

	t.Run("an Idempotency-Key belongs to its subject", func(t *testing.T) {
		// Two customers sending the same key each get their own order: not
		// the other's replay, not idempotency-key-reused.
		ids := map[string]bool{}
		for _, as := range []who{customer, otherCustomer} {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/orders", strings.NewReader(orderBody(as.p.Subject)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+as.token)
			req.Header.Set("Idempotency-Key", "same-key-for-both")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var out struct {
				OrderID string `json:"order_id"`
			}
			_ = json.NewDecoder(res.Body).Decode(&out)
			_ = res.Body.Close()
			if res.StatusCode != http.StatusCreated || res.Header.Get("Idempotent-Replayed") != "" {
				t.Errorf("%s with a key another subject used: %d, replayed %q", as.p.Subject, res.StatusCode, res.Header.Get("Idempotent-Replayed"))
			}
			ids[out.OrderID] = true
		}
		if len(ids) != 2 {
			t.Errorf("two subjects' creations under one key made orders %v, want two", ids)
		}
	})

	t.Run("channels", func(t *testing.T) {
		stream, _ := auth.RouteRule("GET /v1/stream")
		channels := map[string]struct {
			kind, id, owner string
		}{
			"orders":                           {auth.ChannelOrders, "", ""},
			"customer:" + owner:                {auth.ChannelCustomer, owner, ""},
			"customer:" + other:                {auth.ChannelCustomer, other, ""},
			"order:" + mine:                    {auth.ChannelOrder, mine, owner},
			"order:" + theirs:                  {auth.ChannelOrder, theirs, other},
			"order:01ARZ3NDEKTSV4RRFFQ69G5FAV": {auth.ChannelOrder, "01ARZ3NDEKTSV4RRFFQ69G5FAV", ""},
		}
		for _, w := range principals {
			h := http.Header{}
			if w.token != "" {
				h.Set("Authorization", "Bearer "+w.token)
			}
			ws, res, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr+"/v1/stream", h)
			_, granted := stream.ScopeFor(w.p)
			switch {
			case w.token == "":
				if err == nil || res == nil || res.StatusCode != 401 {
					t.Errorf("upgrade as %s: %v, want 401", w.name, err)
				}
				continue
			case !granted:
				if err == nil || res == nil || res.StatusCode != 403 {
					t.Errorf("upgrade as %s: %v, want 403", w.name, err)
				}
				continue
			case err != nil:
				t.Errorf("upgrade as %s: %v", w.name, err)
				continue
			}
			for ch, c := range channels {
				want := "subscribed"
				if err := auth.ChannelAccess(w.p, c.kind, c.id, func() (string, error) { return c.owner, nil }); err == auth.ErrForbidden {
					want = "forbidden"
				} else if err == auth.ErrNotFound {
					want = "not_found"
				}
				if got := subscribeOnce(t, ws, ch); got != want {
					t.Errorf("%s subscribing to %s: %s, want %s", w.name, ch, got, want)
				}
			}
			_ = ws.Close()
		}
	})
}

const itemBody = `{"sku":"SKU-2","name":"A pen","quantity":1,"unit_price_minor":300}`

func orderBody(customer string) string {
	return `{"customer_id":"` + customer + `","currency":"EUR","items":[{"sku":"SKU-1","name":"A book","quantity":1,"unit_price_minor":1250}]}`
}

// bodies of the commands, as a permitted caller sends them.
var bodies = map[string]string{
	"/v1/orders/{id}/items":    itemBody,
	"/v1/orders/{id}/payments": `{"amount_minor":1250,"currency":"EUR","reference":"psp-1"}`,
	"/v1/orders/{id}/ship":     `{"carrier":"DHL","tracking_number":"0034"}`,
	"/v1/orders/{id}/cancel":   `{"reason":"the walk"}`,
}

func checkRoute(t *testing.T, srv *testenv.Server, rule auth.Rule, method, path string, w who, mine string) {
	base := srv.URL
	if rule.Ops {
		base = srv.OpsURL
	}
	target := strings.NewReplacer("{id}", mine, "{sku}", "SKU-1").Replace(path)
	switch path {
	case "/v1/customers/{id}/stats":
		target = "/v1/customers/" + cmp.Or(w.p.Subject, "c-owner") + "/stats"
	case "/v1/stats/sales":
		target += "?from=2026-01-01&to=2026-12-31"
	case "/v1/stream":
		return // the channels subtest dials it
	}
	body := bodies[path]
	if path == "/v1/orders" && method == "POST" {
		body = orderBody(w.p.Subject)
	}
	r := call(t, base, method, target, body, w.token)
	scope, granted := rule.ScopeFor(w.p)
	switch {
	case rule.Public:
		if r.status == 401 || r.status == 403 {
			t.Errorf("a public route answered %d %s", r.status, r.problem)
		}
	case w.token == "":
		if r.status != 401 || !strings.HasPrefix(r.challenge, `Bearer realm="orderflow"`) {
			t.Errorf("anonymous: %d %q, want 401 with a Bearer challenge", r.status, r.challenge)
		}
	case !granted:
		if r.status != 403 || !strings.Contains(r.challenge, `error="insufficient_scope"`) {
			t.Errorf("%d %s %q, want 403 insufficient_scope", r.status, r.problem, r.challenge)
		}
	default:
		if r.status == 401 || r.status == 403 || (scope == auth.OwnOrder && r.problem == "https://orderflow.dev/problems/order-not-found") {
			t.Errorf("the rule grants %v, but the answer is %d %s: %s", w.p.Roles, r.status, r.problem, r.body)
		}
	}
	if path == "/" {
		return // HTML, which the validator does not read
	}
	if err := openapitest.ValidateExchange(t, r.req, []byte(body), r.res, r.body); err != nil && r.status < 300 {
		t.Errorf("request the document rejects: %v", err)
	}
}

type reply struct {
	req       *http.Request
	res       *http.Response
	status    int
	problem   string
	challenge string
	body      []byte
}

func call(t *testing.T, base, method, path, body, token string) reply {
	t.Helper()
	req, err := http.NewRequest(method, base+path, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: testenv.Patience}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = res.Body.Close() }()
	b, _ := io.ReadAll(res.Body)
	var p struct {
		Type string `json:"type"`
	}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/problem+json") {
		_ = json.Unmarshal(b, &p)
	}
	return reply{req: req, res: res, status: res.StatusCode, problem: p.Type, challenge: res.Header.Get("WWW-Authenticate"), body: b}
}

func createOrder(t *testing.T, srv *testenv.Server, as who) string {
	t.Helper()
	r := call(t, srv.URL, "POST", "/v1/orders", orderBody(as.p.Subject), as.token)
	var out struct {
		OrderID string `json:"order_id"`
	}
	if err := json.Unmarshal(r.body, &out); err != nil || r.status != http.StatusCreated {
		srv.Fatalf(t, "create as %s: %d %s", as.p.Subject, r.status, r.body)
	}
	return out.OrderID
}

// waitFor waits until path answers 200 (a read model has caught up).
func waitFor(t *testing.T, srv *testenv.Server, as who, path string) {
	t.Helper()
	deadline := time.Now().Add(testenv.Patience)
	for call(t, srv.URL, "GET", path, "", as.token).status != http.StatusOK {
		if time.Now().After(deadline) {
			srv.Fatalf(t, "%s never answered 200", path)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// subscribeOnce subscribes to ch and returns "subscribed" or the error
// code of the answer, skipping events of earlier subscriptions.
func subscribeOnce(t *testing.T, ws *websocket.Conn, ch string) string {
	t.Helper()
	if err := ws.WriteJSON(map[string]string{"type": "subscribe", "channel": ch}); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(testenv.Patience))
	for {
		var f struct{ Type, Channel, Code string }
		if err := ws.ReadJSON(&f); err != nil {
			t.Fatalf("subscribe %s: %v", ch, err)
		}
		if f.Channel != ch || f.Type == "event" {
			continue
		}
		if f.Type == "error" {
			return f.Code
		}
		return f.Type
	}
}
