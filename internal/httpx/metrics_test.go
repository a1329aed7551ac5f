package httpx_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow/internal/httpx"
)

// TestMetricLabelsAreBounded replays the attack: 200 made-up methods and
// 200 random paths make no new series beyond one "other" method and the
// registered patterns.
func TestMetricLabelsAreBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/orders/{id}", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	httpx.HandleUnmatched(mux)
	h, err := httpx.Metrics(reg, mux)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		for _, req := range []*http.Request{
			httptest.NewRequest(fmt.Sprintf("MADEUP%d", i), "/v1/orders/x", nil),
			httptest.NewRequest(http.MethodGet, fmt.Sprintf("/v1/orders/%d", i), nil),
			httptest.NewRequest(http.MethodGet, fmt.Sprintf("/nothing/%d", i), nil),
		} {
			h.ServeHTTP(httptest.NewRecorder(), req)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]bool{}
	for _, mf := range mfs {
		if mf.GetName() != "http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			series[fmt.Sprintf("%s %s %s", labels["method"], labels["route"], labels["code"])] = true
		}
	}
	want := map[string]bool{
		"other / 405":                 true, // the made-up methods: a known path, another method
		"GET GET /v1/orders/{id} 200": true,
		"GET / 404":                   true,
	}
	if len(series) != len(want) {
		t.Errorf("series %v, want %v", series, want)
	}
	for s := range want {
		if !series[s] {
			t.Errorf("missing series %q in %v", s, series)
		}
	}
}

func TestMethodLabel(t *testing.T) {
	for m, want := range map[string]string{"GET": "GET", "PATCH": "PATCH", "OPTIONS": "OPTIONS", "get": "other", "BREW": "other", "": "other"} {
		if got := httpx.MethodLabel(m); got != want {
			t.Errorf("MethodLabel(%q) = %q, want %q", m, got, want)
		}
	}
}
