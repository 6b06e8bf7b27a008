package web

import (
	"fmt"
	"html/template"
	"strings"
)

// waterfallStep is one step of a waterfall chart: a signed change, or (Total)
// a bar from zero to the running sum.
type waterfallStep struct {
	Label string
	Delta int64
	Total bool
}

// svgWaterfall draws a horizontal waterfall in money: one row per step, its
// label and signed amount above a bar that runs from the running sum before
// the step to the one after it (rises and falls in two colours), totals from
// zero; steps of zero are left out. Horizontal, so that a phone shows every label whole. It follows
// svgBars: positions in percent of the page's width, sizes in CSS pixels.
func svgWaterfall(title, currency string, all []waterfallStep) template.HTML {
	const rowH, top = 46, 8
	// A step that changes nothing is left out; totals always show.
	var steps []waterfallStep
	for _, s := range all {
		if s.Total || s.Delta != 0 {
			steps = append(steps, s)
		}
	}
	h := top + max(len(steps), 1)*rowH + 6
	var b strings.Builder
	fmt.Fprintf(&b, `<figcaption class="chart-title">%s</figcaption>`, esc(title))
	fmt.Fprintf(&b, `<svg class="chart chart-waterfall" xmlns="http://www.w3.org/2000/svg" width="100%%" height="%d" role="img" aria-label="%s">`, h, esc(title))
	fmt.Fprintf(&b, `<title>%s</title>`, esc(title))
	if len(steps) == 0 {
		fmt.Fprintf(&b, `<text x="12" y="%d" class="chart-empty">No data for this period</text></svg>`, top+24)
		return template.HTML(b.String())
	}
	// The scale spans every running sum and zero.
	var lo, hi, run int64
	for _, s := range steps {
		if s.Total {
			run = s.Delta
		} else {
			run += s.Delta
		}
		lo, hi = min(lo, run), max(hi, run)
	}
	span := max(hi-lo, 1)
	const padL, width = 2.0, 94.0
	x := func(v int64) float64 { return padL + width*float64(v-lo)/float64(span) }
	fmt.Fprintf(&b, `<line x1="%s%%" y1="%d" x2="%s%%" y2="%d" class="axis"/>`, pctText(x(0)), top+18, pctText(x(0)), h-6)
	run = 0
	for i, s := range steps {
		y := top + i*rowH
		from, to, class := run, run+s.Delta, "bar up"
		if s.Total {
			from, to, class = 0, s.Delta, "bar total"
		} else if s.Delta < 0 {
			class = "bar down"
		}
		run = to
		amount := formatMoney(s.Delta, currency)
		if !s.Total && s.Delta > 0 {
			amount = "+" + amount
		}
		left, right := x(min(from, to)), x(max(from, to))
		fmt.Fprintf(&b, `<g><title>%s: %s</title>`, esc(s.Label), esc(amount))
		fmt.Fprintf(&b, `<text x="12" y="%d" class="chart-label">%s <tspan class="chart-value">%s</tspan></text>`, y+14, esc(truncate(s.Label, 40)), esc(amount))
		fmt.Fprintf(&b, `<rect x="%s%%" y="%d" width="%s%%" height="16" class="%s"/></g>`, pctText(left), y+20, pctText(max(right-left, 0.4)), class)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
