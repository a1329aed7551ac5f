package main

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/testenv"
)

// PostgreSQL (a cluster of the test's own) is stopped under an api
// process: the database's circuit breaker opens, the detailed /readyz
// names it, commands are refused with 503 problem+json and Retry-After
// without waiting for the database, and once it is started again the
// breaker closes by itself and commands succeed, with no restart.
func TestTheDatabaseBreakerOpensWhilePostgresIsDownAndClosesByItself(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartPostgres(t)
	e := testenv.NewOn(t, cluster.URL)
	srv := e.Serve(t, "ORDERFLOW_ROLES=api", "ORDERFLOW_DB_BREAKER_OPEN=1s")
	authz := testenv.Operator(t)
	type answer struct {
		status                  int
		contentType, retryAfter string
		problem, title          string
		took                    time.Duration
	}
	post := func() answer {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/orders",
			strings.NewReader(`{"customer_id":"`+testenv.OperatorSubject+`","currency":"EUR","items":[{"sku":"S","name":"N","quantity":1,"unit_price_minor":100}]}`))
		req.Header.Set("Authorization", authz)
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		res, err := (&http.Client{Timeout: testenv.Patience}).Do(req)
		if err != nil {
			t.Fatalf("POST /v1/orders: %v", err)
		}
		defer func() { _ = res.Body.Close() }()
		var p struct{ Type, Title string }
		_ = json.NewDecoder(res.Body).Decode(&p)
		return answer{res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("Retry-After"), p.Type, p.Title, time.Since(start)}
	}
	get := func(url string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", authz)
		res, err := (&http.Client{Timeout: testenv.Patience}).Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer func() { _ = res.Body.Close() }()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	breakerState := func() string {
		_, metrics := get(srv.OpsURL + "/metrics")
		for _, line := range strings.Split(metrics, "\n") {
			if strings.HasPrefix(line, `dependency_breaker_state{dependency="postgres"}`) {
				return strings.Fields(line)[1]
			}
		}
		srv.Fatalf(t, "no dependency_breaker_state for postgres in /metrics")
		return ""
	}
	waitFor := func(what string, ok func() bool) time.Duration {
		t.Helper()
		start := time.Now()
		for !ok() {
			if time.Since(start) > testenv.Patience {
				srv.Fatalf(t, "%s: not after %s", what, testenv.Patience)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return time.Since(start)
	}
	if a := post(); a.status != http.StatusCreated {
		srv.Fatalf(t, "before the outage: %+v", a)
	}
	if s := breakerState(); s != "0" {
		t.Fatalf("breaker state %s before the outage, want 0 (closed)", s)
	}

	cluster.Stop(t)
	var before []answer // refused by the failed connects, before the breaker opened
	opened := waitFor("the breaker opens", func() bool {
		a := post()
		if a.title == "Dependency unavailable" {
			return true
		}
		before = append(before, a)
		return false
	})
	var open []answer
	for range 20 {
		open = append(open, post())
	}
	code, ready := get(srv.OpsURL + "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(ready, `"postgres":{"status":"failing","error":"circuit breaker open`) {
		t.Errorf("detailed /readyz while the breaker is open: %d %s", code, ready)
	}
	if code, public := get(srv.URL + "/readyz"); code != http.StatusServiceUnavailable || strings.TrimSpace(public) != `{"status":"not ready"}` {
		t.Errorf("public /readyz while the breaker is open: %d %s", code, public)
	}
	if s := breakerState(); s != "2" && s != "1" {
		t.Errorf("breaker state %s while PostgreSQL is down, want 2 (open) or 1 (probing)", s)
	}
	for _, a := range append(before, open...) {
		if a.status != http.StatusServiceUnavailable || a.contentType != "application/problem+json" || a.retryAfter == "" ||
			a.problem != "https://orderflow.dev/problems/unavailable" {
			t.Errorf("while PostgreSQL is down, a command got %+v: want 503 application/problem+json, type unavailable, with Retry-After", a)
		}
	}

	cluster.Start(t)
	recovered := waitFor("a command succeeds after PostgreSQL is back", func() bool { return post().status == http.StatusCreated })
	if s := breakerState(); s != "0" {
		t.Errorf("breaker state %s after recovery, want 0 (closed)", s)
	}
	if code, ready := get(srv.OpsURL + "/readyz"); code != http.StatusOK {
		t.Errorf("detailed /readyz after recovery: %d %s", code, ready)
	}
	stats := func(as []answer) (median, slowest time.Duration) {
		if len(as) == 0 {
			return 0, 0
		}
		ds := make([]time.Duration, len(as))
		for i, a := range as {
			ds[i] = a.took.Round(time.Microsecond)
		}
		slices.Sort(ds)
		return ds[len(ds)/2], ds[len(ds)-1]
	}
	beforeMedian, beforeSlowest := stats(before)
	openMedian, openSlowest := stats(open)
	t.Logf("PostgreSQL stopped: %d commands refused by failed connects before the breaker opened (%s after the stop; median %s, slowest %s), "+
		"then %d refused by the open breaker (median %s, slowest %s); a command succeeded %s after the start",
		len(before), opened.Round(time.Millisecond), beforeMedian, beforeSlowest, len(open), openMedian, openSlowest, recovered.Round(time.Millisecond))
}

// PostgreSQL frozen (SIGSTOP: nothing refused, nothing answered) under an
// api process: every request is answered within its deadline, 503
// problem+json with Retry-After; requests that ran out of it open the
// breaker, which then refuses at once; once PostgreSQL is thawed a command
// succeeds by itself.
func TestTheDatabaseBreakerOpensWhilePostgresHangs(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartPostgres(t)
	e := testenv.NewOn(t, cluster.URL)
	srv := e.Serve(t, "ORDERFLOW_ROLES=api", "ORDERFLOW_HTTP_REQUEST_TIMEOUT=1s", "ORDERFLOW_DB_BREAKER_OPEN=1s")
	authz := testenv.Operator(t)
	type answer struct {
		status            int
		retryAfter, title string
		problem           string
		took              time.Duration
	}
	post := func() answer {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/orders",
			strings.NewReader(`{"customer_id":"`+testenv.OperatorSubject+`","currency":"EUR","items":[{"sku":"S","name":"N","quantity":1,"unit_price_minor":100}]}`))
		req.Header.Set("Authorization", authz)
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		res, err := (&http.Client{Timeout: testenv.Patience}).Do(req)
		if err != nil {
			return answer{took: time.Since(start), title: err.Error()}
		}
		defer func() { _ = res.Body.Close() }()
		var p struct{ Type, Title string }
		_ = json.NewDecoder(res.Body).Decode(&p)
		return answer{res.StatusCode, res.Header.Get("Retry-After"), p.Title, p.Type, time.Since(start)}
	}
	if a := post(); a.status != http.StatusCreated {
		srv.Fatalf(t, "before the outage: %+v", a)
	}

	cluster.Pause(t)
	var (
		mu      sync.Mutex
		answers []answer
		wg      sync.WaitGroup
	)
	refusedByBreaker := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, a := range answers {
			if a.title == "Dependency unavailable" {
				n++
			}
		}
		return n
	}
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				a := post()
				mu.Lock()
				answers = append(answers, a)
				mu.Unlock()
			}
		})
	}
	start := time.Now()
	for refusedByBreaker() < 20 {
		if time.Since(start) > testenv.Patience {
			close(stop)
			wg.Wait()
			srv.Fatalf(t, "the breaker did not refuse 20 commands while PostgreSQL hung")
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	cluster.Resume(t)
	recovered := time.Now()
	for post().status != http.StatusCreated {
		if time.Since(recovered) > testenv.Patience {
			srv.Fatalf(t, "no command succeeded after PostgreSQL was thawed")
		}
		time.Sleep(20 * time.Millisecond)
	}

	var slow, fast []time.Duration
	for _, a := range answers {
		if a.status != http.StatusServiceUnavailable || a.retryAfter == "" || a.problem != "https://orderflow.dev/problems/unavailable" {
			t.Errorf("while PostgreSQL hung, a command got %+v: want 503 problem+json, type unavailable, with Retry-After", a)
		}
		if a.title == "Dependency unavailable" {
			fast = append(fast, a.took)
		} else {
			slow = append(slow, a.took)
		}
	}
	slices.Sort(slow)
	slices.Sort(fast)
	t.Logf("PostgreSQL frozen with SIGSTOP, request deadline 1s: %d commands ran into the deadline (slowest %s), %d were refused by the breaker (median %s, slowest %s); a command succeeded %s after SIGCONT",
		len(slow), slow[len(slow)-1].Round(time.Millisecond), len(fast), fast[len(fast)/2].Round(time.Microsecond),
		fast[len(fast)-1].Round(time.Microsecond), time.Since(recovered).Round(time.Millisecond))
}
