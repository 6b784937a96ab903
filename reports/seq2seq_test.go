package reports

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"arbench/harness"
)

// seq2seqResults is a results file of an AR baseline and a NAR model with
// two decoding settings, over two seeds.
func seq2seqResults() *harness.ResultsFile {
	rf := &harness.ResultsFile{}
	add := func(model, metric string, unit string, vals ...float64) {
		for i, v := range vals {
			rf.Results = append(rf.Results, harness.Result{Model: model, Task: "seq2seq/add", Metric: metric, Unit: unit, Value: harness.Number(v), Seed: uint64(i + 1)})
		}
	}
	for _, seed := range []uint64{1, 2} {
		rf.Runs = append(rf.Runs,
			harness.RunRecord{Task: "seq2seq/add", Model: "ar", Seed: seed, Info: harness.ModelInfo{Family: "transformer-s2s"}},
			harness.RunRecord{Task: "seq2seq/add", Model: "nar", Seed: seed, Info: harness.ModelInfo{Family: "nar"}})
	}
	add("ar", "exact_match", "fraction", 0.9, 0.8)
	add("ar", "latency_ms_b1", "ms", 10, 12)
	add("nar", "exact_match", "fraction", 0.5, 0.5)
	add("nar", "latency_ms_b1", "ms", 2, 2)
	add("nar", "exact_match@T=1", "fraction", 0.5, 0.5)
	add("nar", "latency_ms_b1@T=1", "ms", 2, 2)
	add("nar", "exact_match@T=4", "fraction", 0.7, 0.7)
	add("nar", "latency_ms_b1@T=4", "ms", 4, 4)
	return rf
}

func TestSettingsKeptOutOfTheModelTable(t *testing.T) {
	for _, tt := range aggregate(seq2seqResults()) {
		for _, m := range tt.metrics {
			if strings.Contains(m.name, SettingSep) {
				t.Errorf("setting metric %s in the model table", m.name)
			}
		}
	}
	st, ok := settingsTable(seq2seqResults(), "seq2seq/add")
	if !ok || len(st.rows) != 2 || st.rows[1][1] != "T=4" || !strings.HasPrefix(st.rows[1][2], "0.7") {
		t.Fatalf("settings table = %v, %v", st.rows, ok)
	}
}

func TestSpeedupTable(t *testing.T) {
	st, caption, ok := speedupTable(seq2seqResults(), "seq2seq/add")
	if !ok || !strings.Contains(caption, "ar (transformer-s2s") {
		t.Fatalf("speedup table: %v %q", ok, caption)
	}
	got := map[string]string{}
	for _, r := range st.rows {
		got[r[0]+" "+r[1]] = r[2]
	}
	want := map[string]string{"ar -": "1.00×", "nar -": "5.50×", "nar T=1": "5.50×", "nar T=4": "2.75×"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("speed-ups = %v, want %v", got, want)
	}
	rf := seq2seqResults()
	rf.Runs = rf.Runs[1:2] // no baseline
	if _, _, ok := speedupTable(rf, "seq2seq/add"); ok {
		t.Error("a speed-up table without the baseline")
	}
}

func TestSpeedQualityFigure(t *testing.T) {
	figs := speedQualityFigures(seq2seqResults(), "seq2seq/add", map[string]int{"ar": 0, "nar": 1})
	if len(figs) != 1 {
		t.Fatalf("%d figures, want 1 (batch 1 only)", len(figs))
	}
	c := figs[0].Chart.(*LineChart)
	if len(c.Lines) != 2 || !reflect.DeepEqual(c.Lines[1].X, []float64{2, 4}) || !reflect.DeepEqual(c.Lines[1].Y, []float64{0.5, 0.7}) ||
		!reflect.DeepEqual(c.Lines[0].X, []float64{11}) {
		t.Fatalf("lines = %+v", c.Lines)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	var md bytes.Buffer
	if err := Markdown(&md, seq2seqResults()); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"### Decoding settings", "### Speed-up over transformer-s2s", "| nar | T=4 |"} {
		if !strings.Contains(md.String(), s) {
			t.Errorf("report.md lacks %q", s)
		}
	}
}

func TestSpeedupFigure(t *testing.T) {
	rf := seq2seqResults()
	add := func(model, label string, seed uint64, x, y []float64) {
		rf.Series = append(rf.Series, harness.SeriesRecord{Model: model, Task: "seq2seq/add", Seed: seed,
			Series: harness.Series{Name: LatencySeries, Label: label, XName: "target length", Unit: "ms", X: x, Y: y}})
	}
	add("ar", "batch 1", 1, []float64{4, 8}, []float64{4, 8})
	add("ar", "batch 1", 2, []float64{4, 8}, []float64{6, 8})
	add("nar", "batch 1", 1, []float64{4, 8, 12}, []float64{1, 2, 3})
	add("nar", "batch 1", 2, []float64{4, 8, 12}, []float64{1, 2, 3})
	f, ok := speedupFigure(rf, "seq2seq/add", map[string]int{})
	if !ok {
		t.Fatal("no figure")
	}
	c := f.Chart.(*LineChart)
	if len(c.Lines) != 1 || c.Lines[0].Group != "nar" || !reflect.DeepEqual(c.Lines[0].X, []float64{4, 8}) || !reflect.DeepEqual(c.Lines[0].Y, []float64{5, 4}) {
		t.Fatalf("lines = %+v, want nar at x 4, 8 with speed-ups 5, 4", c.Lines)
	}
	rf.Runs = rf.Runs[1:2]
	if _, ok := speedupFigure(rf, "seq2seq/add", map[string]int{}); ok {
		t.Error("a figure without the baseline")
	}
}
