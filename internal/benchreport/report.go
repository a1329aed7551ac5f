// Package benchreport is the report of orderflow's system benchmarks: one
// model of scenarios, latency distributions and single figures with their
// ratios to the machine's bound, written three ways — a text table for the
// terminal, JSON for tools, and a self-contained HTML page whose charts are
// inline SVG (no script, no network).
package benchreport

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/orderflow/orderflow/internal/benchstat"
)

// Report is one benchmark run.
type Report struct {
	Title     string            `json:"title"`
	Started   time.Time         `json:"started"`
	Seconds   float64           `json:"seconds"` // wall time of the whole run
	Machine   string            `json:"machine"`
	Settings  map[string]string `json:"settings,omitempty"`
	Scenarios []Scenario        `json:"scenarios"`
}

// Scenario is one thing measured: a load against a server, a drain, the
// bound.
type Scenario struct {
	Name      string    `json:"name"`
	About     string    `json:"about"`
	Latencies []Latency `json:"latencies,omitempty"`
	Figures   []Figure  `json:"figures,omitempty"`
	// Lag is a time series per name (the relay, each projection), drawn as
	// lines; Marks are vertical lines on it (the load's end).
	Lag   []Series `json:"lag,omitempty"`
	Marks []Mark   `json:"marks,omitempty"`
	Notes []string `json:"notes,omitempty"`
}

// Latency is a distribution from an HDR histogram, in milliseconds.
type Latency struct {
	Name      string  `json:"name"`
	Count     int64   `json:"count"`
	PerSecond float64 `json:"per_second,omitempty"`
	P50       float64 `json:"p50_ms"`
	P95       float64 `json:"p95_ms"`
	P99       float64 `json:"p99_ms"`
	P999      float64 `json:"p99_9_ms"`
	Max       float64 `json:"max_ms"`
	Target    string  `json:"target,omitempty"`
}

// NewLatency converts a histogram's percentiles.
func NewLatency(name string, p benchstat.Percentiles, perSecond float64, target string) Latency {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return Latency{Name: name, Count: p.Count, PerSecond: perSecond, P50: ms(p.P50), P95: ms(p.P95), P99: ms(p.P99),
		P999: ms(p.P999), Max: ms(p.Max), Target: target}
}

// Figure is one number, with its ratio to a bound when there is one.
type Figure struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	// Ratio is Value over the figure named RatioTo; 0 when none.
	Ratio   float64 `json:"ratio,omitempty"`
	RatioTo string  `json:"ratio_to,omitempty"`
	Target  string  `json:"target,omitempty"`
}

// Series is a line: points (x, y).
type Series struct {
	Name   string       `json:"name"`
	Unit   string       `json:"unit"`
	Points [][2]float64 `json:"points"`
}

// Mark is a vertical line at X on a scenario's lag chart.
type Mark struct {
	Name string  `json:"name"`
	X    float64 `json:"x"`
}

// WriteJSON writes r as indented JSON.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteFiles writes r into dir (created if missing) as base.json and
// base.html, and returns their paths.
func (r Report) WriteFiles(dir, base string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	var paths []string
	for _, f := range []struct {
		ext   string
		write func(io.Writer) error
	}{{".json", r.WriteJSON}, {".html", r.WriteHTML}} {
		p := filepath.Join(dir, base+f.ext)
		fh, err := os.Create(p) // #nosec G304 -- in the output directory the operator named
		if err != nil {
			return paths, err
		}
		err = f.write(fh)
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return paths, fmt.Errorf("write %s: %w", p, err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}
