package pipebench

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// LagSample is one look at GET /v1/projections.
type LagSample struct {
	// T is seconds since the load started (warm-up included).
	T float64 `json:"t_s"`
	// RelayEvents is the relay's lag in events; -1 when the node does not
	// run the relay.
	RelayEvents int64 `json:"relay_events"`
	// Events and Seconds are each projection's lag_events and lag_seconds.
	Events  map[string]int64   `json:"events"`
	Seconds map[string]float64 `json:"seconds"`
}

// zero says whether nothing is behind in s.
func (s LagSample) zero() bool {
	if s.RelayEvents > 0 {
		return false
	}
	for _, n := range s.Events {
		if n > 0 {
			return false
		}
	}
	return true
}

// maxSeconds is the largest lag_seconds of any projection.
func (s LagSample) maxSeconds() float64 {
	var m float64
	for _, v := range s.Seconds {
		m = max(m, v)
	}
	return m
}

// lagSampler reads GET /v1/projections every second during the load, and
// every drainEvery once the load has stopped, to time the return to zero.
type lagSampler struct {
	client *http.Client
	url    string
	authz  string // Authorization header
	start  time.Time

	mu      sync.Mutex
	samples []LagSample
	ended   time.Time // the load's end
	zeroAt  time.Time // the first sample after ended with nothing behind
	errors  int
	fast    chan struct{}
}

// drainEvery is the sampling interval after the load: the time back to
// zero is known to within it.
const drainEvery = 100 * time.Millisecond

func newLagSampler(base string, start time.Time) *lagSampler {
	return &lagSampler{client: &http.Client{Timeout: 5 * time.Second}, url: base + "/v1/projections", start: start,
		fast: make(chan struct{})}
}

func (l *lagSampler) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		l.sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-l.fast:
			t.Reset(drainEvery)
		case <-t.C:
		}
	}
}

// loadEnded switches to fast sampling; samples taken from now on can mark
// the return to zero.
func (l *lagSampler) loadEnded(at time.Time) {
	l.mu.Lock()
	l.ended = at
	l.mu.Unlock()
	close(l.fast)
}

// caughtUp returns when the lag was first seen at zero after the load.
func (l *lagSampler) caughtUp() (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.zeroAt, !l.zeroAt.IsZero()
}

func (l *lagSampler) sample(ctx context.Context) {
	at := time.Now()
	var body struct {
		Projections []struct {
			Name       string  `json:"name"`
			LagEvents  int64   `json:"lag_events"`
			LagSeconds float64 `json:"lag_seconds"`
		} `json:"projections"`
		Relay *struct {
			LagEvents int64 `json:"lag_events"`
		} `json:"relay"`
	}
	err := func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.url, nil)
		if err != nil {
			return err
		}
		if l.authz != "" {
			req.Header.Set("Authorization", l.authz)
		}
		resp, err := l.client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errStatus(resp.StatusCode)
		}
		return json.NewDecoder(resp.Body).Decode(&body)
	}()
	read := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			l.errors++
		}
		return
	}
	s := LagSample{T: at.Sub(l.start).Seconds(), RelayEvents: -1, Events: map[string]int64{}, Seconds: map[string]float64{}}
	if body.Relay != nil {
		s.RelayEvents = body.Relay.LagEvents
	}
	for _, p := range body.Projections {
		s.Events[p.Name], s.Seconds[p.Name] = p.LagEvents, p.LagSeconds
	}
	l.samples = append(l.samples, s)
	if !l.ended.IsZero() && !at.Before(l.ended) && l.zeroAt.IsZero() && s.zero() {
		l.zeroAt = read
	}
}

type errStatus int

func (e errStatus) Error() string { return "GET /v1/projections: " + http.StatusText(int(e)) }
