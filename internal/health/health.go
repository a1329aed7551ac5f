// Package health serves /healthz (the process is up) and /readyz (every
// dependency this process needs is usable), with a JSON detail per check.
package health

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// Check reports whether one dependency is ready, with a human detail.
type Check func(ctx context.Context) (detail string, err error)

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

// Readyz runs every check; 200 if all pass, 503 otherwise.
func (c *Checker) Readyz(w http.ResponseWriter, r *http.Request) {
	c.mu.RLock()
	names := append([]string(nil), c.names...)
	c.mu.RUnlock()
	out := struct {
		Status string            `json:"status"`
		Checks map[string]result `json:"checks"`
	}{Status: "ready", Checks: map[string]result{}}
	code := http.StatusOK
	for _, name := range names {
		c.mu.RLock()
		check := c.checks[name]
		c.mu.RUnlock()
		ctx, cancel := context.WithTimeout(r.Context(), checkTimeout)
		detail, err := check(ctx)
		cancel()
		res := result{Status: "ok", Detail: detail}
		if err != nil {
			res.Status, res.Error = "failing", err.Error()
			out.Status, code = "not ready", http.StatusServiceUnavailable
		}
		out.Checks[name] = res
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(out)
}
