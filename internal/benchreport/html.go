package benchreport

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
	"time"
)

// percentileColumns are the bars of each latency group, with their colours.
var percentileColumns = []struct {
	name  string
	color string
	value func(Latency) float64
}{
	{"p50", "#4e79a7", func(l Latency) float64 { return l.P50 }},
	{"p95", "#59a14f", func(l Latency) float64 { return l.P95 }},
	{"p99", "#f28e2b", func(l Latency) float64 { return l.P99 }},
	{"p99.9", "#e15759", func(l Latency) float64 { return l.P999 }},
	{"max", "#76b7b2", func(l Latency) float64 { return l.Max }},
}

var lineColors = []string{"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1"}

// WriteHTML writes a self-contained page: the table, a chart of the latency
// percentiles of every scenario (log scale), and each scenario's lag over
// time.
func (r Report) WriteHTML(w io.Writer) error {
	var b strings.Builder
	esc := html.EscapeString
	fmt.Fprintf(&b, `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>%s</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{padding:2px 8px;text-align:right;border-bottom:1px solid #ddd}
th:nth-child(-n+2),td:nth-child(-n+2),td:last-child{text-align:left}
svg text{font:11px system-ui,sans-serif}.grid{stroke:#ddd}.axis{stroke:#888}
</style></head><body>
<h1>%s</h1><p>%s — %s, %.0f s</p>
`, esc(r.Title), esc(r.Title), esc(r.Started.Format(time.RFC3339)), esc(r.Machine), r.Seconds)
	b.WriteString("<table><tr>")
	for _, h := range tableHeader {
		fmt.Fprintf(&b, "<th>%s</th>", esc(h))
	}
	b.WriteString("</tr>\n")
	for _, row := range r.rows() {
		b.WriteString("<tr>")
		for _, c := range row {
			fmt.Fprintf(&b, "<td>%s</td>", esc(c))
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</table>\n")
	for _, s := range r.Scenarios {
		for _, n := range s.Notes {
			fmt.Fprintf(&b, "<p><b>%s</b>: %s</p>\n", esc(s.Name), esc(n))
		}
	}
	b.WriteString("<h2>Latency percentiles</h2>\n")
	latencyChart(&b, r)
	for _, s := range r.Scenarios {
		if len(s.Lag) > 0 {
			fmt.Fprintf(&b, "<h2>%s: lag over time</h2>\n", esc(s.Name))
			lagChart(&b, s)
		}
	}
	b.WriteString("</body></html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// latencyChart draws one group of bars per latency of every scenario, on a
// logarithmic millisecond axis (the distributions span microseconds to
// seconds).
func latencyChart(b *strings.Builder, r Report) {
	type group struct {
		label string
		l     Latency
	}
	var groups []group
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range r.Scenarios {
		for _, l := range s.Latencies {
			if l.Count == 0 {
				continue
			}
			groups = append(groups, group{s.Name + " · " + l.Name, l})
			for _, c := range percentileColumns {
				if v := c.value(l); v > 0 {
					lo, hi = math.Min(lo, v), math.Max(hi, v)
				}
			}
		}
	}
	if len(groups) == 0 {
		b.WriteString("<p>No latencies.</p>\n")
		return
	}
	const (
		// left leaves room for the first group's label, drawn slanted to
		// the left of its bars.
		barW, gap, left, top, plotH, labelH = 11, 22, 240, 20, 300, 280
	)
	groupW := barW*len(percentileColumns) + gap
	width := left + groupW*len(groups) + 20
	d0, d1 := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if d1 <= d0 {
		d1 = d0 + 1
	}
	y := func(v float64) float64 {
		v = math.Max(v, math.Pow(10, d0))
		return top + plotH - (math.Log10(v)-d0)/(d1-d0)*plotH
	}
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img" aria-label="latency percentiles per scenario">`+"\n",
		width, top+plotH+labelH)
	for d := d0; d <= d1; d++ {
		gy := y(math.Pow(10, d))
		fmt.Fprintf(b, `<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
			left, width-10, gy, gy, left-6, gy+4, html.EscapeString(Ms(math.Pow(10, d))))
	}
	for i, g := range groups {
		x0 := left + i*groupW + gap/2
		for j, c := range percentileColumns {
			v := c.value(g.l)
			by := y(v)
			fmt.Fprintf(b, `<rect class="bar" x="%d" y="%.1f" width="%d" height="%.1f" fill="%s"><title>%s %s: %s</title></rect>`+"\n",
				x0+j*barW, by, barW-1, top+plotH-by, c.color, html.EscapeString(g.label), c.name, html.EscapeString(Ms(v)))
		}
		lx := x0 + barW*len(percentileColumns)/2
		fmt.Fprintf(b, `<text x="%d" y="%d" transform="rotate(-35 %d %d)" text-anchor="end">%s</text>`+"\n",
			lx, top+plotH+14, lx, top+plotH+14, html.EscapeString(g.label))
	}
	fmt.Fprintf(b, `<line class="axis" x1="%d" x2="%d" y1="%d" y2="%d"/>`+"\n", left, width-10, top+plotH, top+plotH)
	for j, c := range percentileColumns {
		fmt.Fprintf(b, `<rect x="%d" y="4" width="10" height="10" fill="%s"/><text x="%d" y="13">%s</text>`+"\n",
			left+j*70, c.color, left+j*70+14, c.name)
	}
	b.WriteString("</svg>\n")
}

// lagChart draws a scenario's lag series as lines over time, with its marks.
func lagChart(b *strings.Builder, s Scenario) {
	const (
		width, height, left, top, plotW, plotH = 760, 280, 60, 24, 660, 200
	)
	var xMax, yMax float64
	for _, ser := range s.Lag {
		for _, p := range ser.Points {
			xMax, yMax = math.Max(xMax, p[0]), math.Max(yMax, p[1])
		}
	}
	for _, m := range s.Marks {
		xMax = math.Max(xMax, m.X)
	}
	xMax, yMax = math.Max(xMax, 1), niceCeil(math.Max(yMax, 1))
	x := func(v float64) float64 { return left + v/xMax*plotW }
	y := func(v float64) float64 { return top + plotH - v/yMax*plotH }
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img" aria-label="lag over time">`+"\n", width, height)
	for i := 0; i <= 4; i++ {
		v := yMax * float64(i) / 4
		fmt.Fprintf(b, `<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/><text x="%d" y="%.1f" text-anchor="end">%.0f</text>`+"\n",
			left, left+plotW, y(v), y(v), left-6, y(v)+4, v)
	}
	unit := ""
	if len(s.Lag) > 0 {
		unit = s.Lag[0].Unit
	}
	fmt.Fprintf(b, `<text x="%d" y="%d">%s</text>`+"\n", 4, top-8, html.EscapeString(unit))
	for i := 0; i <= 5; i++ {
		v := xMax * float64(i) / 5
		fmt.Fprintf(b, `<line class="axis" x1="%.1f" x2="%.1f" y1="%d" y2="%d"/><text x="%.1f" y="%d" text-anchor="middle">%.0f s</text>`+"\n",
			x(v), x(v), top+plotH, top+plotH+4, x(v), top+plotH+16, v)
	}
	for i, m := range s.Marks { // labels one under the other: marks may be close
		fmt.Fprintf(b, `<line class="axis" stroke-dasharray="4 3" x1="%.1f" x2="%.1f" y1="%d" y2="%d"/><text x="%.1f" y="%d">%s</text>`+"\n",
			x(m.X), x(m.X), top, top+plotH, x(m.X)+3, top+10+12*i, html.EscapeString(m.Name))
	}
	for i, ser := range s.Lag {
		color := lineColors[i%len(lineColors)]
		var pts strings.Builder
		for _, p := range ser.Points {
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(p[0]), y(p[1]))
		}
		fmt.Fprintf(b, `<polyline class="line" fill="none" stroke="%s" stroke-width="1.5" points="%s"><title>%s</title></polyline>`+"\n",
			color, strings.TrimSpace(pts.String()), html.EscapeString(ser.Name))
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			left+i*130, height-18, color, left+i*130+14, height-9, html.EscapeString(ser.Name))
	}
	fmt.Fprintf(b, `<line class="axis" x1="%d" x2="%d" y1="%d" y2="%d"/>`+"\n", left, left+plotW, top+plotH, top+plotH)
	b.WriteString("</svg>\n")
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}
