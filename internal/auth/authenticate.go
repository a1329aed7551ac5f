package auth

import (
	"net/http"
	"strings"

	"github.com/orderflow/orderflow/internal/httpx"
)

// WebSocket subprotocols. A browser cannot set an Authorization header on
// a WebSocket, so it offers its token as a subprotocol beside the
// protocol's own: new WebSocket(url, ["orderflow.v1", "bearer." + token]).
// The hub answers with orderflow.v1 and never echoes the token. The token
// never enters a URL (which access logs, proxies and browser history
// keep), and it works on any hub node behind a plain load balancer, which
// a single-use ticket would need shared state for (README, "WebSocket
// authentication").
const (
	StreamProtocol       = "orderflow.v1"
	BearerProtocolPrefix = "bearer."
)

// Authenticate verifies the request's bearer token, if it has one, and
// records the result for the routes' rules: the principal (WithPrincipal:
// from then on the rate limits count per subject), or why the token was
// refused. It refuses nothing itself, so public routes (health, the
// document, the dashboard's files) answer whatever a client sends. The
// token is read from the Authorization header or, on a WebSocket upgrade
// without one, from a "bearer.<token>" subprotocol; it is never logged.
func Authenticate(v *Verifier, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, failure := bearer(r)
		switch {
		case failure != nil:
			r = r.WithContext(withFailure(r.Context(), failure))
		case token != "":
			p, err := v.Verify(r.Context(), token)
			if err != nil {
				r = r.WithContext(withFailure(r.Context(), err))
			} else {
				r = r.WithContext(WithPrincipal(r.Context(), p))
			}
		}
		next.ServeHTTP(w, r)
	})
}

// bearer extracts the token: "" without one; a TokenError for an
// Authorization header that is not one bearer token.
func bearer(r *http.Request) (string, *TokenError) {
	values := r.Header.Values("Authorization")
	switch {
	case len(values) > 1:
		return "", &TokenError{Code: "invalid_request", Description: "send one Authorization header"}
	case len(values) == 1:
		scheme, token, _ := strings.Cut(values[0], " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return "", &TokenError{Description: "the Authorization scheme must be Bearer"}
		}
		token = strings.TrimSpace(token)
		if token == "" || strings.ContainsAny(token, " \t") {
			return "", &TokenError{Code: "invalid_request", Description: "Authorization: Bearer takes one token"}
		}
		return token, nil
	}
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		return "", nil
	}
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(h, ",") {
			if p = strings.TrimSpace(p); strings.HasPrefix(p, BearerProtocolPrefix) {
				return strings.TrimPrefix(p, BearerProtocolPrefix), nil
			}
		}
	}
	return "", nil
}

// realm names this server in WWW-Authenticate challenges.
const realm = "orderflow"

// writeUnauthenticated answers 401 with the RFC 6750 challenge: without an
// error code when no token was sent, with invalid_token (or
// invalid_request, which is a 400) and its description when one failed.
func writeUnauthenticated(w http.ResponseWriter, r *http.Request, failure *TokenError) {
	challenge := `Bearer realm="` + realm + `"`
	status, slug, title, detail := http.StatusUnauthorized, "unauthenticated", "Authentication required",
		"send a bearer token: Authorization: Bearer <token>"
	if failure != nil {
		if failure.Code != "" {
			challenge += `, error="` + failure.Code + `", error_description="` + failure.Description + `"`
		}
		title, detail = "Invalid credentials", failure.Description
		if failure.Code == "invalid_request" {
			status, slug, title = http.StatusBadRequest, "invalid-authorization", "Malformed Authorization header"
		}
	}
	w.Header().Set("WWW-Authenticate", challenge)
	httpx.WriteProblem(w, r, httpx.NewProblem(status, slug, title, detail))
}

// writeForbidden answers 403: a role without access (RFC 6750
// insufficient_scope), or a customer naming another customer.
func writeForbidden(w http.ResponseWriter, r *http.Request, detail string, insufficientRole bool) {
	if insufficientRole {
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm+`", error="insufficient_scope", error_description="`+detail+`"`)
	}
	httpx.WriteProblem(w, r, httpx.NewProblem(http.StatusForbidden, "forbidden", "Forbidden", detail))
}
