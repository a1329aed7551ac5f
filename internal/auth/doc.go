// Package auth decides who a request comes from and what it may do.
//
// Authentication (verifier.go, authenticate.go): a bearer JWT, checked by
// github.com/golang-jwt/jwt/v5 against keys that
// github.com/MicahParks/keyfunc/v3 serves from a JWKS URL (cached,
// refreshed, at most one extra fetch per interval for an unknown key id) or
// from files (PEM public keys, JWKS documents). The algorithms are pinned
// (RS256, ES256, EdDSA), each key is bound to the one its type allows, and
// issuer, audience, expiry and not-before are required and checked with a
// small leeway. Authenticate runs before the routes: it records the
// principal (and, through httpx.WithActor, the rate limits' per-subject
// key) or why the token failed; it refuses nothing itself.
//
// Authorization (rules.go, guard.go): one table, rules.go, gives every
// route pattern and every WebSocket channel kind the roles that may use it
// and, for customers, the ownership each grant is limited to. Routes are
// registered through a Guard, which serves each pattern behind its rule; a
// pattern the table does not know is refused to everyone (fail closed) and
// reported by Guard.Unruled, which serve treats as a configuration error.
// The hub asks ChannelAccess, from the same table, before it subscribes.
//
// Denials are RFC 6750 and RFC 9457 alike: 401 problem+json with
// WWW-Authenticate: Bearer (error="invalid_token" and a description when a
// token was sent and failed), 403 for a role that is not allowed
// (error="insufficient_scope") or a customer naming another customer, and
// 404 order-not-found, exactly as for an order that does not exist, for a
// customer asking about another customer's order.
//
// Development (dev.go, mint.go): an Ed25519 key generated on first use in a
// git-ignored directory signs tokens for `orderflow token`; serve trusts it
// only with ORDERFLOW_AUTH_DEV=true.
package auth
