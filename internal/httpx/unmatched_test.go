package httpx_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/orderflow/orderflow/internal/httpx"
)

func TestUnmatchedRequestsGetProblems(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/orders/{id}/place", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("GET /v1/orders/{id}", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	httpx.HandleUnmatched(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	tests := []struct {
		name, method, path string
		status             int
		slug, allow        string
	}{
		{"a served route passes through", http.MethodPost, "/v1/orders/x/place", http.StatusOK, "", ""},
		{"an unknown path is a 404 problem", http.MethodGet, "/v2/nothing", http.StatusNotFound, "not-found", ""},
		{"another method on a known path is a 405 problem with Allow", http.MethodPut, "/v1/orders/x/place", http.StatusMethodNotAllowed, "method-not-allowed", "POST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = resp.Body.Close() }()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.slug == "" {
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("Content-Type %q", ct)
			}
			var p httpx.Problem
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || p.Type != httpx.ProblemTypeBase+tt.slug || p.Status != tt.status {
				t.Fatalf("problem %+v, %v", p, err)
			}
			if tt.allow != "" && resp.Header.Get("Allow") == "" {
				t.Fatal("405 without Allow")
			}
		})
	}
}
