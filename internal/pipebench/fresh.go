package pipebench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderflow/orderflow/internal/benchstat"
)

// readModels are the query endpoints that wait on each read model for a
// Consistency-Token (see queries/consistency.go): asking all four with a
// command's token tells when every read model reflects it.
var readModels = []struct {
	name string
	path func(orderID, customer, day string) string
}{
	{"order_summary", func(id, _, _ string) string { return "/v1/orders/" + id }},
	{"customer_stats", func(_, c, _ string) string { return "/v1/customers/" + url.PathEscape(c) + "/stats" }},
	{"sales_daily", func(_, _, d string) string { return "/v1/stats/sales?from=" + d + "&to=" + d }},
	{"status_counts", func(_, _, _ string) string { return "/v1/stats/status" }},
}

// sample is one command whose freshness is probed in every read model.
type sample struct {
	token, orderID, customer string
	at                       time.Time // its 2xx
	left                     atomic.Int32
	slowest                  atomic.Int64 // ns from at to the last read model seen fresh
	dropped                  atomic.Bool
	// final marks a probe of a client's last command, sent after the load:
	// it tells when the pipeline caught up, and stays out of the histograms
	// (those commands had no load after them).
	final bool
}

type probeJob struct {
	s  *sample
	rm int // index in readModels
}

// prober asks the read models, with a command's Consistency-Token, until
// each answers Consistency: fresh. Each request waits on the server (up to
// its ConsistencyWait, 2 s) polling the read model's versions table every
// ConsistencyPoll (15 ms), so a freshness is exact per order and per read
// model, and at most one poll interval and one round trip late. A "stale"
// answer (still not there after the wait) is asked again.
type prober struct {
	client *http.Client
	base   string
	authz  string        // Authorization header
	jobs   chan probeJob // bounded; a sample that does not fit is dropped and counted
	all    *benchstat.Recorder
	by     []*benchstat.Recorder
	// started is the delay from a command's 2xx to its probe's first
	// request: what the probe queue adds to a freshness (an upper bound
	// stays one, but a large delay would make it a loose one).
	started *benchstat.Recorder
	wg      sync.WaitGroup

	sampled, dropped, failed, reasked, unresolved atomic.Int64
	firstFailure                                  atomic.Value // string
	// pending counts samples queued or in flight; lastEnd is when the
	// latest one ended (unix ns).
	pending, lastEnd atomic.Int64
}

// probeQueue bounds the probes waiting for a worker. Overflow drops the
// sample (counted): the load must never wait for its observers.
const probeQueue = 4096

func newProber(base string, workers int) *prober {
	p := &prober{
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers, IdleConnTimeout: time.Minute}},
		base:   base, jobs: make(chan probeJob, probeQueue), all: benchstat.New(), started: benchstat.New(),
	}
	for range readModels {
		p.by = append(p.by, benchstat.New())
	}
	return p
}

// start runs the workers until ctx ends; close stops them after the queue.
func (p *prober) start(ctx context.Context, workers int) {
	for range workers {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for j := range p.jobs {
				p.probe(ctx, j)
			}
		}()
	}
}

// close waits for the queued probes (they end at once when ctx is over).
func (p *prober) close() {
	close(p.jobs)
	p.wg.Wait()
	p.client.CloseIdleConnections()
}

// offer queues a sample's four probes. A full queue drops a sample, but
// waits for room for a final one (they must not be lost).
func (p *prober) offer(token, orderID, customer []byte, at time.Time, final bool) {
	if !final && cap(p.jobs)-len(p.jobs) < len(readModels) {
		p.dropped.Add(1)
		return
	}
	s := &sample{token: string(token), orderID: string(orderID), customer: string(customer), at: at, final: final}
	s.left.Store(int32(len(readModels))) // #nosec G115 -- the four read models
	p.pending.Add(1)
	if !final {
		p.sampled.Add(1)
	}
	for i := range readModels {
		j := probeJob{s, i}
		if final {
			p.jobs <- j
			continue
		}
		select {
		case p.jobs <- j:
		default: // another client took the room meanwhile
			s.dropped.Store(true)
			p.end(j, 0)
		}
	}
}

func (p *prober) probe(ctx context.Context, j probeJob) {
	day := j.s.at.UTC().Format(time.DateOnly)
	u := p.base + readModels[j.rm].path(j.s.orderID, j.s.customer, day)
	if !j.s.final {
		p.started.Since(j.s.at)
	}
	for {
		if ctx.Err() != nil {
			// Given up at the end of the run: what it had waited is a lower
			// bound, recorded as such and counted.
			p.unresolved.Add(1)
			p.end(j, time.Since(j.s.at))
			return
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			p.fail(j, err.Error())
			return
		}
		req.Header.Set("Consistency-Token", j.s.token)
		if p.authz != "" {
			req.Header.Set("Authorization", p.authz)
		}
		resp, err := p.client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			p.fail(j, err.Error())
			return
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		// A stale answer can be a 404: the wait ran out before the read
		// model had the order (or customer) at all. Either way: ask again.
		switch c := resp.Header.Get("Consistency"); {
		case c == "fresh" && resp.StatusCode == http.StatusOK:
			p.end(j, time.Since(j.s.at))
			return
		case c != "stale":
			p.fail(j, fmt.Sprintf("GET %s: %s %s", req.URL.Path, resp.Status, body))
			return
		}
		p.reasked.Add(1)
	}
}

func (p *prober) fail(j probeJob, why string) {
	p.failed.Add(1)
	p.firstFailure.CompareAndSwap(nil, why)
	j.s.dropped.Store(true)
	p.end(j, 0)
}

// end records one read model's freshness d of a sample, and the sample's
// (its slowest read model) once all four are in.
func (p *prober) end(j probeJob, d time.Duration) {
	if d > 0 && !j.s.final {
		p.by[j.rm].Record(d)
		for {
			old := j.s.slowest.Load()
			if int64(d) <= old || j.s.slowest.CompareAndSwap(old, int64(d)) {
				break
			}
		}
	}
	if j.s.left.Add(-1) != 0 {
		return
	}
	if !j.s.dropped.Load() && !j.s.final {
		p.all.Record(time.Duration(j.s.slowest.Load()))
	}
	p.lastEnd.Store(time.Now().UnixNano())
	p.pending.Add(-1)
}

// idle says whether no sample is queued or in flight, and since when.
func (p *prober) idle() (time.Time, bool) {
	if p.pending.Load() != 0 {
		return time.Time{}, false
	}
	return time.Unix(0, p.lastEnd.Load()), true
}
