package web

import (
	"regexp"
	"strings"
	"testing"
)

func TestSVGBarsScaleToLargestAndEscape(t *testing.T) {
	t.Parallel()
	out := string(svgBars("Issued <this> month", []chartBar{{"Sky <Air>", 1000}, {"Hotel", 250}, {"Bank", 0}}))
	for _, want := range []string{`role="img"`, `aria-label="Issued &lt;this&gt; month"`, `<title>Issued &lt;this&gt; month</title>`,
		`width="78%"`, `width="19.5%"`, `width="0%"`, "1,000", "Sky &lt;Air&gt;"} {
		if !strings.Contains(out, want) {
			t.Errorf("bar chart lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "<Air>") || strings.Contains(out, "<this>") {
		t.Error("bar chart does not escape labels")
	}
	if empty := string(svgBars("Nothing", nil)); !strings.Contains(empty, "No data for this period") || strings.Contains(empty, "<rect") {
		t.Errorf("empty bar chart = %s, want an empty-state message and no bars", empty)
	}
	if strings.Contains(out, "viewBox") {
		t.Error("bar chart has a viewBox: it would scale its text below 12 px on a narrow screen")
	}
	long := string(svgBars("x", []chartBar{{"Olive & Vine Restaurants and Bars", 1}}))
	if !strings.Contains(long, "Olive &amp; Vine Restaurants and Bars</text>") {
		t.Errorf("a 33-character label is cut:\n%s", long)
	}
}

func TestSVGLinePlotsEveryPoint(t *testing.T) {
	t.Parallel()
	out := string(svgLine("Trend", []string{"Jan", "Feb", "Mar"}, []chartSeries{{Name: "Issued", Values: []int64{0, 50, 100}, Class: "series-a"}}))
	// Plot viewBox: x 0..1000, y 150 (zero) .. 4 (peak 100).
	if !strings.Contains(out, `points="0,150 500,77 1000,4"`) {
		t.Errorf("line points wrong:\n%s", out)
	}
	if n := strings.Count(out, "<circle"); n != 3 {
		t.Errorf("line chart has %d points, want 3", n)
	}
	for _, want := range []string{"Issued Feb: 50", ">Jan<", ">peak 100<", `cx="50%"`, `class="chart-label x-odd"`} {
		if !strings.Contains(out, want) {
			t.Errorf("line chart lacks %q", want)
		}
	}
}

func TestHeatmapShadesByShareOfPeak(t *testing.T) {
	t.Parallel()
	out := string(heatmapTable("Matrix", []string{"Air", "Hotel"}, []string{"Air", "Bank"}, [][]int64{{100, 0}, {50, 1}}))
	shades := regexp.MustCompile(`class="heat heat-([0-9])"`).FindAllStringSubmatch(out, -1)
	got := []string{}
	for _, s := range shades {
		got = append(got, s[1])
	}
	if strings.Join(got, ",") != "5,0,3,1" {
		t.Errorf("heat shades = %v, want 5,0,3,1 (peak, none, half, a sliver)", got)
	}
	if !strings.Contains(out, `title="Hotel → Air: 50 points">50</td>`) {
		t.Errorf("heatmap cell lacks its title:\n%s", out)
	}
	if empty := string(heatmapTable("Matrix", nil, nil, nil)); !strings.Contains(empty, "no cross-partner redemptions") {
		t.Error("empty heatmap has no empty-state message")
	}
}

func TestFormatPoints(t *testing.T) {
	t.Parallel()
	for in, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", -1234567: "-1,234,567", 100000: "100,000"} {
		if got := formatPoints(in); got != want {
			t.Errorf("formatPoints(%d) = %q, want %q", in, got, want)
		}
	}
}
