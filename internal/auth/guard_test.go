package auth_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/httpx"
)

type owners map[ulid.ULID]string

func (o owners) OrderOwner(_ context.Context, id ulid.ULID) (string, error) { return o[id], nil }

// guarded is a few real patterns behind a Guard and Authenticate, whose
// handlers echo what they were given.
type guarded struct {
	srv   *httptest.Server
	guard *auth.Guard
	ed    func(sub string, roles ...string) string
}

func newGuarded(t *testing.T, own owners) *guarded {
	t.Helper()
	k := keys()
	srv := newJWKSServer(t, map[string]any{"ed": k.ed.Public()})
	v := newVerifier(t, auth.Config{KeyFiles: nil, JWKSURL: srv.URL, UnknownKeyInterval: time.Hour})
	g := auth.NewGuard(own, nil)
	mux := http.NewServeMux()
	echo := func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		p, _ := auth.FromContext(r.Context())
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"query": r.URL.RawQuery, "body": string(body), "sub": p.Subject, "actor": httpx.Actor(r.Context())})
	}
	routes := g.Mux(mux)
	for _, p := range []string{"GET /healthz", "POST /v1/orders", "GET /v1/orders", "GET /v1/orders/{id}", "POST /v1/orders/{id}/ship",
		"GET /v1/customers/{id}/stats", "GET /v1/stream", "GET /v1/secret-new-route"} {
		routes.HandleFunc(p, echo)
	}
	s := httptest.NewServer(auth.Authenticate(v, mux))
	t.Cleanup(s.Close)
	return &guarded{srv: s, guard: g, ed: func(sub string, roles ...string) string {
		c := claims()
		c["sub"], c["roles"] = sub, roles
		return sign(t, jwt.SigningMethodEdDSA, "ed", k.ed, c)
	}}
}

type answer struct {
	status    int
	challenge string
	problem   httpx.Problem
	echo      map[string]string
}

func (g *guarded) do(t *testing.T, method, path, body string, header ...string) answer {
	t.Helper()
	req, _ := http.NewRequest(method, g.srv.URL+path, strings.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	raw, _ := io.ReadAll(res.Body)
	a := answer{status: res.StatusCode, challenge: res.Header.Get("WWW-Authenticate")}
	if res.StatusCode == http.StatusOK {
		_ = json.Unmarshal(raw, &a.echo)
	} else {
		_ = json.Unmarshal(raw, &a.problem)
	}
	return a
}

func TestTheGuardAnswersEachDenialAsDocumented(t *testing.T) {
	mine, theirs := ulid.Make(), ulid.Make()
	g := newGuarded(t, owners{mine: "c-42", theirs: "c-7"})
	customer := "Bearer " + g.ed("c-42", "customer")
	staff := "Bearer " + g.ed("s-1", "staff")
	expired := claims()
	expired["exp"] = now.Add(-time.Hour).Unix()
	expiredTok := "Bearer " + sign(t, jwt.SigningMethodEdDSA, "ed", keys().ed, expired)

	t.Run("no token is 401 with a bare challenge", func(t *testing.T) {
		a := g.do(t, "GET", "/v1/orders", "")
		if a.status != 401 || a.challenge != `Bearer realm="orderflow"` || a.problem.Type != httpx.ProblemTypeBase+"unauthenticated" {
			t.Fatalf("%+v", a)
		}
	})
	t.Run("an expired token is 401 invalid_token saying so", func(t *testing.T) {
		a := g.do(t, "GET", "/v1/orders", "", "Authorization", expiredTok)
		if a.status != 401 || a.challenge != `Bearer realm="orderflow", error="invalid_token", error_description="the token has expired"` {
			t.Fatalf("%+v", a)
		}
	})
	t.Run("another scheme is 401 with a bare challenge", func(t *testing.T) {
		if a := g.do(t, "GET", "/v1/orders", "", "Authorization", "Basic YTpi"); a.status != 401 || a.challenge != `Bearer realm="orderflow"` {
			t.Fatalf("%+v", a)
		}
	})
	t.Run("two Authorization headers are 400 invalid_request", func(t *testing.T) {
		a := g.do(t, "GET", "/v1/orders", "", "Authorization", customer, "Authorization", staff)
		if a.status != 400 || !strings.Contains(a.challenge, `error="invalid_request"`) {
			t.Fatalf("%+v", a)
		}
	})
	t.Run("a public route answers whatever the token", func(t *testing.T) {
		if a := g.do(t, "GET", "/healthz", "", "Authorization", expiredTok); a.status != 200 {
			t.Fatalf("%+v", a)
		}
	})
	t.Run("a role the route does not grant is 403 insufficient_scope", func(t *testing.T) {
		a := g.do(t, "POST", "/v1/orders/"+mine.String()+"/ship", "", "Authorization", customer)
		if a.status != 403 || !strings.Contains(a.challenge, `error="insufficient_scope"`) {
			t.Fatalf("%+v", a)
		}
	})
	t.Run("a token without roles is 403", func(t *testing.T) {
		if a := g.do(t, "GET", "/v1/orders/"+mine.String(), "", "Authorization", "Bearer "+g.ed("c-42")); a.status != 403 {
			t.Fatalf("%+v", a)
		}
	})
	t.Run("the principal is the actor: rate limits and events count per subject", func(t *testing.T) {
		a := g.do(t, "GET", "/v1/orders/"+mine.String(), "", "Authorization", customer)
		if a.status != 200 || a.echo["sub"] != "c-42" || a.echo["actor"] != "c-42" {
			t.Fatalf("%+v", a)
		}
	})
	t.Run("another customer's order is the plain 404 of an order that does not exist", func(t *testing.T) {
		other := g.do(t, "GET", "/v1/orders/"+theirs.String(), "", "Authorization", customer)
		none := g.do(t, "GET", "/v1/orders/"+ulid.Make().String(), "", "Authorization", customer)
		want := *httpx.OrderNotFound()
		for _, a := range []answer{other, none} {
			a.problem.Instance = ""
			if a.status != 404 || a.problem.Type != want.Type || a.problem.Title != want.Title || a.problem.Detail != want.Detail {
				t.Fatalf("%+v, want %+v", a, want)
			}
		}
		if a := g.do(t, "GET", "/v1/orders/"+theirs.String(), "", "Authorization", staff); a.status != 200 {
			t.Fatalf("staff: %+v", a)
		}
	})
	t.Run("a path id that is not a ULID goes on to the handler's 400", func(t *testing.T) {
		if a := g.do(t, "GET", "/v1/orders/nope", "", "Authorization", customer); a.status != 200 {
			t.Fatalf("%+v", a)
		}
	})
	t.Run("another customer's statistics are 403", func(t *testing.T) {
		if a := g.do(t, "GET", "/v1/customers/c-7/stats", "", "Authorization", customer); a.status != 403 {
			t.Fatalf("%+v", a)
		}
		if a := g.do(t, "GET", "/v1/customers/c-42/stats", "", "Authorization", customer); a.status != 200 {
			t.Fatalf("%+v", a)
		}
	})
	t.Run("a customer's list is narrowed to itself; naming another is 403", func(t *testing.T) {
		if a := g.do(t, "GET", "/v1/orders?status=paid", "", "Authorization", customer); a.status != 200 || a.echo["query"] != "customer_id=c-42&status=paid" {
			t.Fatalf("%+v", a)
		}
		for _, q := range []string{"customer_id=c-7", "customer_id=c-42&customer_id=c-7"} {
			if a := g.do(t, "GET", "/v1/orders?"+q, "", "Authorization", customer); a.status != 403 {
				t.Fatalf("%s: %+v", q, a)
			}
		}
		if a := g.do(t, "GET", "/v1/orders", "", "Authorization", staff); a.status != 200 || a.echo["query"] != "" {
			t.Fatalf("staff: %+v", a)
		}
	})
	t.Run("a customer creates orders for itself only, whatever the JSON tricks", func(t *testing.T) {
		for _, body := range []string{
			`{"customer_id":"c-7","currency":"EUR"}`,
			`{"customer_id":"c-42","CUSTOMER_ID":"c-7"}`, // encoding/json matches case-insensitively, the last wins
			`{"customer_id":"c-42","customer_id":"c-7"}`,
			`{"Customer_Id":"c-7"}`,
			`{"currency":"EUR"}`,
			`null`,
		} {
			if a := g.do(t, "POST", "/v1/orders", body, "Authorization", customer); a.status != 403 {
				t.Errorf("%s: %+v", body, a)
			}
		}
		body := `{"customer_id":"c-7","customer_id":"c-42","currency":"EUR"}`
		if a := g.do(t, "POST", "/v1/orders", body, "Authorization", customer); a.status != 200 || a.echo["body"] != body {
			t.Errorf("own order: %+v", a)
		}
		// What the check cannot read goes to the handler whole, which
		// refuses it (malformed, too large) without writing anything.
		big := `{"customer_id":"c-7","pad":"` + strings.Repeat("x", httpx.MaxBody) + `"}`
		for _, body := range []string{`{"customer_id":`, big, ``} {
			if a := g.do(t, "POST", "/v1/orders", body, "Authorization", customer); a.status != 200 || a.echo["body"] != body {
				t.Errorf("unreadable body %.40q: %d, body passed on whole: %v", body, a.status, a.echo["body"] == body)
			}
		}
	})
	t.Run("a WebSocket upgrade may carry the token as a subprotocol", func(t *testing.T) {
		a := g.do(t, "GET", "/v1/stream", "", "Upgrade", "websocket", "Sec-WebSocket-Protocol", "orderflow.v1, bearer."+g.ed("c-42", "customer"))
		if a.status != 200 || a.echo["sub"] != "c-42" {
			t.Fatalf("%+v", a)
		}
		if a := g.do(t, "GET", "/v1/stream", "", "Sec-WebSocket-Protocol", "bearer."+g.ed("c-42", "customer")); a.status != 401 {
			t.Fatalf("a subprotocol token outside an upgrade: %+v", a)
		}
	})
	t.Run("a route missing from the rule table is refused to everyone and reported", func(t *testing.T) {
		if a := g.do(t, "GET", "/v1/secret-new-route", "", "Authorization", "Bearer "+g.ed("root", "customer", "staff", "analyst", "admin")); a.status != 403 {
			t.Fatalf("%+v", a)
		}
		if u := g.guard.Unruled(); len(u) != 1 || u[0] != "GET /v1/secret-new-route" {
			t.Fatalf("Unruled = %v", u)
		}
	})
}

func TestChannelAccess(t *testing.T) {
	owner := func(o string) func() (string, error) { return func() (string, error) { return o, nil } }
	customer := auth.Principal{Subject: "c-42", Roles: []auth.Role{auth.Customer}}
	staff := auth.Principal{Subject: "s", Roles: []auth.Role{auth.Staff}}
	analyst := auth.Principal{Subject: "a", Roles: []auth.Role{auth.Analyst}}
	admin := auth.Principal{Subject: "root", Roles: []auth.Role{auth.Admin}}
	tests := []struct {
		name     string
		p        auth.Principal
		kind, id string
		owner    string
		want     error
	}{
		{"a customer may not read the firehose", customer, auth.ChannelOrders, "", "", auth.ErrForbidden},
		{"staff reads the firehose", staff, auth.ChannelOrders, "", "", nil},
		{"an analyst reads the firehose", analyst, auth.ChannelOrders, "", "", nil},
		{"an admin reads no order data", admin, auth.ChannelOrders, "", "", auth.ErrForbidden},
		{"a customer reads its own channel", customer, auth.ChannelCustomer, "c-42", "", nil},
		{"a customer may not read another's channel", customer, auth.ChannelCustomer, "c-7", "", auth.ErrForbidden},
		{"a customer reads its own order", customer, auth.ChannelOrder, "x", "c-42", nil},
		{"another customer's order is not found", customer, auth.ChannelOrder, "x", "c-7", auth.ErrNotFound},
		{"an order that does not exist is not found", customer, auth.ChannelOrder, "x", "", auth.ErrNotFound},
		{"staff reads any order", staff, auth.ChannelOrder, "x", "c-7", nil},
		{"an unknown kind is forbidden", staff, "everything", "", "", auth.ErrForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := auth.ChannelAccess(tt.p, tt.kind, tt.id, owner(tt.owner)); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEveryRuleNamesItsRolesOrIsPublic(t *testing.T) {
	for _, p := range auth.RoutePatterns() {
		r, _ := auth.RouteRule(p)
		if !r.Public && len(r.Grants) == 0 {
			t.Errorf("%s: neither public nor granted to a role", p)
		}
		if r.Public && len(r.Grants) > 0 {
			t.Errorf("%s: public with grants", p)
		}
	}
}
