package web

import (
	"fmt"
	"html"
	"html/template"
	"strings"
)

// Server-side charts for the console: drawn from data into inline <svg>
// markup with a <title>, role="img" and an aria-label, so screen readers get
// a summary and no chart library or script is needed. Every text is escaped;
// the result is safe to embed as template.HTML.
//
// The charts have no viewBox that would scale them as a whole: their width is
// the page's (horizontal positions in percent), their height and text sizes
// are CSS pixels, so labels stay at their size (12 px and more, ui.css) from
// a phone to a wide screen. Only the plot of the line chart is stretched
// (its own viewBox, preserveAspectRatio none, strokes that do not scale).
// The liability matrix is an HTML table (heatmapTable): its labels wrap and
// it scrolls sideways on a narrow screen.

// chartBar is one bar: a label and a non-negative value.
type chartBar struct {
	Label string
	Value int64
}

// chartSeries is one line of a line chart; Values align with the labels.
type chartSeries struct {
	Name   string
	Values []int64
	Class  string // CSS class of the stroke: series-a, series-b
}

// barSpan is the share of the width the longest bar takes, in percent; the
// rest holds its value.
const barSpan = 78.0

func esc(s string) string { return html.EscapeString(s) }

// svgBars draws a horizontal bar chart, one row per bar (its label above
// it, whole, and its value after it), scaled to the largest value. No data
// draws an empty-state message instead.
func svgBars(title string, bars []chartBar) template.HTML {
	const rowH, top = 46, 8
	h := top + max(len(bars), 1)*rowH + 6
	var b strings.Builder
	fmt.Fprintf(&b, `<figcaption class="chart-title">%s</figcaption>`, esc(title))
	fmt.Fprintf(&b, `<svg class="chart chart-bars" xmlns="http://www.w3.org/2000/svg" width="100%%" height="%d" role="img" aria-label="%s">`, h, esc(title))
	fmt.Fprintf(&b, `<title>%s</title>`, esc(title))
	if len(bars) == 0 {
		fmt.Fprintf(&b, `<text x="12" y="%d" class="chart-empty">No data for this period</text></svg>`, top+24)
		return template.HTML(b.String())
	}
	var peak int64
	for _, x := range bars {
		peak = max(peak, x.Value)
	}
	for i, x := range bars {
		y := top + i*rowH
		pct := 0.0
		if peak > 0 && x.Value > 0 {
			pct = max(0.5, barSpan*float64(x.Value)/float64(peak))
		}
		fmt.Fprintf(&b, `<g><title>%s: %s</title>`, esc(x.Label), formatPoints(x.Value))
		fmt.Fprintf(&b, `<text x="12" y="%d" class="chart-label">%s</text>`, y+14, esc(truncate(x.Label, 48)))
		fmt.Fprintf(&b, `<svg x="12" y="%d" width="100%%" height="18" overflow="visible"><rect x="0" y="0" width="%s%%" height="16" class="bar"/>`, y+20, pctText(pct))
		fmt.Fprintf(&b, `<svg x="%s%%" y="0" overflow="visible"><text x="6" y="13" class="chart-value">%s</text></svg></svg></g>`, pctText(pct), formatPoints(x.Value))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// pctText is a percentage with at most one decimal.
func pctText(p float64) string {
	return strings.TrimSuffix(fmt.Sprintf("%.1f", p), ".0")
}

// svgLine draws one or more series over the same labels (e.g. 12 months)
// with a legend and the peak written above the plot. Negative values are
// clamped to the axis. On a narrow screen every other label hides (ui.css).
func svgLine(title string, labels []string, series []chartSeries) template.HTML {
	const h, plotTop, plotH = 246, 56, 150
	const vbW, vbTop = 1000, 4 // the plot's viewBox: x 0..1000, y 4..150 for the values
	var b strings.Builder
	fmt.Fprintf(&b, `<figcaption class="chart-title">%s</figcaption>`, esc(title))
	fmt.Fprintf(&b, `<svg class="chart chart-line" xmlns="http://www.w3.org/2000/svg" width="100%%" height="%d" role="img" aria-label="%s">`, h, esc(title))
	fmt.Fprintf(&b, `<title>%s</title>`, esc(title))
	if len(labels) == 0 {
		b.WriteString(`<text x="12" y="30" class="chart-empty">No data yet</text></svg>`)
		return template.HTML(b.String())
	}
	var peak int64 = 1
	for _, s := range series {
		for _, v := range s.Values {
			peak = max(peak, v)
		}
	}
	// The plot spans 7%..93% of the width, so the labels at either end,
	// centred on their dots, show whole.
	const padL, spanX = 7.0, 86.0
	xPct := func(i int) float64 {
		if len(labels) == 1 {
			return padL + spanX/2
		}
		return padL + spanX*float64(i)/float64(len(labels)-1)
	}
	xVB := func(i int) int {
		if len(labels) == 1 {
			return vbW / 2
		}
		return i * vbW / (len(labels) - 1)
	}
	yAt := func(v int64) int { return plotH - int(int64(plotH-vbTop)*max(v, 0)/peak) }
	for si, s := range series {
		lx := 12 + si*130
		fmt.Fprintf(&b, `<rect x="%d" y="14" width="14" height="4" class="legend %s"/><text x="%d" y="20" class="chart-label">%s</text>`,
			lx, esc(s.Class), lx+20, esc(s.Name))
	}
	fmt.Fprintf(&b, `<text x="12" y="42" class="chart-label">peak %s</text>`, formatPoints(peak))
	fmt.Fprintf(&b, `<svg x="%s%%" y="%d" width="%s%%" height="%d" viewBox="0 0 %d %d" preserveAspectRatio="none" overflow="visible">`,
		pctText(padL), plotTop, pctText(spanX), plotH, vbW, plotH)
	fmt.Fprintf(&b, `<line x1="0" y1="%d" x2="%d" y2="%d" class="axis" vector-effect="non-scaling-stroke"/>`, plotH, vbW, plotH)
	for _, s := range series {
		pts := make([]string, 0, len(s.Values))
		for i, v := range s.Values {
			if i < len(labels) {
				pts = append(pts, fmt.Sprintf("%d,%d", xVB(i), yAt(v)))
			}
		}
		fmt.Fprintf(&b, `<polyline points="%s" class="line %s" vector-effect="non-scaling-stroke"><title>%s</title></polyline>`,
			strings.Join(pts, " "), esc(s.Class), esc(s.Name))
	}
	b.WriteString(`</svg>`)
	for _, s := range series {
		for i, v := range s.Values {
			if i < len(labels) {
				fmt.Fprintf(&b, `<circle cx="%s%%" cy="%d" r="4" class="dot %s"><title>%s %s: %s</title></circle>`,
					pctText(xPct(i)), plotTop+yAt(v), esc(s.Class), esc(s.Name), esc(labels[i]), formatPoints(v))
			}
		}
	}
	for i, l := range labels {
		class := "chart-label"
		if i%2 == 1 {
			class += " x-odd"
		}
		fmt.Fprintf(&b, `<text x="%s%%" y="%d" class="%s" text-anchor="middle">%s</text>`, pctText(xPct(i)), plotTop+plotH+22, class, esc(l))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// heatmapTable draws a matrix (rows: issuers, columns: redeemers) as a
// table with each cell shaded by its share of the largest value (five shade
// classes), the value written in it and the pair in its title.
func heatmapTable(title string, rows, cols []string, cells [][]int64) template.HTML {
	var b strings.Builder
	if len(rows) == 0 || len(cols) == 0 {
		fmt.Fprintf(&b, `<p class="empty">%s: no cross-partner redemptions in this period.</p>`, esc(title))
		return template.HTML(b.String())
	}
	var peak int64
	for _, r := range cells {
		for _, v := range r {
			peak = max(peak, v)
		}
	}
	fmt.Fprintf(&b, `<p class="chart-title" aria-hidden="true">%s</p><div class="table-box"><table class="heatmap"><caption class="sr-only">%s</caption><thead><tr><th scope="col">issued by ↓ · redeemed at →</th>`, esc(title), esc(title))
	for _, c := range cols {
		fmt.Fprintf(&b, `<th scope="col">%s</th>`, esc(c))
	}
	b.WriteString(`</tr></thead><tbody>`)
	for i, r := range rows {
		fmt.Fprintf(&b, `<tr><th scope="row">%s</th>`, esc(r))
		for j := range cols {
			var v int64
			if i < len(cells) && j < len(cells[i]) {
				v = cells[i][j]
			}
			shade := 0
			if peak > 0 && v > 0 {
				shade = min(1+int(4*v/peak), 5)
			}
			fmt.Fprintf(&b, `<td class="heat heat-%d" title="%s → %s: %s points">%s</td>`, shade, esc(r), esc(cols[j]), formatPoints(v), formatPoints(v))
		}
		b.WriteString(`</tr>`)
	}
	b.WriteString(`</tbody></table></div>`)
	return template.HTML(b.String())
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// formatPoints writes n with thousands separators: 1234567 → "1,234,567".
func formatPoints(n int64) string {
	neg := n < 0
	u := uint64(n)
	if neg {
		u = uint64(-n)
	}
	s := fmt.Sprint(u)
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, ch := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	return b.String()
}
