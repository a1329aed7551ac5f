package httpx_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/internal/httpx"
)

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /page", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'") // the dashboard sets its own
	})
	httpx.HandleUnmatched(mux)
	for _, tls := range []bool{false, true} {
		h := httpx.SecurityHeaders(tls, mux)
		for path, csp := range map[string]string{"/nothing": httpx.APIContentSecurityPolicy, "/page": "default-src 'self'"} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
				"Referrer-Policy": "no-referrer", "Cross-Origin-Resource-Policy": "same-origin", "Content-Security-Policy": csp} {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("tls=%v %s: %s = %q, want %q", tls, path, k, got, v)
				}
			}
			if hsts := rec.Header().Get("Strict-Transport-Security"); (hsts != "") != tls {
				t.Errorf("tls=%v: Strict-Transport-Security %q", tls, hsts)
			}
		}
	}
}

func TestCORSAndCrossOriginProtection(t *testing.T) {
	const allowed, evil = "https://shop.example.com", "https://evil.example.net"
	var reached int
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/orders/{id}/place", func(w http.ResponseWriter, _ *http.Request) { reached++ })
	mux.HandleFunc("GET /v1/orders/{id}", func(w http.ResponseWriter, _ *http.Request) {})
	httpx.HandleUnmatched(mux)
	protected, err := httpx.CrossOriginProtection([]string{allowed}, mux)
	if err != nil {
		t.Fatal(err)
	}
	h := httpx.CORS([]string{allowed}, protected)
	send := func(method, path string, header ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "http://api.example.com"+path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}

	t.Run("a body-less cross-site POST from a browser is refused with 403 and changes nothing", func(t *testing.T) {
		for _, hdr := range [][]string{
			{"Sec-Fetch-Site", "cross-site", "Origin", evil},
			{"Origin", evil}, // a browser too old to send Sec-Fetch-Site
		} {
			before := reached
			rec := send(http.MethodPost, "/v1/orders/x/place", hdr...)
			var p httpx.Problem
			_ = json.Unmarshal(rec.Body.Bytes(), &p)
			if rec.Code != http.StatusForbidden || p.Type != httpx.ProblemTypeBase+"cross-origin-refused" || reached != before {
				t.Errorf("%v: %d %+v, handler reached %d times", hdr, rec.Code, p, reached-before)
			}
		}
	})
	t.Run("same-origin, non-browser and allowed-origin POSTs pass", func(t *testing.T) {
		for _, hdr := range [][]string{
			{"Sec-Fetch-Site", "same-origin", "Origin", "http://api.example.com"},
			{},
			{"Origin", "http://api.example.com"},
			{"Sec-Fetch-Site", "cross-site", "Origin", allowed},
		} {
			if rec := send(http.MethodPost, "/v1/orders/x/place", hdr...); rec.Code != http.StatusOK {
				t.Errorf("%v: %d", hdr, rec.Code)
			}
		}
	})
	t.Run("a cross-site GET passes (reads change nothing; CORS keeps the answer from the page)", func(t *testing.T) {
		rec := send(http.MethodGet, "/v1/orders/x", "Sec-Fetch-Site", "cross-site", "Origin", evil)
		if rec.Code != http.StatusOK || rec.Header().Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%d, Access-Control-Allow-Origin %q", rec.Code, rec.Header().Get("Access-Control-Allow-Origin"))
		}
	})
	t.Run("an allowed origin may read, with the headers it needs exposed", func(t *testing.T) {
		rec := send(http.MethodGet, "/v1/orders/x", "Origin", allowed)
		if rec.Header().Get("Access-Control-Allow-Origin") != allowed || !strings.Contains(rec.Header().Get("Access-Control-Expose-Headers"), "Consistency-Token") {
			t.Errorf("headers %v", rec.Header())
		}
	})
	t.Run("an allowed origin's preflight is answered 204, another's is not", func(t *testing.T) {
		rec := send(http.MethodOptions, "/v1/orders/x/place", "Origin", allowed, "Access-Control-Request-Method", "POST",
			"Access-Control-Request-Headers", "content-type, idempotency-key")
		if rec.Code != http.StatusNoContent || !strings.Contains(rec.Header().Get("Access-Control-Allow-Methods"), "POST") ||
			!strings.Contains(rec.Header().Get("Access-Control-Allow-Headers"), "Idempotency-Key") {
			t.Errorf("allowed preflight: %d %v", rec.Code, rec.Header())
		}
		rec = send(http.MethodOptions, "/v1/orders/x/place", "Origin", evil, "Access-Control-Request-Method", "POST")
		if rec.Code == http.StatusNoContent || rec.Header().Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("foreign preflight: %d %v", rec.Code, rec.Header())
		}
	})
	t.Run("origins are checked", func(t *testing.T) {
		for _, o := range []string{"shop.example.com", "https://shop.example.com/path", "ftp://x", "https://"} {
			if httpx.ParseOrigins([]string{o}) == nil {
				t.Errorf("%q accepted", o)
			}
		}
		if err := httpx.ParseOrigins([]string{allowed, "http://localhost:3000"}); err != nil {
			t.Error(err)
		}
	})
}
