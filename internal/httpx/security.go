package httpx

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// APIContentSecurityPolicy is the policy of every response that does not
// set its own: an API answer is data, never a document to render, run or
// frame. The dashboard's page sets its own (web.ContentSecurityPolicy),
// which replaces this one.
const APIContentSecurityPolicy = "default-src 'none'; frame-ancestors 'none'"

// SecurityHeaders sets, before next runs (so a handler may replace them),
// the headers every response carries: nosniff, no framing, no referrer, a
// same-origin opener and resource policy (CORS-allowed fetches are not
// affected by the latter: it applies to no-cors loads only), the API's
// Content-Security-Policy and, when this server terminates TLS itself,
// Strict-Transport-Security (behind a TLS-terminating proxy, the proxy
// sets it).
func SecurityHeaders(tls bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Content-Security-Policy", APIContentSecurityPolicy)
		if tls {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// ParseOrigins checks a list of Origin values: each scheme://host[:port]
// with scheme http or https, nothing after it.
func ParseOrigins(origins []string) error {
	for _, o := range origins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("origin %q: want scheme://host[:port], e.g. https://shop.example.com", o)
		}
	}
	return nil
}

// CORS headers: what a browser on an allowed origin may send and read.
var (
	corsAllowMethods  = "GET, HEAD, POST, DELETE"
	corsAllowHeaders  = "Authorization, Content-Type, If-Match, If-None-Match, Idempotency-Key, Consistency-Token, X-Request-ID, X-Correlation-ID"
	corsExposeHeaders = "ETag, Location, Consistency-Token, Consistency, Idempotent-Replayed, Retry-After, X-Request-ID"
	corsMaxAge        = strconv.Itoa(600)
)

// CORS answers cross-origin browser requests from the allowed origins: it
// adds Access-Control-Allow-Origin (and the headers they may read) to their
// responses and answers their preflights with 204. An origin not on the
// list gets no CORS header, so the browser keeps the response from the
// page; its preflight falls through to the routes (405). With no origins,
// CORS returns next: only same-origin pages (the dashboard) use the API
// from a browser. No credentials are allowed: the API uses no cookies, and
// an Authorization header needs only Allow-Headers.
func CORS(origins []string, next http.Handler) http.Handler {
	if len(origins) == 0 {
		return next
	}
	allowed := make(map[string]bool, len(origins))
	for _, o := range origins {
		allowed[strings.TrimSuffix(strings.ToLower(o), "/")] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		if origin == "" || !allowed[strings.ToLower(origin)] {
			next.ServeHTTP(w, r)
			return
		}
		h.Set("Access-Control-Allow-Origin", origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Add("Vary", "Access-Control-Request-Method, Access-Control-Request-Headers")
			h.Set("Access-Control-Allow-Methods", corsAllowMethods)
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", corsMaxAge)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		next.ServeHTTP(w, r)
	})
}

// CrossOriginProtection refuses state-changing requests (any method but
// GET, HEAD and OPTIONS) that a browser sent from another origin, with 403
// cross-origin-refused. It is net/http.CrossOriginProtection (Go 1.25):
// Sec-Fetch-Site, or failing that Origin against Host, tells a cross-site
// request from a same-origin or non-browser one (curl, a shop's backend,
// which send neither and pass). That closes the hole CORS leaves open: a
// "simple" cross-site POST (a form, or fetch without a body) reaches the
// server without a preflight. The trusted origins (the CORS allow-list)
// pass. It fits because it needs no token, no cookie and no state, and the
// API has no session for a token to bind to.
func CrossOriginProtection(trusted []string, next http.Handler) (http.Handler, error) {
	p := http.NewCrossOriginProtection()
	for _, o := range trusted {
		if err := p.AddTrustedOrigin(strings.TrimSuffix(o, "/")); err != nil {
			return nil, fmt.Errorf("cross-origin protection: %w", err)
		}
	}
	p.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteProblem(w, r, NewProblem(http.StatusForbidden, "cross-origin-refused", "Cross-origin request refused",
			"a browser sent this state-changing request from another origin; only same-origin pages and the configured origins may"))
	}))
	return p.Handler(next), nil
}
