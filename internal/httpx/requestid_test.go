package httpx_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/internal/httpx"
)

var discard = slog.New(slog.DiscardHandler)

func TestRequestAndCorrelationIDs(t *testing.T) {
	var seen struct{ id, corr, corrHeader string }
	h := httpx.Middleware(discard, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.id, seen.corr = httpx.RequestID(r.Context()), httpx.CorrelationID(r.Context())
		seen.corrHeader = r.Header.Get(httpx.HeaderCorrelationID)
	}))
	isULID := func(s string) bool { _, err := ulid.ParseStrict(s); return err == nil }
	tests := []struct {
		name, requestID, correlationID string
		keepID                         bool
		wantCorr                       string // "" means: the request id
	}{
		{"a sane request id is kept, and the correlation defaults to it", "req-7f3a:1", "", true, ""},
		{"a request id with spaces and markup is replaced by a server ULID", "evil id <script>", "", false, ""},
		{"a request id over the length limit is replaced", strings.Repeat("a", httpx.MaxIDLen+1), "", false, ""},
		{"a request id with a control character is replaced", "abc\x01def", "", false, ""},
		{"no request id gets a server ULID", "", "", false, ""},
		{"a sane correlation id is kept", "r1", "corr_42.a-b", true, "corr_42.a-b"},
		{"a bad correlation id becomes the request id", "r2", "<img src=x>", true, ""},
		{"an oversized correlation id becomes the request id", "r3", strings.Repeat("c", 200), true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.requestID != "" {
				req.Header.Set(httpx.HeaderRequestID, tt.requestID)
			}
			if tt.correlationID != "" {
				req.Header.Set(httpx.HeaderCorrelationID, tt.correlationID)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			echoed := rec.Header().Get(httpx.HeaderRequestID)
			if echoed != seen.id {
				t.Errorf("echoed %q, context %q", echoed, seen.id)
			}
			if tt.keepID && seen.id != tt.requestID {
				t.Errorf("request id %q, want the client's %q", seen.id, tt.requestID)
			}
			if !tt.keepID && !isULID(seen.id) {
				t.Errorf("request id %q, want a server ULID", seen.id)
			}
			want := tt.wantCorr
			if want == "" {
				want = seen.id
			}
			if seen.corr != want || seen.corrHeader != want {
				t.Errorf("correlation id %q (header %q), want %q", seen.corr, seen.corrHeader, want)
			}
		})
	}
}

// FuzzValidID: whatever a client sends, the ids the middleware keeps are
// valid, and a valid id is exactly one of the allowed characters, bounded.
func FuzzValidID(f *testing.F) {
	for _, s := range []string{"01JD4T0S6W7Q3C2N7ZJ0B5A9XK", "3fa85f64-5717-4562-b3fc-2c963f66afa6", "evil id <script>", "", "a:b.c_d-e", "\r\nSet-Cookie: x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ok := httpx.ValidID(s)
		if ok != (len(s) >= 1 && len(s) <= httpx.MaxIDLen && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:") == "") {
			t.Fatalf("ValidID(%q) = %v", s, ok)
		}
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set(httpx.HeaderRequestID, s)
		req.Header.Set(httpx.HeaderCorrelationID, s)
		var id, corr string
		httpx.Middleware(discard, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			id, corr = httpx.RequestID(r.Context()), httpx.CorrelationID(r.Context())
		})).ServeHTTP(httptest.NewRecorder(), req)
		if !httpx.ValidID(id) || !httpx.ValidID(corr) || (ok && (id != s || corr != s)) {
			t.Fatalf("client %q: request id %q, correlation %q", s, id, corr)
		}
	})
}
