// Package health serves /healthz (the process is up) and /readyz (every
// dependency this process needs is usable): with a JSON detail per check
// for operators (Readyz), the verdict alone for the public (Public).
package health

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"
)

// Check reports whether one dependency is ready, with a human detail. An
// error made with Degraded is shown but leaves the process ready.
type Check func(ctx context.Context) (detail string, err error)

// Degraded marks err as a warning: its check shows as "degraded", with the
// error, and does not make the process unready. For what an operator must
// fix but serving does not wait for (a topic with fewer replicas than
// configured): a load balancer taking the process out would only add an
// outage to it.
func Degraded(err error) error { return degraded{err} }

type degraded struct{ error }

func (d degraded) Unwrap() error { return d.error }

// Checker runs named readiness checks.
type Checker struct {
	mu     sync.RWMutex
	names  []string
	checks map[string]Check
}

// New returns a checker with no checks.
func New() *Checker { return &Checker{checks: map[string]Check{}} }

// Add registers a readiness check.
func (c *Checker) Add(name string, check Check) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.names = append(c.names, name)
	c.checks[name] = check
}

type result struct {
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
	Error  string `json:"error,omitempty"`
}

// checkTimeout bounds each readiness check: a probe must answer quickly.
const checkTimeout = 2 * time.Second

// Healthz answers 200 while the process serves HTTP at all.
func Healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
}

// Readyz runs every check and answers each one's detail or error: 200 if
// all pass, 503 otherwise. The details name drivers, hosts and internal
// state: serve it to operators only (the ops listener); Public is the
// answer for everyone else.
func (c *Checker) Readyz(w http.ResponseWriter, r *http.Request) {
	checks, ok := c.run(r.Context())
	out := struct {
		Status string            `json:"status"`
		Checks map[string]result `json:"checks"`
	}{Status: verdict(ok), Checks: checks}
	writeReadiness(w, ok, out)
}

// Public serves the readiness verdict alone, {"status":"ready"} (200) or
// {"status":"not ready"} (503), with no check's detail or error text. The
// verdict is reused for ttl, so that a flood of probes costs one round of
// checks (a database ping among them) per ttl, however many arrive.
func (c *Checker) Public(ttl time.Duration) http.HandlerFunc {
	var (
		mu      sync.Mutex
		checked time.Time
		ready   bool
	)
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if time.Since(checked) >= ttl {
			// Not the client's cancellation: the verdict is shared.
			_, ready = c.run(context.WithoutCancel(r.Context()))
			checked = time.Now()
		}
		ok := ready
		mu.Unlock()
		writeReadiness(w, ok, struct {
			Status string `json:"status"`
		}{verdict(ok)})
	}
}

func verdict(ok bool) string {
	if ok {
		return "ready"
	}
	return "not ready"
}

// run runs every check, each bounded by checkTimeout.
func (c *Checker) run(ctx context.Context) (map[string]result, bool) {
	c.mu.RLock()
	names := append([]string(nil), c.names...)
	c.mu.RUnlock()
	out, ok := map[string]result{}, true
	for _, name := range names {
		c.mu.RLock()
		check := c.checks[name]
		c.mu.RUnlock()
		cctx, cancel := context.WithTimeout(ctx, checkTimeout)
		detail, err := check(cctx)
		cancel()
		res := result{Status: "ok", Detail: detail}
		switch {
		case errors.As(err, new(degraded)):
			res.Status, res.Error = "degraded", err.Error()
		case err != nil:
			res.Status, res.Error, ok = "failing", err.Error(), false
		}
		out[name] = res
	}
	return out, ok
}

func writeReadiness(w http.ResponseWriter, ok bool, body any) {
	code := http.StatusOK
	if !ok {
		code = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}
