// Package benchstat records latencies in an HDR histogram and reports them
// the way every orderflow benchmark does: throughput and p50/p95/p99 (and,
// for the system benchmarks, p99.9 and max).
package benchstat

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Recorder is a concurrency-safe latency histogram (1 µs to 1 min, 3
// significant digits).
type Recorder struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

// New returns an empty recorder.
func New() *Recorder {
	return &Recorder{h: hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3)}
}

// Record adds one latency.
func (r *Recorder) Record(d time.Duration) {
	r.mu.Lock()
	_ = r.h.RecordValue(max(int64(d/time.Microsecond), 1))
	r.mu.Unlock()
}

// Since records the time elapsed since start.
func (r *Recorder) Since(start time.Time) { r.Record(time.Since(start)) }

// Quantile returns the q-th percentile (0..100).
func (r *Recorder) Quantile(q float64) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return time.Duration(r.h.ValueAtQuantile(q)) * time.Microsecond
}

// Count returns how many latencies were recorded.
func (r *Recorder) Count() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.h.TotalCount()
}

// Percentiles are a histogram's figures at one moment.
type Percentiles struct {
	Count                    int64
	P50, P95, P99, P999, Max time.Duration
}

// Percentiles returns the count, p50, p95, p99, p99.9 and max.
func (r *Recorder) Percentiles() Percentiles {
	r.mu.Lock()
	defer r.mu.Unlock()
	q := func(p float64) time.Duration { return time.Duration(r.h.ValueAtQuantile(p)) * time.Microsecond }
	return Percentiles{Count: r.h.TotalCount(), P50: q(50), P95: q(95), P99: q(99), P999: q(99.9),
		Max: time.Duration(r.h.Max()) * time.Microsecond}
}

// Merge adds every latency of other to r.
func (r *Recorder) Merge(other *Recorder) {
	other.mu.Lock()
	c := other.h.Export()
	other.mu.Unlock()
	h := hdrhistogram.Import(c)
	r.mu.Lock()
	r.h.Merge(h)
	r.mu.Unlock()
}

// Summary is "n ops, X/s, p50 …, p95 …, p99 …, max …".
func (r *Recorder) Summary(elapsed time.Duration, unit string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	q := func(p float64) time.Duration { return time.Duration(r.h.ValueAtQuantile(p)) * time.Microsecond }
	return fmt.Sprintf("%d %s in %s: %.0f %s/s; p50 %s p95 %s p99 %s max %s",
		r.h.TotalCount(), unit, elapsed.Round(time.Millisecond), float64(r.h.TotalCount())/elapsed.Seconds(), unit,
		q(50), q(95), q(99), time.Duration(r.h.Max())*time.Microsecond)
}

// Report adds the figures to a benchmark's output as custom metrics.
func (r *Recorder) Report(b *testing.B, perSecond float64, unit string) {
	b.ReportMetric(perSecond, unit+"/s")
	b.ReportMetric(float64(r.Quantile(50).Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(r.Quantile(95).Microseconds())/1000, "p95_ms")
	b.ReportMetric(float64(r.Quantile(99).Microseconds())/1000, "p99_ms")
	b.ReportMetric(0, "ns/op") // meaningless for concurrent runs; the rates above are the figures
}
