package reports

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/olekukonko/tablewriter/pkg/twwidth"

	"arbench/harness"
)

func TestSplitColumns(t *testing.T) {
	for _, c := range []struct {
		name   string
		widths []int
		limit  int
		want   [][]int
	}{
		{"no limit", []int{10, 20, 30}, 0, [][]int{{0, 1, 2}}},
		{"fits", []int{10, 20, 30}, tableWidth([]int{10, 20, 30}), [][]int{{0, 1, 2}}},
		// 1+13 = 14 for the model; +23 = 37; +33 = 70 > 60.
		{"two parts", []int{10, 20, 30}, 60, [][]int{{0, 1}, {0, 2}}},
		{"greedy", []int{10, 5, 5, 5, 5, 5}, 40, [][]int{{0, 1, 2, 3}, {0, 4, 5}}},
		// The 50-wide column cannot fit beside the model in 40 columns: it
		// gets a part of its own, the columns after it a new one.
		{"too wide", []int{10, 5, 50, 5}, 40, [][]int{{0, 1}, {0, 2}, {0, 3}}},
		{"model only", []int{10}, 5, [][]int{{0}}},
	} {
		got := splitColumns(c.widths, c.limit)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: splitColumns(%v, %d) = %v, want %v", c.name, c.widths, c.limit, got, c.want)
		}
	}
}

// TestSplitColumnsProperties checks on many constructed tables that every
// column is kept exactly once and in order, every part starts with the
// model column, and no part is wider than the limit unless it holds a
// single column too wide to fit beside the model.
func TestSplitColumnsProperties(t *testing.T) {
	for n := 1; n <= 12; n++ {
		for limit := 20; limit <= 120; limit += 7 {
			widths := make([]int, n)
			for i := range widths {
				widths[i] = 3 + (i*37+n*11)%29
			}
			parts := splitColumns(widths, limit)
			var seen []int
			for _, p := range parts {
				if p[0] != 0 {
					t.Fatalf("widths %v limit %d: part %v does not start with the model column", widths, limit, p)
				}
				seen = append(seen, p[1:]...)
				sub := make([]int, len(p))
				for k, c := range p {
					sub[k] = widths[c]
				}
				if w := tableWidth(sub); w > limit && len(p) > 2 {
					t.Fatalf("widths %v limit %d: part %v is %d wide with columns that could be split off", widths, limit, p, w)
				}
			}
			if len(parts) == 1 {
				seen = parts[0][1:]
			}
			for i, c := range seen {
				if c != i+1 {
					t.Fatalf("widths %v limit %d: columns %v, want 1..%d once each in order", widths, limit, seen, n-1)
				}
			}
			if len(seen) != n-1 {
				t.Fatalf("widths %v limit %d: %d columns kept, want %d", widths, limit, len(seen), n-1)
			}
		}
	}
}

// wideResults is a 3-seed results file with many metrics: its quality
// table is far wider than a terminal.
func wideResults() *harness.ResultsFile {
	rf := &harness.ResultsFile{}
	info := harness.TaskInfo{Name: "text/wide", Kind: "text", HeadlineMetric: "bits_per_byte"}
	metrics := []struct{ name, unit string }{
		{"bits_per_byte", "bits/byte"}, {"nats_per_token", "nats/token"}, {"perplexity", ""},
		{"bits_per_byte_sliding", "bits/byte"}, {"nats_per_token_sliding", "nats/token"}, {"perplexity_sliding", ""},
		{"effective_context", "tokens"}, {"effective_context_shuffled", "tokens"}, {"nats_per_token_ablation_full", "nats/token"},
	}
	for mi, model := range []string{"transformer-small", "lstm", "rnn"} {
		for seed := uint64(1); seed <= 3; seed++ {
			rf.Runs = append(rf.Runs, harness.RunRecord{Task: info.Name, Model: model, Seed: seed, TaskInfo: info, Params: 123456 * (mi + 1),
				Steps: 1000, TrainSeconds: 100 + float64(seed), TokensPerSec: 12345.6})
			for k, m := range metrics {
				v := 2 + 0.1*float64(mi) + 0.01*float64(seed) + 0.001*float64(k)
				if m.unit == "tokens" {
					v = float64(int(16) << mi)
				}
				rf.Results = append(rf.Results, harness.Result{Task: info.Name, Model: model, Seed: seed, Metric: m.name, Unit: m.unit, Split: "test", Value: harness.Number(v)})
			}
			rf.Results = append(rf.Results, harness.Result{Task: info.Name, Model: model, Seed: seed, Metric: harness.ReferenceName("bits_per_byte", "unigram"),
				Unit: "bits/byte", Split: "test", Value: 4.86, Params: map[string]any{"fitted_on": "train"}})
		}
	}
	return rf
}

// TestTableFitsWidth renders a table of 330 columns at several widths:
// no line is wider than the width, every column header is printed, and
// every part repeats the model column. The width tablewriter draws is the
// one splitColumns plans with.
func TestTableFitsWidth(t *testing.T) {
	rf := wideResults()
	var full bytes.Buffer
	if err := Table(&full, rf, TableOptions{}); err != nil {
		t.Fatal(err)
	}
	tt := aggregate(rf)[0]
	st := tt.qualityTable(TableOptions{})
	planned := tableWidth(columnWidths(st.header, terminalCells(st)))
	if got := maxLineWidth(full.String()); got < planned {
		t.Fatalf("widest line %d, the full table is %d wide", got, planned)
	}
	if planned <= 150 {
		t.Fatalf("the fixture table is only %d wide", planned)
	}
	lines := strings.Split(full.String(), "\n")
	for _, l := range lines {
		if strings.HasPrefix(l, "┌") && twwidth.Width(l) == planned {
			goto found
		}
	}
	t.Fatalf("no table border of the planned width %d:\n%s", planned, full.String())
found:
	for _, width := range []int{60, 80, 100, 132} {
		var buf bytes.Buffer
		if err := Table(&buf, rf, TableOptions{Width: width}); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		if got := maxLineWidth(out); got > width {
			t.Errorf("width %d: a line is %d wide:\n%s", width, got, out)
		}
		for _, h := range st.header {
			for _, part := range strings.Split(h, "\n") {
				if !strings.Contains(out, part) {
					t.Errorf("width %d: header %q missing", width, part)
				}
			}
		}
		parts := strings.Count(out, "split to fit")
		if parts < 2 {
			t.Errorf("width %d: table not split:\n%s", width, out)
		}
		// Every part has every model, and the reference row where it has a value.
		for _, m := range []string{"transformer-small", "lstm", "rnn"} {
			if n := strings.Count(out, "│ "+m+" "); n < parts {
				t.Errorf("width %d: model %s in %d of %d parts", width, m, n, parts)
			}
		}
		if n := strings.Count(out, "ref: unigram (train split)"); n != 1 {
			t.Errorf("width %d: reference row printed %d times, want once (only its column's part)", width, n)
		}
	}
}

func maxLineWidth(s string) int {
	w := 0
	for _, l := range strings.Split(s, "\n") {
		w = max(w, twwidth.Width(l))
	}
	return w
}

func TestTerminalWidth(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "COLUMNS" {
				return v
			}
			return ""
		}
	}
	var buf bytes.Buffer
	for v, want := range map[string]int{"120": 120, " 90 ": 90, "": 0, "wide": 0, "-3": 0, "0": 0} {
		if got := terminalWidth(&buf, env(v)); got != want {
			t.Errorf("COLUMNS=%q: width %d, want %d (a buffer is no terminal)", v, got, want)
		}
	}
	var f WidthFlag
	for s, want := range map[string]string{"auto": "auto", "full": "full", "100": "100"} {
		if err := f.Set(s); err != nil || f.String() != want {
			t.Errorf("Set(%q): %v, String %q", s, err, f.String())
		}
	}
	f.Set("100")
	if f.Columns(&buf) != 100 {
		t.Errorf("-width 100 gives %d", f.Columns(&buf))
	}
	f.Set("full")
	if f.Columns(&buf) != 0 {
		t.Errorf("-width full gives %d", f.Columns(&buf))
	}
	for _, bad := range []string{"0", "-1", "wide", "1.5", ""} {
		if err := f.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
}

func FuzzWidthFlag(f *testing.F) {
	for _, s := range []string{"auto", "full", "80", "0", "-2", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var w WidthFlag
		if err := w.Set(s); err != nil {
			return
		}
		var again WidthFlag
		if err := again.Set(w.String()); err != nil || again != w {
			t.Fatalf("Set(%q) = %+v; its String %q reads back as %+v (%v)", s, w, w.String(), again, err)
		}
		if w.set && w.n < 0 {
			t.Fatalf("Set(%q) gave a negative width", s)
		}
	})
}

func TestWrapText(t *testing.T) {
	s := "one two three four five six seven"
	for _, l := range strings.Split(wrapText(s, 10), "\n") {
		if twwidth.Width(l) > 10 {
			t.Errorf("line %q is wider than 10", l)
		}
	}
	if got := strings.Join(strings.Fields(wrapText(s, 10)), " "); got != s {
		t.Errorf("wrapping changed the words: %q", got)
	}
	if wrapText(s, 0) != s {
		t.Error("width 0 wrapped")
	}
}

func TestMetricDirection(t *testing.T) {
	for _, c := range []struct {
		name, unit string
		want       Direction
	}{
		{"bits_per_byte", "bits/byte", LowerIsBetter},
		{"nats_per_token_sliding", "nats/token", LowerIsBetter},
		{"perplexity", "", LowerIsBetter},
		{"kl_per_token_free_running", "nats/token", LowerIsBetter},
		{"error_at_last_position_free_running", "error rate", LowerIsBetter},
		{"latency_ms_b1", "ms", LowerIsBetter},
		{"eval_seconds", "s", LowerIsBetter},
		{"peak_rss", "bytes", LowerIsBetter},
		{"draft_verify_cost", "s/s", LowerIsBetter},
		{"accuracy", "fraction", HigherIsBetter},
		{"accuracy_at_max_length", "fraction", HigherIsBetter},
		{"exact_match", "fraction", HigherIsBetter},
		{"tokens_per_sec", "tokens/s", HigherIsBetter},
		{"sequences_per_s_large", "sequences/s", HigherIsBetter},
		{"speedup_b1", "s/s", HigherIsBetter},
		{"throughput", "", HigherIsBetter},
		{"usable_length", "tokens", HigherIsBetter},
		{"x", "bits/dim", LowerIsBetter},
		// Differences, unknown names and ambiguous ones have none.
		{"exposure_excess_kl", "nats", DirectionUnknown},
		{"exposure_excess_fraction", "fraction", DirectionUnknown},
		{"delta_loss", "nats/token", DirectionUnknown},
		{"passes_b1", "passes", DirectionUnknown},
		{"effective_context", "tokens", DirectionUnknown},
		{"special_token_mass_free_running", "probability", DirectionUnknown},
		{"accuracy_loss", "", DirectionUnknown},
		{"ratio", "s/s", DirectionUnknown},
	} {
		if got := MetricDirection(c.name, c.unit); got != c.want {
			t.Errorf("MetricDirection(%q, %q) = %q, want %q", c.name, c.unit, got.Arrow(), c.want.Arrow())
		}
	}
	if LowerIsBetter.Arrow() != "↓" || HigherIsBetter.Arrow() != "↑" || DirectionUnknown.Arrow() != "" {
		t.Error("arrows")
	}
}

// TestDirectionArrowsInHeaders: the headers carry the arrows of their
// metric's direction, none for an unknown one, and say unit and split once.
func TestDirectionArrowsInHeaders(t *testing.T) {
	tt := aggregate(wideResults())[0]
	st := tt.qualityTable(TableOptions{})
	want := []string{"model", "n", "seeds", "bits/byte ↓\n(test)", "nats/token ↓\n(test)", "perplexity per byte ↓\n(test)",
		"bits/byte sliding ↓\n(test)", "nats/token sliding ↓\n(test)", "perplexity per byte sliding ↓\n(test)",
		"effective context\n(tokens, test)", "effective context shuffled\n(tokens, test)", "nats/token ablation full ↓\n(test)", "params"}
	if !reflect.DeepEqual(st.header, want) {
		t.Errorf("header\n%q\nwant\n%q", st.header, want)
	}
}

func TestBestRows(t *testing.T) {
	f := numberFormat{prec: 2}
	nan := math.NaN()
	for _, c := range []struct {
		name  string
		means []float64
		dir   Direction
		want  []int
	}{
		{"lower", []float64{2.5, 1.2, 3}, LowerIsBetter, []int{1}},
		{"higher", []float64{0.5, 0.9, 0.7}, HigherIsBetter, []int{1}},
		{"tie", []float64{1.2, 1.2, 3}, LowerIsBetter, []int{0, 1}},
		{"tie at display precision", []float64{1.201, 1.199, 3}, LowerIsBetter, []int{0, 1}},
		{"NaN ignored", []float64{nan, 2, 1, math.Inf(-1)}, LowerIsBetter, []int{2}},
		{"NaN first", []float64{nan, 0.1, 0.3}, HigherIsBetter, []int{2}},
		{"all tie", []float64{1, 1}, LowerIsBetter, nil},
		{"one finite", []float64{1, nan}, LowerIsBetter, nil},
		{"one row", []float64{1}, HigherIsBetter, nil},
		{"unknown direction", []float64{1, 2}, DirectionUnknown, nil},
	} {
		if got := bestRows(c.means, c.dir, f); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: bestRows(%v) = %v, want %v", c.name, c.means, got, c.want)
		}
	}
}

// TestBestMarked: the best mean of each column with a direction is marked
// in the fixture (lower bits, higher accuracy), references never are, and
// the marks appear as * in the terminal and bold in Markdown.
func TestBestMarked(t *testing.T) {
	rf := load(t)
	byTask := map[string]*taskTable{}
	for _, tt := range aggregate(rf) {
		byTask[tt.task] = tt
	}
	jargon := byTask["text/jargon"].qualityTable(TableOptions{})
	// lstm (row 1) has the lowest bits/byte, nats/token, perplexity.
	for col := 3; col <= 5; col++ {
		if !jargon.best[[2]int{1, col}] || jargon.best[[2]int{0, col}] {
			t.Errorf("text/jargon column %d: best %v, want lstm's", col, jargon.best)
		}
	}
	if len(jargon.best) != 3 {
		t.Errorf("text/jargon: %d best cells, want 3 (params has no direction): %v", len(jargon.best), jargon.best)
	}
	copyT := byTask["synthetic/copy"].qualityTable(TableOptions{})
	if !copyT.best[[2]int{1, 3}] || !copyT.best[[2]int{1, 4}] || !copyT.best[[2]int{1, 5}] {
		t.Errorf("synthetic/copy: lstm's higher accuracy and usable length and lower loss are not all marked: %v", copyT.best)
	}
	for k := range copyT.best {
		if copyT.reference[k[0]] {
			t.Errorf("a reference cell is marked best: %v", k)
		}
	}
	var term, md bytes.Buffer
	if err := Table(&term, rf, TableOptions{}); err != nil {
		t.Fatal(err)
	}
	Markdown(&md, rf)
	for _, s := range []string{"*1.8034", "*0.9297 [0.9042, 0.9488]", "*32 "} {
		if !strings.Contains(term.String(), s) {
			t.Errorf("terminal table lacks %q", s)
		}
	}
	for _, s := range []string{"**1.8034**", "**32**"} {
		if !strings.Contains(md.String(), s) {
			t.Errorf("report.md lacks %q", s)
		}
	}
}

// TestReferenceBetterThanModels: a reference better than every model is
// shown but not marked, and the best model is.
func TestReferenceBetterThanModels(t *testing.T) {
	rf := &harness.ResultsFile{}
	for i, m := range []string{"a", "b"} {
		rf.Runs = append(rf.Runs, harness.RunRecord{Task: "x/y", Model: m, Seed: 1, TaskInfo: harness.TaskInfo{HeadlineMetric: "nats_per_token"}})
		rf.Results = append(rf.Results,
			harness.Result{Task: "x/y", Model: m, Seed: 1, Metric: "nats_per_token", Unit: "nats/token", Value: harness.Number(2 + i)},
			harness.Result{Task: "x/y", Model: m, Seed: 1, Metric: harness.ReferenceName("nats_per_token", "oracle"), Unit: "nats/token", Value: 1.5})
	}
	st := aggregate(rf)[0].qualityTable(TableOptions{})
	if len(st.rows) != 3 || !st.reference[2] || st.rows[2][0] != "ref: oracle" || st.rows[2][3] != "1.5000" {
		t.Fatalf("rows %q, reference %v", st.rows, st.reference)
	}
	if !st.best[[2]int{0, 3}] || len(st.best) != 1 {
		t.Errorf("best %v, want model a's value only", st.best)
	}
	for _, h := range st.header {
		if strings.Contains(h, "~") || strings.Contains(h, "oracle") {
			t.Errorf("a reference became a column: %q", h)
		}
	}
}

// TestReferenceRows: the fixture's references are rows under the models
// (one per reference, the value once although every run reports it), never
// metric columns; the caption says what they are.
func TestReferenceRows(t *testing.T) {
	var buf bytes.Buffer
	if err := Table(&buf, load(t), TableOptions{}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, s := range []string{"│ ref: unigram (train split) │   │       │          4.8612 │", "│ ref: chance │   │       │                   0.1000 │",
		`Rows "ref: …" are reference values the task computes`} {
		if !strings.Contains(out, s) {
			t.Errorf("table lacks %q:\n%s", s, out)
		}
	}
	for _, s := range []string{"~", "@unigram", "unigram ↓", "chance ↑"} {
		if strings.Contains(out, s) {
			t.Errorf("table has %q (a reference as a column?):\n%s", s, out)
		}
	}
	// A reference that differs per seed keeps its interval across seeds.
	r := &refRow{name: "chance", seeds: map[string][]uint64{}, values: map[string][]float64{}, cis: map[string][]*harness.Interval{}}
	for seed, v := range []float64{0.1, 0.12, 0.11} {
		r.add("accuracy", harness.Result{Seed: uint64(seed), Value: harness.Number(v)})
		r.add("accuracy", harness.Result{Seed: uint64(seed), Value: harness.Number(v)}) // a second model's run
	}
	if c := r.cell("accuracy"); c.n != 3 || c.source != seedInterval {
		t.Errorf("per-seed reference: %+v", c)
	}
}

func TestIntegerFormatting(t *testing.T) {
	f := numberFormat{prec: 4, integer: true}
	for v, want := range map[float64]string{12000: "12,000", 8: "8", 0: "0", 26.666: "26.7", -3: "-3"} {
		if got := f.value(v); got != want {
			t.Errorf("integer %v = %q, want %q", v, got, want)
		}
	}
	if got := (numberFormat{prec: 0}).value(12345.6); got != "12,346" {
		t.Errorf("prec 0: %q", got)
	}
	tt := aggregate(wideResults())[0]
	st := tt.qualityTable(TableOptions{})
	// effective_context is 16, 32, 64 tokens for the three models.
	for i, want := range []string{"16 ± 0.0", "32 ± 0.0", "64 ± 0.0"} {
		if got := st.rows[i][9]; got != want {
			t.Errorf("effective context of %s = %q, want %q", st.rows[i][0], got, want)
		}
	}
	if got := st.rows[2][len(st.header)-1]; got != "370,368" {
		t.Errorf("params %q", got)
	}
	// A count column with a fractional value keeps its decimals; a
	// fraction of 0 and 1 values is no count.
	rf := &harness.ResultsFile{Runs: []harness.RunRecord{{Task: "t", Model: "a", Seed: 1}, {Task: "t", Model: "b", Seed: 1}}, Results: []harness.Result{
		{Task: "t", Model: "a", Seed: 1, Metric: "passes", Unit: "passes", Value: 3},
		{Task: "t", Model: "b", Seed: 1, Metric: "passes", Unit: "passes", Value: 2.5},
		{Task: "t", Model: "a", Seed: 1, Metric: "accuracy", Unit: "fraction", Value: 1},
		{Task: "t", Model: "b", Seed: 1, Metric: "accuracy", Unit: "fraction", Value: 0},
	}}
	st = aggregate(rf)[0].qualityTable(TableOptions{})
	if st.rows[0][3] != "3.0000" || st.rows[0][4] != "1.0000" {
		t.Errorf("rows %q", st.rows)
	}
	for _, s := range [][]string{st.rows[0], st.rows[1]} {
		for _, c := range s {
			if strings.Contains(c, "e+") {
				t.Errorf("exponent notation: %q", c)
			}
		}
	}
}

// TestSpeedTableSeparate: training time, throughput and timing metrics are
// in the speed table, not the quality table.
func TestSpeedTableSeparate(t *testing.T) {
	rf := seq2seqResults()
	for i := range rf.Runs {
		rf.Runs[i].Steps, rf.Runs[i].TrainSeconds, rf.Runs[i].TokensPerSec = 10, 5, 1000
	}
	tt := aggregate(rf)[0]
	q := tt.qualityTable(TableOptions{})
	for _, h := range q.header {
		for _, bad := range []string{"latency", "train", "throughput", "tok"} {
			if strings.Contains(h, bad) {
				t.Errorf("quality table has %q", h)
			}
		}
	}
	s, ok := tt.speedTable(TableOptions{})
	if !ok {
		t.Fatal("no speed table")
	}
	want := []string{"model", "n", "train time ↓\n(s)", "throughput ↑\n(tokens/s, training)", "latency ms b1 ↓\n(ms, )"}
	if len(s.header) != 5 || !reflect.DeepEqual(s.header[:4], want[:4]) || !strings.HasPrefix(s.header[4], "latency ms b1 ↓") {
		t.Errorf("speed header %q", s.header)
	}
	// nar is faster (2 ms against 11 ms): marked.
	if s.rows[1][4] != "2.0000 ± 0.0000" || !s.best[[2]int{1, 4}] {
		t.Errorf("speed rows %q best %v", s.rows, s.best)
	}
	var buf bytes.Buffer
	if err := Table(&buf, rf, TableOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "seq2seq/add: speed (not quality)") {
		t.Errorf("no speed table printed:\n%s", buf.String())
	}
	// Nothing trained and no timing metric: no speed table.
	if _, ok := aggregate(&harness.ResultsFile{Results: []harness.Result{{Task: "t", Model: "a", Metric: "accuracy"}}})[0].speedTable(TableOptions{}); ok {
		t.Error("a speed table without speeds")
	}
}

// TestIntervalDisplay: one seed shows the task's interval (± when
// symmetric, [lo, hi] when not) and the caption says what its n counts;
// several seeds show the t interval across seeds, and the caption says so.
func TestIntervalDisplay(t *testing.T) {
	wilson := &harness.Interval{Lo: 0.9042, Hi: 0.9488, Level: 0.95, Method: harness.CIWilson, N: 512, Of: "answers"}
	boot := &harness.Interval{Lo: 1.19, Hi: 1.21, Level: 0.95, Method: harness.CIBootstrap, N: 4096, Of: "windows"}
	f := numberFormat{prec: 4}
	for _, c := range []struct {
		xs   []float64
		cis  []*harness.Interval
		want string
		src  intervalSource
	}{
		{[]float64{0.9297}, []*harness.Interval{wilson}, "0.9297 [0.9042, 0.9488]", taskInterval},
		{[]float64{1.2}, []*harness.Interval{boot}, "1.2000 ± 0.0100", taskInterval},
		{[]float64{1.2}, []*harness.Interval{nil}, "1.2000", noInterval},
		{[]float64{1.2}, []*harness.Interval{{Lo: harness.Number(math.NaN()), Hi: 1}}, "1.2000", noInterval},
		// Several seeds: the t interval across seeds, not the runs'.
		{[]float64{1.5, 1.6}, []*harness.Interval{boot, boot}, "1.5500 ± 0.6353", seedInterval},
	} {
		s := summarizeCell(c.xs, c.cis)
		if got := s.format(f); got != c.want || s.source != c.src {
			t.Errorf("%v %v: %q (source %d), want %q (%d)", c.xs, c.cis, got, s.source, c.want, c.src)
		}
	}
	rf := &harness.ResultsFile{}
	add := func(model string, seed uint64, v float64, ci *harness.Interval) {
		rf.Runs = append(rf.Runs, harness.RunRecord{Task: "t/x", Model: model, Seed: seed})
		rf.Results = append(rf.Results, harness.Result{Task: "t/x", Model: model, Seed: seed, Metric: "accuracy", Unit: "fraction", Split: "test", Value: harness.Number(v), CI: ci})
	}
	add("one", 1, 0.9297, wilson)
	add("three", 1, 0.5, wilson)
	add("three", 2, 0.6, wilson)
	add("three", 3, 0.7, wilson)
	tt := aggregate(rf)[0]
	caption := tt.caption(TableOptions{}, BestMark)
	for _, s := range []string{"n = seeds", "with several seeds this interval across seeds is shown",
		"Single-seed values (n=1) show the task's 95% interval of the run: accuracy: Wilson score interval over 512 answers", "[lo, hi] is an asymmetric interval"} {
		if !strings.Contains(caption, s) {
			t.Errorf("caption lacks %q:\n%s", s, caption)
		}
	}
	st := tt.qualityTable(TableOptions{})
	if st.rows[0][3] != "0.9297 [0.9042, 0.9488]" || st.rows[1][3] != "0.6000 ± 0.2484" {
		t.Errorf("cells %q / %q", st.rows[0][3], st.rows[1][3])
	}
	// The figure of the headline metric says the same.
	if f, ok := metricFigure(rf, "t/x", map[string]int{}); !ok ||
		!strings.Contains(f.Caption, "Student t across seeds") || !strings.Contains(f.Caption, "Wilson score interval over 512 answers") {
		t.Errorf("figure caption %q", f.Caption)
	} else if p := f.Chart.(*PointChart).Points; p[0].Note != "1 seed, 512 answers" || p[1].Note != "3 seeds" || !p[0].Interval {
		t.Errorf("points %+v", p)
	}
}

func TestLabels(t *testing.T) {
	for _, c := range []struct{ name, unit, label, axis string }{
		{"bits_per_byte", "bits/byte", "bits/byte", "bits/byte"},
		{"accuracy", "accuracy", "accuracy", "accuracy"},
		{"accuracy", "fraction", "accuracy", "accuracy (fraction)"},
		{"kl_per_token", "nats/token", "KL/token", "KL/token (nats/token)"},
		{"nats_per_token_sliding", "nats/token", "nats/token sliding", "nats/token sliding"},
		{"usable_length", "tokens", "usable length", "usable length (tokens)"},
	} {
		l := metricLabel(c.name, false)
		if l != c.label || axisLabel(l, c.unit) != c.axis {
			t.Errorf("%s (%s): label %q axis %q, want %q %q", c.name, c.unit, l, axisLabel(l, c.unit), c.label, c.axis)
		}
	}
	if got := metricLabel("perplexity", true); got != "perplexity per byte" {
		t.Errorf("perplexity of a text task: %q", got)
	}
	if got := axisLabel("token error", "fraction"); got != "token error (fraction)" {
		t.Errorf("%q", got)
	}
}

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		metric       string
		kind         metricKind
		base, suffix string
	}{
		{"bits_per_byte", plainMetric, "bits_per_byte", ""},
		{"bits_per_byte~unigram", referenceMetric, "bits_per_byte", "unigram"},
		{"exact_match@T=4", settingMetric, "exact_match", "T=4"},
		{"accuracy~chance", referenceMetric, "accuracy", "chance"},
	} {
		k, b, s := classify(harness.Result{Metric: c.metric})
		if k != c.kind || b != c.base || s != c.suffix {
			t.Errorf("classify(%q) = %d %q %q", c.metric, k, b, s)
		}
	}
}

func ExampleMetricDirection() {
	for _, m := range [][2]string{{"bits_per_byte", "bits/byte"}, {"accuracy", "fraction"}, {"exposure_excess_kl", "nats"}} {
		d := MetricDirection(m[0], m[1])
		p := d.Phrase()
		if p == "" {
			p = "no direction"
		}
		fmt.Printf("%s %q: %s\n", m[0], d.Arrow(), p)
	}
	// Output:
	// bits_per_byte "↓": lower is better
	// accuracy "↑": higher is better
	// exposure_excess_kl "": no direction
}
