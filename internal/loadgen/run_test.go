package loadgen

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAPI answers the command API like orderflow does, as far as a client
// can tell: Consistency-Token, 201 for creation. The first place and
// every third after it are refused with 409. It records each order's commands.
type fakeAPI struct {
	mu     sync.Mutex
	next   int
	pos    int64
	places int
	orders map[string][]string
	keys   map[string]int
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if k := r.Header.Get("Idempotency-Key"); k != "" {
		f.keys[k]++
	}
	f.pos++
	if r.URL.Path == "/v1/orders" {
		f.next++
		id := fmt.Sprintf("O%06d", f.next)
		f.orders[id] = []string{"create"}
		w.Header().Set("Consistency-Token", fmt.Sprintf("%s:3:%d", id, f.pos))
		w.WriteHeader(http.StatusCreated)
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/v1/orders/"), "/")
	id, cmd := parts[0], parts[1]
	f.orders[id] = append(f.orders[id], cmd)
	if cmd == "place" {
		if f.places++; f.places%3 == 1 {
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"type":"https://orderflow.dev/problems/rule-violation"}`))
			return
		}
	}
	w.Header().Set("Consistency-Token", fmt.Sprintf("%s:%d:%d", id, len(f.orders[id])+2, f.pos))
}

func newFakeAPI(t *testing.T) (*fakeAPI, string) {
	f := &fakeAPI{orders: map[string][]string{}, keys: map[string]int{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

// checkLives fails unless every order's commands are a prefix of the life,
// and an order stops after a refused place.
func checkLives(t *testing.T, f *fakeAPI) (completed int) {
	t.Helper()
	life := []string{"create", "items", "place", "payments", "ship", "deliver"}
	for id, cmds := range f.orders {
		if len(cmds) > len(life) {
			t.Fatalf("order %s: %v is longer than a life", id, cmds)
		}
		for i, c := range cmds {
			if c != life[i] {
				t.Fatalf("order %s: %v is not the life %v", id, cmds, life)
			}
		}
		if len(cmds) == len(life) {
			completed++
		}
	}
	return completed
}

func TestClosedLoopWalksOrdersThroughTheirLivesAndCountsRefusals(t *testing.T) {
	t.Parallel()
	f, url := newFakeAPI(t)
	var successes sync.Map
	res, err := Run(context.Background(), Config{URL: url, Clients: 4, Duration: 300 * time.Millisecond, Keyed: true,
		OnSuccess: func(s Success) { successes.Store(string(s.Token), s.Step) }})
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	checkLives(t, f)
	if res.OK == 0 || res.Errors[409] == 0 || res.Failed() != res.Errors[409] {
		t.Fatalf("ok %d, errors %v: want successes and only the refused places", res.OK, res.Errors)
	}
	if !strings.Contains(res.FirstError[409], "rule-violation") {
		t.Errorf("first 409 kept as %q", res.FirstError[409])
	}
	if res.Dials != 4 {
		t.Errorf("%d connections for 4 clients", res.Dials)
	}
	n := 0
	successes.Range(func(any, any) bool { n++; return true })
	if int64(n) != res.OK {
		t.Errorf("OnSuccess saw %d distinct tokens, %d successes", n, res.OK)
	}
	for k, c := range f.keys {
		if c != 1 {
			t.Fatalf("idempotency key %s sent %d times", k, c)
		}
	}
	if int64(len(f.keys)) != res.OK+res.Failed() {
		t.Errorf("%d keys for %d commands", len(f.keys), res.OK+res.Failed())
	}
	var perStep int64
	for _, h := range res.ByStep {
		perStep += h.Count()
	}
	if perStep != res.OK+res.Failed() || res.Latency().Count() != perStep {
		t.Errorf("histograms hold %d (all %d), commands %d", perStep, res.Latency().Count(), res.OK+res.Failed())
	}
}

func TestOpenLoopSendsEveryScheduledCommand(t *testing.T) {
	t.Parallel()
	f, url := newFakeAPI(t)
	res, err := Run(context.Background(), Config{URL: url, Clients: 8, Rate: 1000, Duration: 200 * time.Millisecond, MaxBehind: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if res.Slots != 200 || res.OK+res.Failed() != 200 || res.Overloaded {
		t.Fatalf("slots %d, ok %d, failed %d, overloaded %v: want 200 sent", res.Slots, res.OK, res.Failed(), res.Overloaded)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	checkLives(t, f)
	if len(f.keys) != 0 {
		t.Errorf("unkeyed run sent %d idempotency keys", len(f.keys))
	}
}

func TestAnOverloadedOpenLoopStopsAndCountsWhatItCouldNotSend(t *testing.T) {
	t.Parallel()
	serving, release := make(chan struct{}, 1), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case serving <- struct{}{}:
		default:
		}
		select { // the server stalls
		case <-release:
		case <-r.Context().Done():
		}
		w.Header().Set("Consistency-Token", "O1:3:1")
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-serving:
		case <-done: // the first slot was already late: nothing was sent
			return
		}
		// Lateness only grows while the server stalls: after this the next
		// slot is more than MaxBehind late, however slow the machine.
		time.Sleep(200 * time.Millisecond)
		select {
		case release <- struct{}{}:
		case <-done:
		}
	}()
	res, err := Run(context.Background(), Config{URL: srv.URL, Clients: 1, Rate: 1000, Duration: 10 * time.Second, MaxBehind: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Overloaded || res.OK > 1 || res.Unsent.Count() == 0 || res.Failed() != res.Unsent.Count() || res.OK+res.Failed() > res.Slots {
		t.Fatalf("overloaded %v, ok %d, unsent %d of %d slots: want a stop with the late slots counted unsent",
			res.Overloaded, res.OK, res.Unsent.Count(), res.Slots)
	}
}
