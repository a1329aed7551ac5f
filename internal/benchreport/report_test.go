package benchreport

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/benchstat"
)

func sampleReport() Report {
	rec := benchstat.New()
	for i := 1; i <= 1000; i++ {
		rec.Record(time.Duration(i) * 10 * time.Microsecond) // 10 µs … 10 ms
	}
	return Report{
		Title: "orderflow bench", Started: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC), Seconds: 600,
		Machine: "PostgreSQL 15, 2 CPUs",
		Scenarios: []Scenario{
			{Name: "pgbench", About: "the bound", Figures: []Figure{{Name: "one row per transaction", Value: 4958, Unit: "tx/s"}}},
			{Name: "api <closed>", About: "64 clients",
				Latencies: []Latency{NewLatency("commands", rec.Percentiles(), 2202.4, "")},
				Figures:   []Figure{{Name: "commands/s", Value: 2202.4, Unit: "/s", Ratio: 0.444, RatioTo: "pgbench", Target: "≥ 1.0× pgbench"}},
				Notes:     []string{"errors: none"}},
			{Name: "pipeline", Latencies: []Latency{NewLatency("freshness", rec.Percentiles(), 0, "p99 < 250 ms"),
				NewLatency("nothing measured", benchstat.New().Percentiles(), 0, "")},
				Lag:   []Series{{Name: "order_summary", Unit: "events behind", Points: [][2]float64{{0, 0}, {1, 120}, {2, 40}}}},
				Marks: []Mark{{Name: "load ends", X: 1.5}}},
		},
	}
}

func TestTheTableHasEveryPercentileRatioAndTarget(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport().WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"p99.9", "0.44× pgbench", "≥ 1.0× pgbench", "4958 tx/s", "p99 < 250 ms", "2202", "api <closed>: errors: none"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "nothing measured") && (strings.Contains(line, " 0ms") || !strings.Contains(line, "—")) {
			t.Errorf("an empty distribution reads as a figure: %s", line)
		}
	}
	// p50 of 10 µs … 10 ms is ~5 ms, p99.9 ~10 ms.
	if !strings.Contains(out, "5ms") || !strings.Contains(out, "9.99ms") {
		t.Errorf("percentiles missing:\n%s", out)
	}
}

func TestJSONKeepsTheWholeReport(t *testing.T) {
	r := sampleReport()
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r, back) {
		t.Fatalf("round trip differs:\n%+v\n%+v", r, back)
	}
	if !strings.Contains(b.String(), `"p99_9_ms"`) {
		t.Error("no p99_9_ms field")
	}
}

func TestTheHTMLIsSelfContainedWithABarPerPercentile(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport().WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if n := strings.Count(out, `<rect class="bar"`); n != 2*len(percentileColumns) {
		t.Errorf("%d bars, want %d (two latencies)", n, 2*len(percentileColumns))
	}
	if strings.Count(out, "<svg") != 2 || strings.Count(out, `<polyline class="line"`) != 1 {
		t.Error("want the percentile chart and one lag chart with one line")
	}
	for _, banned := range []string{"<script", "<link", "src=", "@import", "url("} {
		if strings.Contains(out, banned) {
			t.Errorf("page is not self-contained: has %q", banned)
		}
	}
	if strings.Contains(out, "api <closed>") || !strings.Contains(out, "api &lt;closed&gt;") {
		t.Error("names are not escaped")
	}
}

func TestRatioKeepsSmallRatiosReadable(t *testing.T) {
	for r, want := range map[float64]string{1.0249: "1.02×", 0.444: "0.44×", 0.00032: "0.00032×"} {
		if got := Ratio(r); got != want {
			t.Errorf("Ratio(%g) = %q, want %q", r, got, want)
		}
	}
}

func TestMsKeepsThreeSignificantDigits(t *testing.T) {
	for ms, want := range map[float64]string{0.4123: "0.412ms", 3.049: "3.05ms", 187.4: "187ms", 2312: "2.31s", 0: "0ms"} {
		if got := Ms(ms); got != want {
			t.Errorf("Ms(%g) = %q, want %q", ms, got, want)
		}
	}
}
