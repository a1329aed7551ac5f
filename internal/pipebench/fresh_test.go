package pipebench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestProberAsksAgainUntilEveryReadModelIsFresh(t *testing.T) {
	var (
		mu    sync.Mutex
		asked = map[string]int{}
		seen  []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, r.URL.RequestURI()+" "+r.Header.Get("Consistency-Token"))
		asked[r.URL.Path]++
		switch {
		case strings.HasPrefix(r.URL.Path, "/v1/orders/BROKEN"):
			w.WriteHeader(http.StatusInternalServerError)
		case strings.HasPrefix(r.URL.Path, "/v1/orders/") && asked[r.URL.Path] == 1:
			w.Header().Set("Consistency", "stale")
			w.WriteHeader(http.StatusNotFound) // not in the read model at all yet
		case strings.HasPrefix(r.URL.Path, "/v1/orders/") && asked[r.URL.Path] == 2:
			w.Header().Set("Consistency", "stale")
		default:
			w.Header().Set("Consistency", "fresh")
		}
	}))
	defer srv.Close()
	p := newProber(srv.URL, 4)
	p.start(context.Background(), 4)
	at := time.Now()
	day := at.UTC().Format(time.DateOnly)
	p.offer([]byte("01JD:3:7"), []byte("01JD"), []byte("bench-c9"), at, false)
	p.offer([]byte("BROKEN:3:8"), []byte("BROKEN"), []byte("bench-c9"), at, false)
	p.offer([]byte("01JF:6:9"), []byte("01JF"), []byte("bench-c1"), at, true)
	p.close()
	if end, idle := p.idle(); !idle || end.Before(at) {
		t.Errorf("after every probe ended: idle %v since %s", idle, end)
	}

	if n := p.all.Count(); n != 1 {
		t.Errorf("%d samples recorded, want 1 (the broken one fails, the final one is not recorded)", n)
	}
	for i, h := range p.by {
		if want := int64(1 + map[bool]int64{true: 0, false: 1}[readModels[i].name == "order_summary"]); h.Count() != want {
			t.Errorf("%s: %d probes recorded, want %d", readModels[i].name, h.Count(), want)
		}
	}
	if p.reasked.Load() != 4 || p.failed.Load() != 1 || p.sampled.Load() != 2 {
		t.Errorf("reasked %d failed %d sampled %d: want 4 (two stale answers for each good order), 1, 2", p.reasked.Load(), p.failed.Load(), p.sampled.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{"/v1/orders/01JD 01JD:3:7", "/v1/customers/bench-c9/stats 01JD:3:7",
		"/v1/stats/sales?from=" + day + "&to=" + day + " 01JD:3:7", "/v1/stats/status 01JD:3:7"} {
		found := false
		for _, s := range seen {
			found = found || s == want
		}
		if !found {
			t.Errorf("no request %q among %q", want, seen)
		}
	}
}
