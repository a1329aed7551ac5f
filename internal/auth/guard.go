package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"

	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/internal/httpx"
)

// OrderOwners tells whose an order is. StoreOwners reads it from the event
// store.
type OrderOwners interface {
	// OrderOwner returns the customer id of order id, "" when there is no
	// such order.
	OrderOwner(ctx context.Context, id ulid.ULID) (string, error)
}

// Guard serves routes behind their rules (routeRules). Requests reach it
// after Authenticate.
type Guard struct {
	owners OrderOwners
	log    *slog.Logger

	mu      sync.Mutex
	unruled []string
}

// NewGuard returns a Guard that asks owners whose an order is.
func NewGuard(owners OrderOwners, log *slog.Logger) *Guard {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Guard{owners: owners, log: log}
}

// Unruled lists the patterns registered through the Guard that the rule
// table does not know: they are refused to everyone, and serve refuses to
// start with any.
func (g *Guard) Unruled() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.unruled)
}

// Registrar is what the APIs register on: *http.ServeMux, httpx's
// LimitedMux, or a Guard's Mux over either.
type Registrar interface {
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// Mux returns a Registrar that registers every route on reg behind its
// rule: reg's own wrapping (a rate limit) runs first, then the rule, then
// the handler.
func (g *Guard) Mux(reg Registrar) Registrar { return guardedMux{g: g, reg: reg} }

type guardedMux struct {
	g   *Guard
	reg Registrar
}

func (m guardedMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.reg.HandleFunc(pattern, m.g.Protect(pattern, http.HandlerFunc(h)).ServeHTTP)
}

// Protect returns h behind pattern's rule. A pattern without a rule is
// answered 403 for everyone (fail closed) and listed by Unruled.
func (g *Guard) Protect(pattern string, h http.Handler) http.Handler {
	rule, ok := RouteRule(pattern)
	if !ok {
		g.mu.Lock()
		g.unruled = append(g.unruled, pattern)
		g.mu.Unlock()
		g.log.Error("auth: a route without an access rule is refused to everyone; add it to internal/auth's rule table", "route", pattern)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeForbidden(w, r, "this route has no access rule", false)
		})
	}
	if rule.Public {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := FromContext(r.Context())
		if !ok {
			writeUnauthenticated(w, r, failureFrom(r.Context()))
			return
		}
		scope, ok := rule.ScopeFor(p)
		if !ok {
			writeForbidden(w, r, "this route is for "+rule.roleNames(), true)
			return
		}
		if r, ok = g.narrow(w, r, p, scope); ok {
			h.ServeHTTP(w, r)
		}
	})
}

// narrow applies a scoped grant: it answers the request itself and returns
// false when the subject may not have it, or returns the request to serve.
func (g *Guard) narrow(w http.ResponseWriter, r *http.Request, p Principal, scope Scope) (*http.Request, bool) {
	switch scope {
	case OwnOrder:
		id, err := ulid.ParseStrict(r.PathValue("id"))
		if err != nil {
			return r, true // the handler answers 400 invalid-order-id, as for anyone
		}
		owner, err := g.owners.OrderOwner(r.Context(), id)
		if err != nil {
			g.log.WarnContext(r.Context(), "auth: order owner look-up failed", "err", err, "request_id", httpx.RequestID(r.Context()))
			httpx.WriteProblem(w, r, httpx.Unavailable("Temporarily unavailable", "whose this order is could not be read; retry"))
			return nil, false
		}
		if owner == "" || owner != p.Subject {
			httpx.WriteProblem(w, r, httpx.OrderNotFound())
			return nil, false
		}
	case OwnCustomer:
		if r.PathValue("id") != p.Subject {
			writeForbidden(w, r, "a customer reads its own statistics only", false)
			return nil, false
		}
	case OwnList:
		q := r.URL.Query()
		ids, named := q["customer_id"]
		for _, id := range ids {
			if id != p.Subject {
				writeForbidden(w, r, "a customer lists its own orders only: leave customer_id out or name yourself", false)
				return nil, false
			}
		}
		if !named {
			q.Set("customer_id", p.Subject)
			u := *r.URL
			u.RawQuery = q.Encode()
			r2 := *r
			r2.URL = &u
			r = &r2
		}
	case OwnBody:
		owner, ok := bodyCustomer(r)
		if ok && owner != p.Subject {
			writeForbidden(w, r, "a customer creates orders for itself: customer_id must be your token's subject", false)
			return nil, false
		}
	}
	return r, true
}

// bodyCustomer reads the customer_id of the request's JSON body and puts
// the body back for the handler. ok is false when the body is too large or
// not a JSON object with a string customer_id: the handler then refuses it
// (400, 413, 415 or 422) without writing anything, so nothing is let
// through that the check could not see. When both parse it, they read the
// same customer_id: the handler decodes the same bytes with the same
// encoding/json rules into a field of the same name (matched the same
// case-insensitive way; the last of duplicate keys wins in both).
func bodyCustomer(r *http.Request) (string, bool) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, httpx.MaxBody+1))
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(raw), r.Body), r.Body}
	if err != nil || len(raw) > httpx.MaxBody {
		return "", false
	}
	var b struct {
		CustomerID *string `json:"customer_id"`
	}
	if json.Unmarshal(raw, &b) != nil {
		return "", false
	}
	if b.CustomerID == nil {
		return "", true // no customer_id: not this subject's (the handler would answer 422)
	}
	return *b.CustomerID, true
}

// ChannelAccess decides a subscribe: nil, ErrForbidden or ErrNotFound.
// owner returns the customer of the order an order:<id> channel names (""
// when there is no such order); it is only called for a customer's
// subscription to one.
func ChannelAccess(p Principal, kind, id string, owner func() (string, error)) error {
	rule, ok := ChannelRule(kind)
	if !ok {
		return ErrForbidden
	}
	scope, ok := rule.ScopeFor(p)
	if !ok {
		return ErrForbidden
	}
	switch scope {
	case OwnCustomer:
		if id != p.Subject {
			return ErrForbidden
		}
	case OwnOrder:
		o, err := owner()
		if err != nil {
			return err
		}
		if o == "" || o != p.Subject {
			return ErrNotFound
		}
	}
	return nil
}

// Errors of ChannelAccess.
var (
	ErrForbidden = &accessError{"forbidden"}
	ErrNotFound  = &accessError{"not found"}
)

type accessError struct{ s string }

func (e *accessError) Error() string { return e.s }
