package health_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/health"
)

func TestPublicReadinessSaysReadyOrNotAndNothingElse(t *testing.T) {
	calls := 0
	failing := true
	c := health.New()
	c.Add("postgres", func(context.Context) (string, error) {
		calls++
		if failing {
			return "", errors.New("failed to connect to `host=db.internal user=orderflow`: dial tcp 10.0.0.5:5432: connection refused")
		}
		return "pool of 20", nil
	})
	get := func(h http.HandlerFunc) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec
	}

	detailed := get(c.Readyz)
	if detailed.Code != http.StatusServiceUnavailable || !strings.Contains(detailed.Body.String(), "connection refused") {
		t.Errorf("detailed: %d %s", detailed.Code, detailed.Body)
	}
	public := c.Public(time.Hour) // one round of checks for the whole test
	calls = 0
	rec := get(public)
	if rec.Code != http.StatusServiceUnavailable || strings.TrimSpace(rec.Body.String()) != `{"status":"not ready"}` {
		t.Errorf("public: %d %s", rec.Code, rec.Body)
	}
	failing = false
	for range 10 {
		get(public)
	}
	if calls != 1 {
		t.Errorf("the checks ran %d times for 11 public probes within the TTL, want once", calls)
	}
	if rec := get(c.Public(0)); rec.Code != http.StatusOK || strings.TrimSpace(rec.Body.String()) != `{"status":"ready"}` {
		t.Errorf("public, ready: %d %s", rec.Code, rec.Body)
	}
}

func TestADegradedCheckIsShownToOperatorsAndLeavesTheProcessReady(t *testing.T) {
	t.Parallel()
	c := health.New()
	c.Add("kafka-topics", func(context.Context) (string, error) {
		return "", health.Degraded(errors.New("topic orders.events is under-replicated"))
	})
	rec := httptest.NewRecorder()
	c.Readyz(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	body := rec.Body.String()
	if rec.Code != http.StatusOK || !strings.Contains(body, `"degraded"`) || !strings.Contains(body, "under-replicated") {
		t.Errorf("detailed: %d %s", rec.Code, body)
	}
	rec = httptest.NewRecorder()
	c.Public(0)(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusOK || strings.TrimSpace(rec.Body.String()) != `{"status":"ready"}` {
		t.Errorf("public: %d %s", rec.Code, rec.Body)
	}
}
