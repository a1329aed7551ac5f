package auth

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/orderflow/orderflow/internal/httpx"
)

// Role is what a principal is allowed to do, named in the token's roles
// claim. Unknown role names in a token are ignored.
type Role string

// The roles (README "Authentication and authorization" has what each may
// do; rules.go is the rule table).
const (
	Customer Role = "customer"
	Staff    Role = "staff"
	Analyst  Role = "analyst"
	Admin    Role = "admin"
)

// Roles lists every role, in the order the README's table shows them.
var Roles = []Role{Customer, Staff, Analyst, Admin}

// ParseRoles turns "customer,staff" (or repeated values) into roles,
// refusing unknown names: what a person types into `orderflow token`.
func ParseRoles(values ...string) ([]Role, error) {
	var out []Role
	for _, v := range values {
		for _, name := range strings.Split(v, ",") {
			name = strings.TrimSpace(name)
			if name == "" {
				continue
			}
			r := Role(name)
			if !slices.Contains(Roles, r) {
				return nil, fmt.Errorf("unknown role %q (want %s)", name, roleList())
			}
			if !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

func roleList() string {
	names := make([]string, len(Roles))
	for i, r := range Roles {
		names[i] = string(r)
	}
	return strings.Join(names, ", ")
}

// Principal is who a verified token says sent the request.
type Principal struct {
	// Subject is the token's sub: for a customer, its customer id.
	Subject string
	// Roles are the known roles the token grants, without duplicates.
	Roles []Role
	// Expires is the token's exp: a WebSocket opened with it is closed then.
	Expires time.Time
}

// Has reports whether p holds role r.
func (p Principal) Has(r Role) bool { return slices.Contains(p.Roles, r) }

type ctxKey int

const (
	principalKey ctxKey = iota
	failureKey
)

// WithPrincipal records p as the request's principal, and its subject as
// the actor (httpx.WithActor): the rate limits and the WebSocket
// connection caps count per subject from then on, and events record who
// caused them. Authenticate calls it for a verified token; tests call it to
// stand in for one.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return httpx.WithActor(context.WithValue(ctx, principalKey, p), p.Subject)
}

// FromContext returns the principal WithPrincipal recorded; false for an
// anonymous request.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey).(Principal)
	return p, ok
}

// withFailure records why the request's credentials were refused, for the
// route's rule to answer with (a public route ignores it).
func withFailure(ctx context.Context, err *TokenError) context.Context {
	return context.WithValue(ctx, failureKey, err)
}

func failureFrom(ctx context.Context) *TokenError {
	err, _ := ctx.Value(failureKey).(*TokenError)
	return err
}
