package reports

import (
	"bytes"
	"math"
	"reflect"
	"strings"
	"testing"

	"arbench/harness"
)

// TestPointAxisZoomed: 2.80 against 2.83 bits/byte is visible: the axis
// spans the intervals with a margin, not zero to 3; every interval is
// inside it; a reference near the data widens it, a far one does not.
func TestPointAxisZoomed(t *testing.T) {
	c := &PointChart{Title: "zoom", Points: []Point{
		{Label: "a", Value: 2.80, Lo: 2.79, Hi: 2.81, Interval: true},
		{Label: "b", Value: 2.83, Lo: 2.815, Hi: 2.85, Interval: true},
		{Label: "c", Value: 2.82},
	}}
	lo, hi, off := c.axis()
	if !(lo < 2.79 && hi > 2.85) {
		t.Errorf("axis [%v, %v] does not include every interval [2.79, 2.85]", lo, hi)
	}
	if lo < 2.78 || hi > 2.86 || len(off) != 0 {
		t.Errorf("axis [%v, %v] is not zoomed to the intervals (off %v)", lo, hi, off)
	}
	if m := (2.79 - lo) / (hi - lo); math.Abs(m-pointMargin/(1+2*pointMargin)) > 1e-9 {
		t.Errorf("left margin is %.3f of the axis", m)
	}
	c.References = []Reference{{"near", 2.88}, {"unigram", 4.86}, {"below", -1}}
	lo, hi, off = c.axis()
	if hi < 2.88 || hi > 2.9 || lo > 2.79 || lo < 2.78 {
		t.Errorf("axis [%v, %v]: want the near reference in and the far ones out", lo, hi)
	}
	if len(off) != 2 || off[0].Label != "unigram" || off[1].Label != "below" {
		t.Errorf("off-scale references %v", off)
	}
	var svg bytes.Buffer
	if err := Render(&svg, c, FormatSVG); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"unigram 4.860 →", "← below -1.000", ">near<", ">a<"} {
		if !strings.Contains(svg.String(), s) {
			t.Errorf("SVG lacks %q", s)
		}
	}
	// One point without an interval still gets a range around it.
	single := &PointChart{Points: []Point{{Label: "a", Value: 3}}}
	if lo, hi, _ := single.axis(); !(lo < 3 && hi > 3) {
		t.Errorf("single point: axis [%v, %v]", lo, hi)
	}
	if lo, hi, _ := (&PointChart{Points: []Point{{Label: "a", Value: 0}}}).axis(); !(lo < 0 && hi > 0) {
		t.Errorf("single zero: axis [%v, %v]", lo, hi)
	}
}

// TestPointClipping: intervals are clipped to the metric's bounds and the
// axis does not pass them.
func TestPointClipping(t *testing.T) {
	c := &PointChart{Bounds: &Bounds{0, 1}, Points: []Point{
		{Label: "a", Value: 0.99, Lo: 0.97, Hi: 1.02, Interval: true},
		{Label: "b", Value: 0.02, Lo: -0.01, Hi: 0.05, Interval: true},
	}}
	if lo, hi := c.interval(c.Points[0]); lo != 0.97 || hi != 1 {
		t.Errorf("clipped interval [%v, %v]", lo, hi)
	}
	if lo, hi, _ := c.axis(); lo != 0 || hi != 1 {
		t.Errorf("axis [%v, %v], want [0, 1]", lo, hi)
	}
	if err := Render(&bytes.Buffer{}, c, FormatPNG); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []*PointChart{
		{Title: "bad"},
		{Title: "bad", Points: []Point{{Label: "a", Value: math.NaN()}}},
		{Title: "bad", Points: []Point{{Label: "a", Value: 1, Lo: 2, Hi: 1, Interval: true}}},
		{Title: "bad", Points: []Point{{Label: "a", Value: 1}}, References: []Reference{{"r", math.Inf(1)}}},
	} {
		if err := Render(&bytes.Buffer{}, bad, FormatSVG); err == nil {
			t.Errorf("%+v rendered", bad)
		}
	}
}

// TestLineChartClipping: a band outside [0, 1] is clipped, and so is the
// axis.
func TestLineChartClipping(t *testing.T) {
	c := &LineChart{Title: "acc", YBounds: &Bounds{0, 1}, Lines: []Line{
		{Group: "a", X: []float64{1, 2}, Y: []float64{0.02, 0.98}, Lo: []float64{-0.05, 0.9}, Hi: []float64{0.1, 1.05}},
	}}
	lo, hi := c.band(c.Lines[0])
	if !reflect.DeepEqual(lo, []float64{0, 0.9}) || !reflect.DeepEqual(hi, []float64{0.1, 1}) {
		t.Errorf("band %v %v", lo, hi)
	}
	if c.Lines[0].Lo[0] != -0.05 {
		t.Error("clipping changed the line's data")
	}
	p, _, err := c.build()
	if err != nil {
		t.Fatal(err)
	}
	if p.Y.Min < 0 || p.Y.Max > 1 {
		t.Errorf("y axis [%v, %v] passes [0, 1]", p.Y.Min, p.Y.Max)
	}
	// The fixture's accuracy series is bounded, its loss series only below.
	for _, f := range Figures(load(t)) {
		lc, ok := f.Chart.(*LineChart)
		if !ok || f.Kind != FigureSeries {
			continue
		}
		var want *Bounds
		switch f.Name {
		case "series_synthetic_copy_accuracy_vs_distance", "series_text_jargon_token_error_vs_position":
			want = &Bounds{0, 1}
		case "series_text_jargon_loss_vs_context":
			want = &Bounds{0, math.Inf(1)}
		}
		if !reflect.DeepEqual(lc.YBounds, want) {
			t.Errorf("%s: bounds %v, want %v", f.Name, lc.YBounds, want)
		}
	}
}

func seriesChart(t *testing.T, name string) (*LineChart, Figure) {
	t.Helper()
	for _, f := range Figures(load(t)) {
		if f.Name == name {
			return f.Chart.(*LineChart), f
		}
	}
	t.Fatalf("no figure %s", name)
	return nil, Figure{}
}

// TestSeriesTitlesAndLabels: a series chart is named after its own x axis
// (copy's accuracy_vs_distance is measured against length), without a
// doubled unit, and its one-seed lines keep the series' own intervals.
func TestSeriesTitlesAndLabels(t *testing.T) {
	c, f := seriesChart(t, "series_synthetic_copy_accuracy_vs_distance")
	if c.Title != "synthetic/copy: accuracy vs length" || c.YLabel != "accuracy" || c.XLabel != "length (tokens)" || !c.Markers {
		t.Errorf("title %q, y %q, x %q, markers %v", c.Title, c.YLabel, c.XLabel, c.Markers)
	}
	if !strings.Contains(f.Caption, "Wilson score interval") || !strings.Contains(f.Caption, "chance level") {
		t.Errorf("caption %q", f.Caption)
	}
	var models, refs int
	for _, l := range c.Lines {
		if l.Reference {
			refs++
			if l.Group != ChanceLabel || l.Lo != nil {
				t.Errorf("reference line %+v", l)
			}
			continue
		}
		models++
		for _, r := range load(t).Series {
			if r.Task == "synthetic/copy" && r.Model == l.Group && r.Label == "" && (!reflect.DeepEqual(l.Lo, r.Lo) || !reflect.DeepEqual(l.Hi, r.Hi)) {
				t.Errorf("%s: band %v–%v is not the series' own interval %v–%v", l.Group, l.Lo, l.Hi, r.Lo, r.Hi)
			}
		}
	}
	if models != 2 || refs != 1 {
		t.Errorf("%d model lines and %d reference lines, want 2 and 1 (chance once, not per model)", models, refs)
	}
	var svg bytes.Buffer
	if err := Render(&svg, c, FormatSVG); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{">rnn<", ">lstm<", ">chance<"} {
		if n := strings.Count(svg.String(), s); n != 1 {
			t.Errorf("legend entry %s appears %d times", s, n)
		}
	}
}

// TestDistinguishableLabels: teacher-forced and free-running lines of one
// model differ in dash pattern and marker shape (open against filled), so
// they stay apart where they overlap (both start at 0.5 for the lstm); the
// legend shows both styles with their markers.
func TestDistinguishableLabels(t *testing.T) {
	c, f := seriesChart(t, "series_text_jargon_token_error_vs_position")
	var tf, fr *Line
	for i := range c.Lines {
		l := &c.Lines[i]
		if l.Group == "lstm" && l.Variant == "teacher_forced" {
			tf = l
		}
		if l.Group == "lstm" && l.Variant == "free_running" {
			fr = l
		}
	}
	if tf == nil || fr == nil || tf.Y[0] != fr.Y[0] {
		t.Fatalf("fixture: lstm's two lines should start at the same point: %v %v", tf, fr)
	}
	if reflect.DeepEqual(tf.lineStyle().Dashes, fr.lineStyle().Dashes) {
		t.Error("same dash pattern")
	}
	if reflect.TypeOf(tf.glyphStyle().Shape) == reflect.TypeOf(fr.glyphStyle().Shape) {
		t.Error("same marker shape")
	}
	seen := map[reflect.Type]bool{}
	names := map[string]bool{}
	for i := range 5 {
		seen[reflect.TypeOf(Glyph(i))] = true
		names[styleName(i)] = true
	}
	if len(seen) != 5 || len(names) != 5 {
		t.Errorf("%d distinct glyphs and %d style names for 5 styles", len(seen), len(names))
	}
	if !strings.Contains(f.Caption, "teacher_forced: solid line, filled circles; free_running: dashed line, open triangles") {
		t.Errorf("caption does not say the styles: %q", f.Caption)
	}
	var with, without bytes.Buffer
	if err := Render(&with, c, FormatSVG); err != nil {
		t.Fatal(err)
	}
	c.Markers = false
	if err := Render(&without, c, FormatSVG); err != nil {
		t.Fatal(err)
	}
	if with.Len() <= without.Len() {
		t.Error("markers draw nothing")
	}
}

// TestMetricFigureReferences: the headline figure is a point chart with
// the task's references as lines, and the caption names one off the scale.
func TestMetricFigureReferences(t *testing.T) {
	rf := load(t)
	f, ok := metricFigure(rf, "text/jargon", ModelColors(rf))
	if !ok {
		t.Fatal("no figure")
	}
	c := f.Chart.(*PointChart)
	if len(c.Points) != 2 || len(c.References) != 1 || c.References[0].Label != "unigram (train)" || c.References[0].Value != 4.8612 {
		t.Fatalf("points %+v references %+v", c.Points, c.References)
	}
	if c.XLabel != "bits/byte on the test split, lower is better" {
		t.Errorf("x label %q", c.XLabel)
	}
	if !strings.Contains(f.Caption, "off the scale and named at its edge: unigram (train) = 4.861") {
		t.Errorf("caption %q", f.Caption)
	}
	rf.Results = append(rf.Results, harness.Result{Task: "text/jargon", Model: "rnn", Seed: 1, Metric: "bits_per_byte~bigram", Unit: "bits/byte", Value: 2.5})
	f, _ = metricFigure(rf, "text/jargon", ModelColors(rf))
	if lo, hi, off := f.Chart.(*PointChart).axis(); !(lo < 2.5 && hi > 2.5) || len(off) != 1 {
		t.Errorf("a reference within the data's span is not on the axis [%v, %v] (off %v)", lo, hi, off)
	}
}
