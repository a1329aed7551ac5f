package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/testenv"
)

// requestDeadline is the load's client timeout. Nothing in these tests may
// take that long: a request that does is a hang, and counted as one.
const requestDeadline = 30 * time.Second

// ack is one command answered 2xx: the response body of the command API.
type ack struct {
	OrderID  string `json:"order_id"`
	Version  int64  `json:"version"`
	Position int64  `json:"position"`
}

// failure is one answer other than 2xx, or no answer.
type failure struct {
	status      int    // 0: no HTTP answer (connection refused or reset, timeout)
	err         string // the transport error, when status is 0
	contentType string
	retryAfter  string
	problem     string // the problem's type
	took        time.Duration
	at          time.Time
}

// load runs order lifecycles over HTTP from a few goroutines and records
// every 2xx. Each command carries an Idempotency-Key and, when it gets no
// 2xx, is sent again with the same key (what the API tells clients to do)
// until it succeeds or the load stops: so a lifecycle survives a crash, and
// a command that committed before its answer was lost is replayed, not
// applied twice (a doubled ItemAdded would change the total and make the
// payment a 409, which the checks count).
type load struct {
	t      testing.TB
	id     string // prefixes every Idempotency-Key: keys of two loads never meet
	urls   []string
	client *http.Client
	// tokens are the customers' (c-0 … c-6), each also staff: the
	// customer builds and places its order, staff moves it on.
	tokens [customers]string
	pace   *time.Ticker // one command per tick, in total: the load's rate bound

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	acked atomic.Int64
	mu    sync.Mutex
	acks  []ack
	fails []failure
	// unexpected are answers no fault explains: a 4xx (the lifecycle is
	// valid), a 2xx body that does not parse.
	unexpected []string
	longest    time.Duration // the longest request, any outcome
}

// startLoad starts workers goroutines sending at most rps commands per
// second in total, spread over urls (api processes).
func startLoad(t testing.TB, workers int, rps float64, urls ...string) *load {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{
		t: t, id: strconv.FormatInt(time.Now().UnixNano(), 36), urls: urls, ctx: ctx, cancel: cancel,
		client: &http.Client{Timeout: requestDeadline, Transport: &http.Transport{MaxIdleConnsPerHost: workers}},
		pace:   time.NewTicker(time.Duration(float64(time.Second) / rps)),
	}
	for i := range l.tokens {
		l.tokens[i] = testenv.Bearer(t, customer(i), auth.Customer, auth.Staff)
	}
	for w := range workers {
		l.wg.Go(func() { l.worker(w) })
	}
	t.Cleanup(l.stop)
	return l
}

// stop ends the load and waits for the requests in flight to be answered:
// they are not cancelled, since a command the server is appending commits
// whether or not its client waits (the write path's group commit does not
// watch the request), and the checks that follow must find in the store
// every event that will ever be there.
func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
	l.pace.Stop()
}

// waitAcked waits until n more commands than now were answered 2xx.
func (l *load) waitAcked(t testing.TB, n int64, what string) {
	t.Helper()
	target := l.acked.Load() + n
	waitFor(t, what, func() bool { return l.acked.Load() >= target })
}

// snapshot returns copies of what was recorded so far.
func (l *load) snapshot() ([]ack, []failure, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]ack(nil), l.acks...), append([]failure(nil), l.fails...), append([]string(nil), l.unexpected...)
}

func (l *load) worker(w int) {
	for n := 0; l.ctx.Err() == nil; n++ {
		l.lifecycle(fmt.Sprintf("%s-w%d-%d", l.id, w, n), w+n)
	}
}

// customers is how many customers the load's orders spread over.
const customers = 7

func customer(n int) string { return fmt.Sprintf("c-%d", n%customers) }

// lifecycle creates an order with one item, adds another, places, pays,
// ships, and delivers or cancels it.
func (l *load) lifecycle(key string, n int) {
	created, ok := l.command(key+"-create", "/v1/orders", map[string]any{
		"customer_id": customer(n), "currency": "EUR",
		"items": []map[string]any{{"sku": "BOOK-1", "name": "A book", "quantity": 1, "unit_price_minor": 1000}},
	}, n)
	if !ok {
		return
	}
	order := "/v1/orders/" + created.OrderID
	type step struct {
		path string
		body any
	}
	steps := []step{
		{order + "/items", map[string]any{"sku": "PEN-9", "name": "A pen", "quantity": 2, "unit_price_minor": 300}},
		{order + "/place", nil},
		{order + "/payments", map[string]any{"amount_minor": 1600, "currency": "EUR", "reference": "psp-" + key}},
	}
	if n%3 == 0 { // a paid order cancelled: a refund
		steps = append(steps, step{order + "/cancel", map[string]any{"reason": "changed mind"}})
	} else {
		steps = append(steps, step{order + "/ship", map[string]any{"carrier": "DHL", "tracking_number": "T-" + key}},
			step{order + "/deliver", nil})
	}
	for i, s := range steps {
		if _, ok := l.command(fmt.Sprintf("%s-%d", key, i), s.path, s.body, n); !ok {
			return
		}
	}
}

// command POSTs body to path until it is answered 2xx (true) or the load
// stops (false), always with the same Idempotency-Key.
func (l *load) command(key, path string, body any, n int) (ack, bool) {
	raw := []byte{}
	if body != nil {
		raw, _ = json.Marshal(body)
	}
	authz := l.tokens[n%customers] // the order's customer's, whichever api process the attempt goes to
	backoff := 20 * time.Millisecond
	for {
		select {
		case <-l.ctx.Done():
			return ack{}, false
		case <-l.pace.C:
		}
		url := l.urls[n%len(l.urls)]
		n++ // the next attempt goes to the next api process
		a, f, retry := l.send(url+path, key, authz, raw)
		if f == nil {
			return a, true
		}
		if !retry {
			return ack{}, false
		}
		select {
		case <-l.ctx.Done():
			return ack{}, false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// send makes one attempt. retry says whether the failure is one a client
// retries (no answer, 5xx); anything else is recorded as unexpected.
func (l *load) send(url, key, authz string, body []byte) (ack, *failure, bool) {
	// Not l.ctx: stop waits for this answer (the client's timeout bounds it).
	req, err := http.NewRequestWithContext(context.WithoutCancel(l.ctx), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		l.t.Errorf("load: %v", err)
		return ack{}, &failure{}, false
	}
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Idempotency-Key", key)
	req.Header.Set("Authorization", authz)
	start := time.Now()
	res, err := l.client.Do(req)
	took := time.Since(start)
	l.mu.Lock()
	l.longest = max(l.longest, took)
	l.mu.Unlock()
	if err != nil {
		l.record(failure{err: err.Error(), took: took, at: start})
		return ack{}, &failure{}, true
	}
	b, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if res.StatusCode/100 == 2 {
		var a ack
		if err := json.Unmarshal(b, &a); err != nil || a.OrderID == "" || a.Version < 1 || a.Position < 1 {
			l.unexpect(fmt.Sprintf("POST %s: %d with body %q", url, res.StatusCode, b))
			return ack{}, &failure{}, false
		}
		l.mu.Lock()
		l.acks = append(l.acks, a)
		l.mu.Unlock()
		l.acked.Add(1)
		return a, nil, false
	}
	var p struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(b, &p)
	f := failure{status: res.StatusCode, contentType: res.Header.Get("Content-Type"),
		retryAfter: res.Header.Get("Retry-After"), problem: p.Type, took: took, at: start}
	if res.StatusCode >= 500 {
		l.record(f)
		return ack{}, &f, true
	}
	l.unexpect(fmt.Sprintf("POST %s: %d %s", url, res.StatusCode, b))
	return ack{}, &f, false
}

func (l *load) record(f failure) {
	l.mu.Lock()
	l.fails = append(l.fails, f)
	l.mu.Unlock()
}

func (l *load) unexpect(s string) {
	l.mu.Lock()
	l.unexpected = append(l.unexpected, s)
	l.mu.Unlock()
}

// summary says what the load saw: acknowledged commands, failures by kind,
// the longest request.
func (l *load) summary() string {
	acks, fails, unexpected := l.snapshot()
	kinds := map[string]int{}
	for _, f := range fails {
		k := "no answer"
		if f.status != 0 {
			k = fmt.Sprintf("%d %s", f.status, strings.TrimPrefix(f.problem, "https://orderflow.dev/problems/"))
		}
		kinds[k]++
	}
	var parts []string
	for k, n := range kinds {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, n))
	}
	sort.Strings(parts)
	l.mu.Lock()
	longest := l.longest
	l.mu.Unlock()
	return fmt.Sprintf("%d commands acknowledged; retried failures: [%s]; unexpected answers: %d; longest request %s",
		len(acks), strings.Join(parts, ", "), len(unexpected), longest.Round(time.Millisecond))
}

// checkNoUnexpected fails the test on answers no fault explains.
func (l *load) checkNoUnexpected(t testing.TB) {
	t.Helper()
	_, _, unexpected := l.snapshot()
	for i, u := range unexpected {
		if i == 5 {
			t.Errorf("… and %d more unexpected answers", len(unexpected)-5)
			break
		}
		t.Errorf("unexpected answer: %s", u)
	}
}

// waitFor polls cond until it holds; Patience is the hang guard.
func waitFor(t testing.TB, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > testenv.Patience {
			t.Fatalf("gave up waiting for %s after %s", what, testenv.Patience)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}
