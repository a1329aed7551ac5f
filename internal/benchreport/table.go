package benchreport

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
)

// tableHeader are the columns of the table; a latency row fills the
// percentiles, a figure row VALUE and RATIO.
var tableHeader = []string{"SCENARIO", "MEASURE", "N", "RATE/s", "p50", "p95", "p99", "p99.9", "max", "VALUE", "RATIO", "TARGET"}

// rows is the table as cells, shared by the text and HTML tables.
func (r Report) rows() [][]string {
	var out [][]string
	for _, s := range r.Scenarios {
		name := s.Name
		for _, l := range s.Latencies {
			rate := ""
			if l.PerSecond > 0 {
				rate = fmt.Sprintf("%.0f", l.PerSecond)
			}
			ps := []string{Ms(l.P50), Ms(l.P95), Ms(l.P99), Ms(l.P999), Ms(l.Max)}
			if l.Count == 0 {
				ps = []string{"—", "—", "—", "—", "—"} // nothing measured: not 0 ms
			}
			out = append(out, append(append([]string{name, l.Name, fmt.Sprint(l.Count), rate}, ps...), "", "", l.Target))
			name = ""
		}
		for _, f := range s.Figures {
			ratio := ""
			if f.Ratio != 0 {
				ratio = Ratio(f.Ratio) + " " + f.RatioTo
			}
			out = append(out, []string{name, f.Name, "", "", "", "", "", "", "", value(f), ratio, f.Target})
			name = ""
		}
	}
	return out
}

// WriteTable writes the report as an aligned text table, then each
// scenario's notes.
func (r Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "%s — %s, %s\n", r.Title, r.Started.Format(time.RFC3339), r.Machine)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(tableHeader, "\t")+"\t")
	for _, row := range r.rows() {
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range r.Scenarios {
		for _, n := range s.Notes {
			fmt.Fprintf(w, "%s: %s\n", s.Name, n)
		}
	}
	return nil
}

func value(f Figure) string {
	v := fmt.Sprintf("%.0f", f.Value)
	if math.Abs(f.Value) < 100 && f.Value != math.Trunc(f.Value) {
		v = fmt.Sprintf("%.2f", f.Value)
	}
	if f.Unit == "" {
		return v
	}
	return v + " " + f.Unit
}

// Ms formats milliseconds with three significant digits: 0.412ms, 3.05ms,
// 187ms, 2.31s.
func Ms(ms float64) string {
	switch {
	case ms >= 1000:
		return fmt.Sprintf("%.3gs", ms/1000)
	case ms >= 100:
		return fmt.Sprintf("%.0fms", ms)
	default:
		return fmt.Sprintf("%.3gms", ms)
	}
}

// Ratio formats a ratio with two decimals, or two significant digits below
// 0.1 (so that 0.0003× does not read 0.00×).
func Ratio(r float64) string {
	if r < 0.1 {
		return fmt.Sprintf("%.2g×", r)
	}
	return fmt.Sprintf("%.2f×", r)
}
