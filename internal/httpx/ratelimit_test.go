package httpx_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/orderflow/orderflow/internal/httpx"
)

// nearZero refills a bucket once in about 17 minutes: after its burst, a
// key is refused for the rest of any test, however slow the machine.
const nearZero = 0.001

func limitedServer(t *testing.T, cfg httpx.RateLimitConfig, authenticate func(*http.Request) string) (http.Handler, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	l, err := httpx.NewRateLimiter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }
	lm := l.Mux(mux)
	lm.HandleFunc("GET /v1/orders/{id}", ok)
	lm.HandleFunc("POST /v1/orders/{id}/place", ok)
	mux.Handle("GET /v1/stream", l.Limit(httpx.ClassStream, http.HandlerFunc(ok)))
	var h http.Handler = mux
	if authenticate != nil { // what the JWT layer will do: set the principal before the limiter runs
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if sub := authenticate(r); sub != "" {
				r = r.WithContext(httpx.WithActor(r.Context(), sub))
			}
			mux.ServeHTTP(w, r)
		})
	}
	return h, reg
}

func do(h http.Handler, method, path, remote string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	req.RemoteAddr = remote
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestRateLimitPerClientAndClass(t *testing.T) {
	h, reg := limitedServer(t, httpx.RateLimitConfig{Rates: map[httpx.Class]httpx.Rate{
		httpx.ClassCommands: {PerSecond: nearZero, Burst: 2},
		httpx.ClassQueries:  {PerSecond: nearZero, Burst: 3},
		httpx.ClassStream:   {PerSecond: nearZero, Burst: 1},
	}}, nil)
	const a, b = "192.0.2.1:1000", "192.0.2.2:1000"

	t.Run("a client's burst passes, the next request is 429 rate-limited with Retry-After", func(t *testing.T) {
		for i := range 2 {
			if rec := do(h, http.MethodPost, "/v1/orders/x/place", a); rec.Code != http.StatusOK {
				t.Fatalf("command %d: %d", i, rec.Code)
			}
		}
		rec := do(h, http.MethodPost, "/v1/orders/x/place", a)
		if rec.Code != http.StatusTooManyRequests {
			t.Fatalf("third command: %d, want 429", rec.Code)
		}
		if ra, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || ra < 1 {
			t.Errorf("Retry-After %q, want whole seconds ≥ 1", rec.Header().Get("Retry-After"))
		}
		var p httpx.Problem
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Type != httpx.ProblemTypeBase+"rate-limited" ||
			p.Status != http.StatusTooManyRequests || rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("problem %+v (%v), Content-Type %q", p, err, rec.Header().Get("Content-Type"))
		}
	})
	t.Run("another client has its own bucket", func(t *testing.T) {
		if rec := do(h, http.MethodPost, "/v1/orders/x/place", b); rec.Code != http.StatusOK {
			t.Errorf("other client: %d", rec.Code)
		}
	})
	t.Run("each class has its own bucket", func(t *testing.T) {
		for i := range 3 {
			if rec := do(h, http.MethodGet, "/v1/orders/x", a); rec.Code != http.StatusOK {
				t.Fatalf("query %d after the commands ran out: %d", i, rec.Code)
			}
		}
		if rec := do(h, http.MethodGet, "/v1/orders/x", a); rec.Code != http.StatusTooManyRequests {
			t.Errorf("fourth query: %d, want 429", rec.Code)
		}
		if rec := do(h, http.MethodGet, "/v1/stream", a); rec.Code != http.StatusOK {
			t.Errorf("first upgrade: %d", rec.Code)
		}
		if rec := do(h, http.MethodGet, "/v1/stream", a); rec.Code != http.StatusTooManyRequests {
			t.Errorf("second upgrade: %d, want 429", rec.Code)
		}
	})
	t.Run("refusals are counted by class", func(t *testing.T) {
		if n, err := testutil.GatherAndCount(reg, "http_rate_limited_total"); err != nil || n != 3 {
			t.Errorf("%d series (%v), want one per class", n, err)
		}
	})
}

func TestRateLimitKeysOnTheClientBehindTrustedProxiesOnly(t *testing.T) {
	clients, err := httpx.NewClients([]string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := limitedServer(t, httpx.RateLimitConfig{Key: clients.Key,
		Rates: map[httpx.Class]httpx.Rate{httpx.ClassQueries: {PerSecond: nearZero, Burst: 1}}}, nil)
	const proxy, stranger = "10.1.2.3:5000", "203.0.113.9:5000"
	if rec := do(h, http.MethodGet, "/v1/orders/x", proxy, "X-Forwarded-For", "198.51.100.1"); rec.Code != http.StatusOK {
		t.Fatalf("first client through the proxy: %d", rec.Code)
	}
	if rec := do(h, http.MethodGet, "/v1/orders/x", proxy, "X-Forwarded-For", "198.51.100.2"); rec.Code != http.StatusOK {
		t.Errorf("second client through the proxy shares the first's bucket: %d", rec.Code)
	}
	if rec := do(h, http.MethodGet, "/v1/orders/x", proxy, "X-Forwarded-For", "198.51.100.1"); rec.Code != http.StatusTooManyRequests {
		t.Errorf("first client again: %d, want 429", rec.Code)
	}
	// An untrusted peer cannot pick its key with X-Forwarded-For.
	if rec := do(h, http.MethodGet, "/v1/orders/x", stranger, "X-Forwarded-For", "198.51.100.3"); rec.Code != http.StatusOK {
		t.Fatalf("stranger: %d", rec.Code)
	}
	if rec := do(h, http.MethodGet, "/v1/orders/x", stranger, "X-Forwarded-For", "198.51.100.4"); rec.Code != http.StatusTooManyRequests {
		t.Errorf("stranger with a new X-Forwarded-For: %d, want 429", rec.Code)
	}
}

// TestRateLimitPerSubjectOnceAuthenticated: the hook for the JWT layer. A
// middleware that records the principal (WithActor) before the limiter runs
// makes the limit per subject: two subjects behind one address each get
// their own burst, and one subject on two addresses shares one.
func TestRateLimitPerSubjectOnceAuthenticated(t *testing.T) {
	h, _ := limitedServer(t, httpx.RateLimitConfig{Key: (&httpx.Clients{}).Key,
		Rates: map[httpx.Class]httpx.Rate{httpx.ClassCommands: {PerSecond: nearZero, Burst: 1}}},
		func(r *http.Request) string { return r.Header.Get("X-Test-Subject") })
	const office, home = "192.0.2.1:1", "192.0.2.77:1"
	for _, sub := range []string{"alice", "bob"} {
		if rec := do(h, http.MethodPost, "/v1/orders/x/place", office, "X-Test-Subject", sub); rec.Code != http.StatusOK {
			t.Errorf("%s: %d", sub, rec.Code)
		}
	}
	if rec := do(h, http.MethodPost, "/v1/orders/x/place", home, "X-Test-Subject", "alice"); rec.Code != http.StatusTooManyRequests {
		t.Errorf("alice from another address: %d, want 429 (her bucket is spent)", rec.Code)
	}
	if rec := do(h, http.MethodPost, "/v1/orders/x/place", office); rec.Code != http.StatusOK {
		t.Errorf("anonymous from the office: %d (the address's bucket is its own)", rec.Code)
	}
}

func TestRateLimitRemembersABoundedNumberOfClients(t *testing.T) {
	h, _ := limitedServer(t, httpx.RateLimitConfig{Keys: 2,
		Rates: map[httpx.Class]httpx.Rate{httpx.ClassQueries: {PerSecond: nearZero, Burst: 1}}}, nil)
	get := func(remote string) int { return do(h, http.MethodGet, "/v1/orders/x", remote).Code }
	if get("192.0.2.1:1") != http.StatusOK || get("192.0.2.1:1") != http.StatusTooManyRequests {
		t.Fatal("the first client's burst of one")
	}
	get("192.0.2.2:1")
	get("192.0.2.3:1") // the third key evicts the least recently seen, the first
	if code := get("192.0.2.1:1"); code != http.StatusOK {
		t.Errorf("the evicted client: %d, want 200 (a forgotten key starts with a full bucket)", code)
	}
}

func TestRateLimitConfigValidate(t *testing.T) {
	for name, cfg := range map[string]httpx.RateLimitConfig{
		"a negative rate":      {Rates: map[httpx.Class]httpx.Rate{httpx.ClassQueries: {PerSecond: -1, Burst: 1}}},
		"a rate with no burst": {Rates: map[httpx.Class]httpx.Rate{httpx.ClassQueries: {PerSecond: 1}}},
		"negative keys":        {Keys: -1},
	} {
		if cfg.Validate() == nil {
			t.Errorf("%s: valid", name)
		}
	}
	if err := (httpx.RateLimitConfig{Rates: map[httpx.Class]httpx.Rate{httpx.ClassQueries: {}}}).Validate(); err != nil {
		t.Errorf("a zero rate (off): %v", err)
	}
}
