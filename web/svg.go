package web

import (
	"fmt"
	"html"
	"html/template"
	"strings"
)

// Server-side SVG charts for the console: drawn from data into inline <svg>
// markup with a <title>, role="img" and an aria-label, so screen readers get
// a summary and no chart library or script is needed. Every text is escaped;
// the result is safe to embed as template.HTML.

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

const (
	svgW    = 640
	svgPadL = 150
	svgPadR = 70
)

func esc(s string) string { return html.EscapeString(s) }

// svgBars draws a horizontal bar chart, one row per bar, scaled to the
// largest value. No data draws an empty-state message instead of axes.
func svgBars(title string, bars []chartBar) template.HTML {
	const rowH, top = 28, 34
	h := top + max(len(bars), 1)*rowH + 10
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" role="img" aria-label="%s">`, svgW, h, esc(title))
	fmt.Fprintf(&b, `<title>%s</title>`, esc(title))
	fmt.Fprintf(&b, `<text x="0" y="18" class="chart-title">%s</text>`, esc(title))
	if len(bars) == 0 {
		fmt.Fprintf(&b, `<text x="0" y="%d" class="chart-empty">No data for this period</text></svg>`, top+18)
		return template.HTML(b.String())
	}
	var peak int64
	for _, x := range bars {
		peak = max(peak, x.Value)
	}
	span := svgW - svgPadL - svgPadR
	for i, x := range bars {
		y := top + i*rowH
		w := 0
		if peak > 0 && x.Value > 0 {
			w = max(1, int(int64(span)*x.Value/peak))
		}
		fmt.Fprintf(&b, `<g><title>%s: %s</title>`, esc(x.Label), formatPoints(x.Value))
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="chart-label" text-anchor="end">%s</text>`, svgPadL-8, y+17, esc(truncate(x.Label, 22)))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" class="bar"/>`, svgPadL, y+4, w, rowH-8)
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="chart-value">%s</text></g>`, svgPadL+w+6, y+17, formatPoints(x.Value))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// svgLine draws one or more series over the same labels (e.g. 12 months)
// with a legend. Negative values are clamped to the axis.
func svgLine(title string, labels []string, series []chartSeries) template.HTML {
	const h, top, bottom, left, right = 260, 40, 40, 70, 20
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" role="img" aria-label="%s">`, svgW, h, esc(title))
	fmt.Fprintf(&b, `<title>%s</title>`, esc(title))
	fmt.Fprintf(&b, `<text x="0" y="18" class="chart-title">%s</text>`, esc(title))
	if len(labels) == 0 {
		b.WriteString(`<text x="0" y="60" class="chart-empty">No data yet</text></svg>`)
		return template.HTML(b.String())
	}
	var peak int64 = 1
	for _, s := range series {
		for _, v := range s.Values {
			peak = max(peak, v)
		}
	}
	plotW, plotH := svgW-left-right, h-top-bottom
	xAt := func(i int) int {
		if len(labels) == 1 {
			return left + plotW/2
		}
		return left + i*plotW/(len(labels)-1)
	}
	yAt := func(v int64) int { return top + plotH - int(int64(plotH)*max(v, 0)/peak) }
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" class="axis"/>`, left, top+plotH, left+plotW, top+plotH)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" class="axis"/>`, left, top, left, top+plotH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="chart-label" text-anchor="end">%s</text>`, left-6, top+4, formatPoints(peak))
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="chart-label" text-anchor="end">0</text>`, left-6, top+plotH+4)
	for i, l := range labels {
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="chart-label" text-anchor="middle">%s</text>`, xAt(i), h-bottom+18, esc(l))
	}
	for si, s := range series {
		pts := make([]string, 0, len(s.Values))
		for i, v := range s.Values {
			if i < len(labels) {
				pts = append(pts, fmt.Sprintf("%d,%d", xAt(i), yAt(v)))
			}
		}
		fmt.Fprintf(&b, `<polyline points="%s" class="line %s"><title>%s</title></polyline>`, strings.Join(pts, " "), esc(s.Class), esc(s.Name))
		for i, v := range s.Values {
			if i < len(labels) {
				fmt.Fprintf(&b, `<circle cx="%d" cy="%d" r="3" class="dot %s"><title>%s %s: %s</title></circle>`,
					xAt(i), yAt(v), esc(s.Class), esc(s.Name), esc(labels[i]), formatPoints(v))
			}
		}
		lx := left + si*200
		fmt.Fprintf(&b, `<rect x="%d" y="26" width="12" height="4" class="legend %s"/><text x="%d" y="32" class="chart-label">%s</text>`,
			lx, esc(s.Class), lx+16, esc(s.Name))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// svgHeatmap draws a matrix (rows: issuers, columns: redeemers) with each
// cell shaded by its share of the largest value (five shade classes) and the
// value written in it.
func svgHeatmap(title string, rows, cols []string, cells [][]int64) template.HTML {
	const cellW, cellH, left, top = 90, 30, 150, 70
	w := max(svgW, left+len(cols)*cellW+10)
	h := top + max(len(rows), 1)*cellH + 10
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" role="img" aria-label="%s">`, w, h, esc(title))
	fmt.Fprintf(&b, `<title>%s</title>`, esc(title))
	fmt.Fprintf(&b, `<text x="0" y="18" class="chart-title">%s</text>`, esc(title))
	if len(rows) == 0 || len(cols) == 0 {
		fmt.Fprintf(&b, `<text x="0" y="%d" class="chart-empty">No cross-partner redemptions in this period</text></svg>`, top)
		return template.HTML(b.String())
	}
	var peak int64
	for _, r := range cells {
		for _, v := range r {
			peak = max(peak, v)
		}
	}
	fmt.Fprintf(&b, `<text x="%d" y="40" class="chart-label">redeemed at →</text><text x="0" y="%d" class="chart-label">issued by ↓</text>`, left, top-8)
	for j, c := range cols {
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="chart-label" text-anchor="middle">%s</text>`, left+j*cellW+cellW/2, top-8, esc(truncate(c, 12)))
	}
	for i, r := range rows {
		y := top + i*cellH
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="chart-label" text-anchor="end">%s</text>`, left-8, y+cellH/2+5, esc(truncate(r, 20)))
		for j := range cols {
			var v int64
			if i < len(cells) && j < len(cells[i]) {
				v = cells[i][j]
			}
			shade := 0
			if peak > 0 && v > 0 {
				shade = 1 + int(4*v/peak)
				shade = min(shade, 5)
			}
			x := left + j*cellW
			fmt.Fprintf(&b, `<g><title>%s → %s: %s points</title><rect x="%d" y="%d" width="%d" height="%d" class="heat heat-%d"/>`,
				esc(r), esc(cols[j]), formatPoints(v), x, y, cellW-2, cellH-2, shade)
			fmt.Fprintf(&b, `<text x="%d" y="%d" class="heat-value" text-anchor="middle">%s</text></g>`, x+cellW/2, y+cellH/2+4, formatPoints(v))
		}
	}
	b.WriteString(`</svg>`)
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
