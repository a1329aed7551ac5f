package breaker_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/orderflow/orderflow/internal/breaker"
	"github.com/orderflow/orderflow/internal/httpx"
	"github.com/orderflow/orderflow/internal/pg"
	"github.com/orderflow/orderflow/internal/testenv"
)

func newBreaker(t *testing.T, reg prometheus.Registerer) *breaker.Breaker {
	t.Helper()
	b, err := breaker.New(breaker.Config{Dependency: "postgres", Failure: pg.Unanswered, Failures: 3, OpenFor: 50 * time.Millisecond, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func call(b *breaker.Breaker, err error) {
	if done, refused := b.Allow(); refused == nil {
		done(err)
	}
}

var down = &pgconn.ConnectError{}

func TestAnswersOfTheDependencyNeverOpenTheBreaker(t *testing.T) {
	t.Parallel()
	b := newBreaker(t, nil)
	answers := []error{
		&pgconn.PgError{Code: "23505"}, // a unique violation: a conflict
		&pgconn.PgError{Code: "P0001"}, // an exception the append function raised
		&pgconn.PgError{Code: "57014"}, // a statement timeout: the server answered
		context.Canceled,               // the client went away
		errors.New("invalid input"),
	}
	for range 10 {
		for _, err := range answers {
			call(b, err)
		}
	}
	if open, _ := b.Open(); open {
		t.Fatal("the breaker opened on errors the database answered")
	}
	// Failures interrupted by a success are not consecutive.
	for range 10 {
		call(b, down)
		call(b, down)
		call(b, nil)
	}
	if open, _ := b.Open(); open {
		t.Fatal("the breaker opened on failures that were not consecutive")
	}
}

func TestAnOpenBreakerRefusesRequestsNamesTheDependencyAndClosesAfterAProbe(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	b := newBreaker(t, reg)
	mux := http.NewServeMux()
	reached := 0
	b.Mux(mux).HandleFunc("POST /v1/orders", func(w http.ResponseWriter, _ *http.Request) { reached++; w.WriteHeader(http.StatusCreated) })
	post := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/orders", nil))
		return rec
	}
	check := b.Guard(func(context.Context) (string, error) { return "pinged", nil })

	for _, err := range []error{down, context.DeadlineExceeded, down} {
		call(b, err)
	}
	if open, _ := b.Open(); !open {
		t.Fatal("three consecutive failures did not open the breaker")
	}
	rec := post()
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Content-Type") != "application/problem+json" ||
		rec.Header().Get("Retry-After") != "1" || !strings.Contains(rec.Body.String(), "/problems/unavailable") || reached != 0 {
		t.Fatalf("while open: %d %v %s (handler reached %d times)", rec.Code, rec.Header(), rec.Body, reached)
	}
	if _, err := check(context.Background()); err == nil || !strings.Contains(err.Error(), "circuit breaker open") {
		t.Fatalf("readiness while open: %v", err)
	}
	if got := testutil.ToFloat64(reg); got != 2 {
		t.Fatalf("dependency_breaker_state = %v, want 2 (open)", got)
	}

	// After OpenFor one call is let through; its success closes it.
	deadline := time.Now().Add(testenv.Patience)
	for open, _ := b.Open(); open; open, _ = b.Open() {
		if time.Now().After(deadline) {
			t.Fatal("the breaker never let a probe through")
		}
		time.Sleep(10 * time.Millisecond)
	}
	call(b, nil)
	if rec := post(); rec.Code != http.StatusCreated || reached != 1 {
		t.Fatalf("after the probe: %d", rec.Code)
	}
	if d, err := check(context.Background()); err != nil || d != "pinged" {
		t.Fatalf("readiness after the probe: %q %v", d, err)
	}
	if got := testutil.ToFloat64(reg); got != 0 {
		t.Fatalf("dependency_breaker_state = %v, want 0 (closed)", got)
	}
}

// A database that hangs fails no call until its callers give up: requests
// that run out of their deadline count against it.
func TestRequestsThatRunOutOfTheirDeadlineOpenTheBreaker(t *testing.T) {
	t.Parallel()
	b := newBreaker(t, nil)
	mux := http.NewServeMux()
	b.Mux(httpx.DeadlineMux(time.Millisecond, mux)).HandleFunc("GET /v1/orders", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // waiting on a database that never answers
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	for range 3 {
		mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/v1/orders", nil))
	}
	if open, _ := b.Open(); !open {
		t.Fatal("three requests that ran out of their deadline did not open the breaker")
	}
}
