package auth

import (
	"maps"
	"slices"
	"strings"
)

// Scope limits what a grant covers.
type Scope int

// The scopes. Only customers' grants are scoped; every other grant covers
// all orders and customers.
const (
	// All orders, all customers.
	All Scope = iota
	// OwnOrder: the order named by the path's {id} (or the order:<id>
	// channel) belongs to the subject. Another customer's order, like an
	// order that does not exist, is 404 order-not-found (on a channel,
	// error not_found): its existence is not revealed.
	OwnOrder
	// OwnCustomer: the customer named by the path's {id} (or the
	// customer:<id> channel) is the subject; another is 403.
	OwnCustomer
	// OwnList: a list narrowed to the subject's orders: without
	// customer_id the list is the subject's; with another one, 403.
	OwnList
	// OwnBody: the request body's customer_id is the subject (a customer
	// creates orders for itself); another is 403.
	OwnBody
)

var scopeNames = map[Scope]string{All: "", OwnOrder: "own orders", OwnCustomer: "its own", OwnList: "own orders", OwnBody: "for itself"}

// Grant is one role's access to a route or channel.
type Grant struct {
	Role  Role
	Scope Scope
}

// Rule is who may use a route or a channel.
type Rule struct {
	// Public routes need no token: health, the document, the dashboard's
	// files (the page asks for a token itself).
	Public bool
	// Ops routes are served on the operations listener only, which is a
	// network boundary (loopback or a private network), not a token one:
	// Prometheus and orchestrators' probes carry no tokens.
	Ops bool
	// Grants are the roles a token needs one of (with their scope).
	Grants []Grant
}

func public() Rule     { return Rule{Public: true} }
func opsNetwork() Rule { return Rule{Public: true, Ops: true} }
func allow(gs ...Grant) Rule {
	return Rule{Grants: gs}
}
func every(r Role) Grant             { return Grant{Role: r} }
func scoped(r Role, s Scope) Grant   { return Grant{Role: r, Scope: s} }
func ops(r Rule) Rule                { r.Ops = true; return r }
func readers(extra ...Grant) []Grant { return append([]Grant{every(Staff), every(Analyst)}, extra...) }
func readRule(extra ...Grant) Rule   { return allow(readers(extra...)...) }
func staffOnly() Rule                { return allow(every(Staff)) }
func customerOwns(s Scope) Grant     { return scoped(Customer, s) }

// routeRules is THE rule table of the HTTP routes, keyed by the ServeMux
// pattern each route is registered with. The README's table
// ("Authentication and authorization") is this one, and
// cmd/orderflow's TestEveryRouteAndChannelForEveryRole walks every
// documented route with a token of every role against it. A route
// registered through a Guard without an entry here is refused to everyone.
var routeRules = map[string]Rule{
	"GET /healthz":         public(),
	"GET /readyz":          public(), // the public answer says ready or not; the operations listener's detailed one is network-restricted
	"GET /v1/openapi.yaml": public(),
	"GET /{$}":             public(), // the dashboard's page and files: the page asks for a token
	"GET /assets/":         public(),
	"GET /metrics":         opsNetwork(),
	// The Go profiler: operators' tools fetch it like Prometheus does
	// /metrics, from the network the operations listener is on.
	"GET /debug/pprof/":        opsNetwork(),
	"GET /debug/pprof/profile": opsNetwork(),
	"GET /debug/pprof/trace":   opsNetwork(),
	"GET /v1/projections":      ops(allow(every(Admin))),

	// Commands. Customers build their own orders (item changes and place
	// are only possible while an order is a draft: the domain's rules);
	// staff moves them through payment, shipping and cancellation.
	"POST /v1/orders":                    allow(customerOwns(OwnBody)),
	"POST /v1/orders/{id}/items":         allow(customerOwns(OwnOrder)),
	"DELETE /v1/orders/{id}/items/{sku}": allow(customerOwns(OwnOrder)),
	"POST /v1/orders/{id}/place":         allow(customerOwns(OwnOrder)),
	// The shipping address changes until the order ships: the customer's
	// own, or staff on its behalf.
	"POST /v1/orders/{id}/shipping-address": allow(customerOwns(OwnOrder), every(Staff)),
	// Forgetting a customer's personal data is an admin action, audited.
	"DELETE /v1/customers/{id}/personal-data": allow(every(Admin)),
	"POST /v1/orders/{id}/payments":           staffOnly(),
	"POST /v1/orders/{id}/ship":               staffOnly(),
	"POST /v1/orders/{id}/deliver":            staffOnly(),
	"POST /v1/orders/{id}/cancel":             staffOnly(),
	// The raw stream and the history carry every event's metadata (who
	// acted, request ids): staff and analysts only.
	"GET /v1/orders/{id}/events":  readRule(),
	"GET /v1/orders/{id}/history": readRule(),

	// Queries.
	"GET /v1/orders":               readRule(customerOwns(OwnList)),
	"GET /v1/orders/{id}":          readRule(customerOwns(OwnOrder)),
	"GET /v1/customers/{id}/stats": readRule(customerOwns(OwnCustomer)),
	"GET /v1/stats/sales":          allow(every(Analyst)),
	"GET /v1/stats/status":         readRule(),

	// The WebSocket upgrade: whoever may read a channel; each subscribe
	// is checked against channelRules.
	"GET /v1/stream": readRule(every(Customer)),
}

// The channel kinds of the WebSocket hub (streams/hub/doc.go).
const (
	ChannelOrders   = "orders"   // every order's events: not for customers
	ChannelCustomer = "customer" // customer:<id>
	ChannelOrder    = "order"    // order:<id>
)

// channelRules is the rule table of the WebSocket channels.
var channelRules = map[string]Rule{
	ChannelOrders:   readRule(),
	ChannelCustomer: readRule(customerOwns(OwnCustomer)),
	ChannelOrder:    readRule(customerOwns(OwnOrder)),
}

// RouteRule returns the rule of a ServeMux pattern.
func RouteRule(pattern string) (Rule, bool) {
	r, ok := routeRules[pattern]
	return r, ok
}

// RoutePatterns lists the patterns of the rule table, sorted.
func RoutePatterns() []string { return slices.Sorted(maps.Keys(routeRules)) }

// ChannelRule returns the rule of a channel kind.
func ChannelRule(kind string) (Rule, bool) {
	r, ok := channelRules[kind]
	return r, ok
}

// ChannelKinds lists the channel kinds, sorted.
func ChannelKinds() []string { return slices.Sorted(maps.Keys(channelRules)) }

// ScopeFor returns what the rule grants p: ok is false when none of p's
// roles is granted. A role granted everything wins over a scoped one, so a
// principal that is both staff and customer acts as staff.
func (r Rule) ScopeFor(p Principal) (Scope, bool) {
	scope, ok := All, false
	for _, g := range r.Grants {
		if !p.Has(g.Role) {
			continue
		}
		if g.Scope == All {
			return All, true
		}
		if !ok {
			scope, ok = g.Scope, true
		}
	}
	return scope, ok
}

// String is the rule as the README's table shows it: "public",
// "staff, analyst, customer (own orders)".
func (r Rule) String() string {
	if r.Public {
		if r.Ops {
			return "no token (operations listener: network-restricted)"
		}
		return "public"
	}
	var parts []string
	for _, g := range r.Grants {
		s := string(g.Role)
		if n := scopeNames[g.Scope]; n != "" {
			s += " (" + n + ")"
		}
		parts = append(parts, s)
	}
	out := strings.Join(parts, ", ")
	if r.Ops {
		out += " (operations listener only)"
	}
	return out
}

// roleNames lists the roles of the rule, for a 403's description.
func (r Rule) roleNames() string {
	var names []string
	for _, g := range r.Grants {
		names = append(names, string(g.Role))
	}
	return strings.Join(names, ", ")
}
