package reports

import (
	"bytes"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"arbench/harness"
)

// pngTolerance: a golden PNG matches when at most maxDiffFraction of its
// pixels differ by more than channelTolerance in some channel (rasteriser
// rounding may differ across CPUs and Go versions; a changed chart differs
// in far more pixels).
const (
	channelTolerance = 24
	maxDiffFraction  = 0.002
)

// diffPixels counts the pixels of a and b that differ by more than
// channelTolerance in some channel.
func diffPixels(a, b image.Image) int {
	n := 0
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			ar, ag, ab, aa := a.At(x, y).RGBA()
			br, bg, bb, ba := b.At(x, y).RGBA()
			for _, d := range [][2]uint32{{ar, br}, {ag, bg}, {ab, bb}, {aa, ba}} {
				if diff := int(d[0]>>8) - int(d[1]>>8); diff > channelTolerance || -diff > channelTolerance {
					n++
					break
				}
			}
		}
	}
	return n
}

// goldenPNG compares a rendered PNG with testdata/name within the pixel
// tolerance, or rewrites it with -update.
func goldenPNG(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./reports -update to create it)", err)
	}
	gi, err := png.Decode(bytes.NewReader(got))
	if err != nil {
		t.Fatalf("%s: rendered PNG does not decode: %v", name, err)
	}
	wi, err := png.Decode(bytes.NewReader(want))
	if err != nil {
		t.Fatalf("%s: golden PNG does not decode: %v", name, err)
	}
	if gi.Bounds() != wi.Bounds() {
		t.Fatalf("%s: size %v, golden %v", name, gi.Bounds(), wi.Bounds())
	}
	total := gi.Bounds().Dx() * gi.Bounds().Dy()
	if n := diffPixels(gi, wi); float64(n) > maxDiffFraction*float64(total) {
		out := filepath.Join(t.TempDir(), filepath.Base(name))
		os.WriteFile(out, got, 0o644)
		t.Errorf("%s: %d of %d pixels differ from the golden image (tolerance %.1f%%); rendered image: %s (go test ./reports -update rewrites the golden files)",
			name, n, total, 100*maxDiffFraction, out)
	}
}

// TestFigureGoldens renders every figure of the fixture (loss curves with a
// 3-seed band and a diverged run, headline points with a t interval, none,
// Wilson intervals and references in and off the scale, series with labels
// and markers, a logarithmic x axis, a single seed's own intervals and a
// chance line) and compares the PNG within a pixel tolerance and the SVG
// exactly.
func TestFigureGoldens(t *testing.T) {
	figs := Figures(load(t))
	var names []string
	for i := range figs {
		f := &figs[i]
		names = append(names, f.Name)
		f.Render()
		if f.Err != nil {
			t.Fatalf("%s: %v", f.Name, f.Err)
		}
		goldenPNG(t, "plots/"+f.Name+".png", f.PNG)
		golden(t, "plots/"+f.Name+".svg", f.SVG)
	}
	want := "loss_text_jargon metric_text_jargon_bits_per_byte series_text_jargon_token_error_vs_position series_text_jargon_loss_vs_context metric_fake_count_bits_per_token " +
		"metric_synthetic_copy_accuracy series_synthetic_copy_accuracy_vs_distance"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("figures %s\nwant    %s", got, want)
	}
	png, err := png.DecodeConfig(bytes.NewReader(figs[0].PNG))
	if err != nil || png.Width != 960 || png.Height != 600 {
		t.Errorf("PNG is %dx%d (%v), want 960x600 (6.4x4 in at 150 dpi)", png.Width, png.Height, err)
	}
}

// TestGoldenPNGComparisonDetectsChanges checks that the tolerance does not
// hide a real change: the same chart with one line moved fails it.
func TestGoldenPNGComparisonDetectsChanges(t *testing.T) {
	c := &LineChart{Title: "t", XLabel: "x", YLabel: "y", Lines: []Line{{Group: "a", X: []float64{1, 2, 3}, Y: []float64{1, 2, 3}}}}
	var a, b bytes.Buffer
	if err := Render(&a, c, FormatPNG); err != nil {
		t.Fatal(err)
	}
	c.Lines[0].Y = []float64{1, 3, 2}
	if err := Render(&b, c, FormatPNG); err != nil {
		t.Fatal(err)
	}
	ai, _ := png.Decode(&a)
	bi, _ := png.Decode(&b)
	total := ai.Bounds().Dx() * ai.Bounds().Dy()
	if n := diffPixels(ai, bi); float64(n) <= maxDiffFraction*float64(total) {
		t.Errorf("a moved line changes only %d of %d pixels: the tolerance is too loose", n, total)
	}
	if n := diffPixels(ai, ai); n != 0 {
		t.Errorf("an image differs from itself in %d pixels", n)
	}
}

func TestRenderRejectsBadData(t *testing.T) {
	line := func(x, y []float64) *LineChart {
		return &LineChart{Title: "bad", Lines: []Line{{Group: "rnn", Variant: "free_running", X: x, Y: y}}}
	}
	nan, inf := math.NaN(), math.Inf(1)
	for _, c := range []struct {
		name  string
		chart Chart
		want  string
	}{
		{"no lines", &LineChart{Title: "bad"}, `chart "bad": no lines to plot`},
		{"empty series", line(nil, nil), `chart "bad": line "rnn free_running": no points (empty series)`},
		{"NaN y", line([]float64{1, 2}, []float64{1, nan}), `line "rnn free_running": y[1] is NaN`},
		{"Inf x", line([]float64{1, inf}, []float64{1, 2}), `line "rnn free_running": x[1] is +Inf`},
		{"-Inf y", line([]float64{1, 2}, []float64{math.Inf(-1), 2}), `y[0] is -Inf`},
		{"lengths", line([]float64{1, 2}, []float64{1}), "2 x values but 1 y values"},
		{"band", &LineChart{Title: "bad", Lines: []Line{{Group: "g", X: []float64{1}, Y: []float64{1}, Lo: []float64{0}, Hi: []float64{nan}}}}, "band high[0] is NaN"},
		{"band length", &LineChart{Title: "bad", Lines: []Line{{Group: "g", X: []float64{1}, Y: []float64{1}, Lo: []float64{0}}}}, "band bounds do not match"},
		{"log x", &LineChart{Title: "bad", XScale: ScaleLog, Lines: []Line{{Group: "g", X: []float64{0, 1}, Y: []float64{1, 1}}}}, "x[0] = 0 cannot be shown on a logarithmic axis"},
		{"log y", &LineChart{Title: "bad", YScale: ScaleLog, Lines: []Line{{Group: "g", X: []float64{1, 2}, Y: []float64{1, -1}}}}, "y[1] = -1 cannot be shown on a logarithmic axis"},
		{"log y band", &LineChart{Title: "bad", YScale: ScaleLog, Lines: []Line{{Group: "g", X: []float64{1}, Y: []float64{1}, Lo: []float64{0}, Hi: []float64{2}}}}, "band low[0] = 0 cannot be shown"},
		{"no bars", &BarChart{Title: "bad"}, `chart "bad": no bars to plot`},
		{"NaN bar", &BarChart{Title: "bad", Bars: []Bar{{Label: "lstm", Value: nan, N: 1}}}, `bar "lstm": value is NaN`},
		{"Inf bar", &BarChart{Title: "bad", Bars: []Bar{{Label: "lstm", Value: inf, N: 1}}}, `bar "lstm": value is +Inf`},
		{"NaN interval", &BarChart{Title: "bad", Bars: []Bar{{Label: "lstm", Value: 1, N: 3, HalfWidth: nan}}}, `confidence half-width is NaN`},
	} {
		for _, format := range []string{FormatPNG, FormatSVG} {
			var buf bytes.Buffer
			err := Render(&buf, c.chart, format)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s (%s): err = %v, want it to contain %q", c.name, format, err, c.want)
			}
			if buf.Len() != 0 {
				t.Errorf("%s (%s): wrote %d bytes for invalid data", c.name, format, buf.Len())
			}
		}
	}
	// A single bar with n=1 has no interval to check: NaN half-width is fine.
	if err := Render(&bytes.Buffer{}, &BarChart{Title: "ok", Bars: []Bar{{Label: "a", Value: 1, N: 1, HalfWidth: nan}}}, FormatSVG); err != nil {
		t.Errorf("single-run bar: %v", err)
	}
	if err := Render(&bytes.Buffer{}, line([]float64{1}, []float64{2}), "gif"); err == nil || !strings.Contains(err.Error(), `unknown format "gif"`) {
		t.Errorf("unknown format: %v", err)
	}
}

func TestAutoLogScale(t *testing.T) {
	mk := func(xs ...float64) *LineChart {
		return &LineChart{Lines: []Line{{X: xs, Y: make([]float64, len(xs))}}}
	}
	for _, c := range []struct {
		xs  []float64
		log bool
	}{
		{[]float64{1, 2, 4, 8, 16, 31}, false},       // 1.49 decades
		{[]float64{1, 2, 4, 8, 16, 32}, true},        // 1.51 decades
		{[]float64{8, 16, 32, 64, 128, 512}, true},   // 1.81 decades
		{[]float64{1, 2, 3, 4, 5, 6, 7, 8}, false},   // positions
		{[]float64{0, 10, 100, 1000, 10000}, false},  // a zero rules out a log axis
		{[]float64{-1, 10, 100, 1000, 10000}, false}, // so does a negative value
	} {
		if got := mk(c.xs...).logX(); got != c.log {
			t.Errorf("x = %v: log axis %v, want %v", c.xs, got, c.log)
		}
	}
	if (&LineChart{XScale: ScaleLinear, Lines: []Line{{X: []float64{1, 1e6}}}}).logX() {
		t.Error("ScaleLinear gave a log axis")
	}
}

func TestNiceTicks(t *testing.T) {
	var labels []string
	for _, tk := range (niceTicks{n: 5}).Ticks(0.13, 2.61) {
		if tk.Label != "" {
			labels = append(labels, tk.Label)
		}
	}
	if got := strings.Join(labels, " "); got != "0.5 1.0 1.5 2.0 2.5" {
		t.Errorf("labels %q", got)
	}
}

// TestFiguresWithBadSeries: a task series holding NaN or no points is not
// drawn; WriteReport still writes everything else and names the figures.
func TestFiguresWithBadSeries(t *testing.T) {
	rf := load(t)
	rf.Series = append(rf.Series,
		harness.SeriesRecord{Model: "lstm", Task: "text/jargon", Seed: 1, Series: harness.Series{Name: "accuracy_vs_distance", XName: "distance", Unit: "fraction", X: []float64{1, 2}, Y: []float64{0.5, math.NaN()}}},
		harness.SeriesRecord{Model: "rnn", Task: "text/jargon", Seed: 1, Series: harness.Series{Name: "empty_vs_x", XName: "x", X: []float64{}, Y: []float64{}}},
		harness.SeriesRecord{Model: "rnn", Task: "text/jargon", Seed: 1, Series: harness.Series{Name: "ragged_vs_x", XName: "x", X: []float64{1, 2}, Y: []float64{1}}},
	)
	dir := t.TempDir()
	w, err := WriteReport(dir, rf)
	if err == nil {
		t.Fatal("no error for unplottable series")
	}
	for _, s := range []string{"3 figure(s) not drawn", `chart "text/jargon: accuracy vs distance": line "lstm": y[1] is NaN`,
		`chart "text/jargon: empty vs x": line "rnn": no points (empty series)`, "rnn seed 1 has 2 x but 1 y values"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error lacks %q:\n%v", s, err)
		}
	}
	md, _ := os.ReadFile(filepath.Join(dir, harness.ReportFileName))
	if !strings.Contains(string(md), "**text/jargon: accuracy vs distance: not drawn:**") {
		t.Errorf("report.md does not list the figure that was not drawn")
	}
	html, _ := os.ReadFile(filepath.Join(dir, HTMLFileName))
	if !strings.Contains(string(html), "text/jargon: accuracy vs distance: not drawn:") {
		t.Errorf("report.html does not list the figure that was not drawn")
	}
	if len(w.Files) != 7*2+7 {
		t.Errorf("wrote %d files, want the 14 good images and 7 documents (claims.json included): %v", len(w.Files), w.Files)
	}
}

// TestRenderDegenerateData: valid but degenerate charts (one point, a
// constant line, zero and negative bars, log axis over one decade) render.
func TestRenderDegenerateData(t *testing.T) {
	for _, c := range []Chart{
		&LineChart{Title: "one point", Lines: []Line{{Group: "a", X: []float64{3}, Y: []float64{2}}}},
		&LineChart{Title: "constant", Lines: []Line{{Group: "a", X: []float64{1, 2, 3}, Y: []float64{2, 2, 2}, Lo: []float64{2, 2, 2}, Hi: []float64{2, 2, 2}}}},
		&LineChart{Title: "log", XScale: ScaleLog, Lines: []Line{{Group: "a", X: []float64{2, 3}, Y: []float64{1, 0}}}},
		&LineChart{Title: "many", Lines: []Line{{Group: "a", X: []float64{1e-3, 1, 1e3, 1e6}, Y: []float64{-1e9, 0, 1e9, 5}}}},
		&BarChart{Title: "zero", Bars: []Bar{{Label: "a", Value: 0, N: 1}}},
		&BarChart{Title: "negative", Bars: []Bar{{Label: "a", Value: -2, N: 2, HalfWidth: 0.5}, {Label: "b", Value: 1, N: 3, HalfWidth: 0}}},
	} {
		for _, format := range []string{FormatPNG, FormatSVG} {
			var buf bytes.Buffer
			if err := Render(&buf, c, format); err != nil || buf.Len() == 0 {
				t.Errorf("%s (%s): %v, %d bytes", c.title(), format, err, buf.Len())
			}
		}
	}
}

func TestHumanize(t *testing.T) {
	for in, want := range map[string]string{
		"accumulated_kl_vs_length": "accumulated KL vs length",
		"oracle_nll_vs_position":   "oracle NLL vs position",
		"token_error_vs_position":  "token error vs position",
	} {
		if got := humanize(in); got != want {
			t.Errorf("humanize(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLogYAxis: a logarithmic y axis is drawn with decade ticks, and the
// same chart on a linear axis differs.
func TestLogYAxis(t *testing.T) {
	chart := func(scale Scale) *LineChart {
		return &LineChart{Title: "time", YLabel: "ms", YScale: scale, Lines: []Line{
			{Group: "pixelcnn", X: []float64{64, 256, 784}, Y: []float64{10, 60, 600}},
			{Group: "bernoulli", X: []float64{64, 256, 784}, Y: []float64{0.01, 0.05, 0.4}},
		}}
	}
	var logSVG, linSVG bytes.Buffer
	if err := Render(&logSVG, chart(ScaleLog), FormatSVG); err != nil {
		t.Fatal(err)
	}
	if err := Render(&linSVG, chart(ScaleAuto), FormatSVG); err != nil {
		t.Fatal(err)
	}
	for _, tick := range []string{">0.01<", ">1<", ">100<"} {
		if !strings.Contains(logSVG.String(), tick) {
			t.Errorf("log y axis lacks the tick label %s", tick)
		}
	}
	if bytes.Equal(logSVG.Bytes(), linSVG.Bytes()) {
		t.Error("the log and linear y axes render the same")
	}
}
