package reports

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"arbench/harness"
)

// A text task on enwik8 lists the published bits per character after its
// table; other corpora list none.
func TestPublishedResults(t *testing.T) {
	rf := &harness.ResultsFile{Manifest: harness.Manifest{Name: "x", Config: []byte(`{"name":"x"}`)}}
	for _, task := range []string{"text/enwik8", "text/jargon"} {
		rf.Runs = append(rf.Runs, harness.RunRecord{Task: task, Model: "lstm", Seed: 1})
		rf.Results = append(rf.Results, harness.Result{Task: task, Model: "lstm", Seed: 1, Metric: "bits_per_byte", Value: 2.1, Unit: "bits/byte", Split: "test"})
	}
	var md bytes.Buffer
	if err := Markdown(&md, rf); err != nil {
		t.Fatal(err)
	}
	out := md.String()
	enwik, jargon := strings.Index(out, "## text/enwik8"), strings.Index(out, "## text/jargon")
	pub := strings.Index(out, "### Published results")
	if enwik < 0 || jargon < 0 || pub < 0 || strings.Count(out, "### Published results") != 1 ||
		!strings.Contains(out, "| Transformer-XL, 24 layers (large) | 0.99 | 277,000,000 |") {
		t.Errorf("published results missing or misplaced (enwik8 at %d, jargon at %d, published at %d):\n%s", enwik, jargon, pub, out)
	}
	next := strings.Index(out[enwik+1:], "\n## ")
	if !(pub > enwik && (next < 0 || pub < enwik+1+next)) {
		t.Errorf("the published table is not in enwik8's section:\n%s", out)
	}
}

// A series of positive values spanning many decades (gradient norms) gets
// a logarithmic y axis; one holding a zero keeps a linear one.
func TestSeriesLogScale(t *testing.T) {
	rf := &harness.ResultsFile{Manifest: harness.Manifest{Name: "x"}}
	for _, c := range []struct {
		model string
		y     []float64
	}{{"rnn", []float64{1, 1e-3, 1e-6}}, {"tf", []float64{0.5, 0.4, 0.3}}} {
		rf.Runs = append(rf.Runs, harness.RunRecord{Task: "synthetic/needle", Model: c.model, Seed: 1})
		rf.Series = append(rf.Series, harness.SeriesRecord{Task: "synthetic/needle", Model: c.model, Seed: 1, Series: harness.Series{
			Name: "gradient_norm_vs_distance", Label: "trained", XName: "distance", X: []float64{0, 1, 2}, Y: c.y}})
	}
	scale := func() Scale {
		for _, f := range Figures(rf) {
			if f.Name == "series_synthetic_needle_gradient_norm_vs_distance" {
				return f.Chart.(*LineChart).YScale
			}
		}
		t.Fatal("no gradient chart")
		return 0
	}
	if s := scale(); s != ScaleLog {
		t.Errorf("y scale %v, want logarithmic", s)
	}
	rf.Series[1].Y[2] = 0
	if s := scale(); s == ScaleLog {
		t.Error("a series holding 0 got a logarithmic y axis")
	}
}

// A norm is never negative: its bands are clipped at 0; a log10 is not.
func TestNormBounds(t *testing.T) {
	if b := metricBounds("gradient_norm_vs_distance", "norm"); b != (Bounds{0, math.Inf(1)}) {
		t.Errorf("norm bounds %v", b)
	}
	if b := metricBounds("gradient_norm_log10_vs_distance", "log10"); b != (Bounds{math.Inf(-1), math.Inf(1)}) {
		t.Errorf("log10 bounds %v", b)
	}
}
