package web

import (
	"strings"
	"testing"
)

// TestSVGWaterfall: rises and falls start where the running sum stands,
// totals from zero, zero steps are left out, every label is escaped.
func TestSVGWaterfall(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		steps []waterfallStep
		want  []string
		not   []string
	}{
		"empty": {nil, []string{"No data for this period"}, []string{"<rect"}},
		"rise, fall, total": {
			[]waterfallStep{{Label: "Revenue", Delta: 1000}, {Label: "Cost", Delta: -400}, {Label: "Nothing", Delta: 0},
				{Label: "Result <net>", Delta: 600, Total: true}},
			[]string{
				// scale 0..1000 over 2%..96%: the rise spans it, the fall
				// from 600 to 1000 (58.4% to 96%), the total 0 to 600.
				`<rect x="2%" y="28" width="94%" height="16" class="bar up"/>`,
				`<rect x="58.4%" y="74" width="37.6%" height="16" class="bar down"/>`,
				`<rect x="2%" y="120" width="56.4%" height="16" class="bar total"/>`,
				"+10.00 EUR", "-4.00 EUR", "Result &lt;net&gt;"},
			[]string{"Nothing", "<net>"}},
		"below zero": {
			[]waterfallStep{{Label: "Cost", Delta: -500}, {Label: "Result", Delta: -500, Total: true}},
			[]string{`<rect x="2%" y="28" width="94%" height="16" class="bar down"/>`, `class="bar total"`},
			nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := string(svgWaterfall("Result", "EUR", tc.steps))
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("no %q in\n%s", w, got)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(got, n) {
					t.Errorf("%q in\n%s", n, got)
				}
			}
		})
	}
}
