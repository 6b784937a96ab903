package bench

import (
	"fmt"
	"io"
	"slices"
	"sort"

	"arbench/harness"
	"arbench/reports"
)

// chartLine is one line of a chart before rendering.
type chartLine struct {
	model, variant string
	color, style   int
	x, y, lo, hi   []float64
}

type chart struct {
	title, xlabel, xname, xunit, ylabel, unit string
	lines                                     []*chartLine
	// logY draws the y axis logarithmic.
	logY bool
}

// collect builds a chart's lines: for every point keep(p) accepts, the
// line named by (model, variant) gets the point (x, y) and optional band.
func collect(r *Report, keep func(p Point) (variant string, style int, ok bool), xy func(p Point) (x, y, lo, hi float64)) []*chartLine {
	colors := map[string]int{}
	for i, m := range r.Models {
		colors[m.Label] = i
	}
	var lines []*chartLine
	index := map[[2]string]*chartLine{}
	for _, p := range r.Points {
		if p.Skipped != "" {
			continue
		}
		variant, style, ok := keep(p)
		if !ok {
			continue
		}
		k := [2]string{p.Model, variant}
		l := index[k]
		if l == nil {
			l = &chartLine{model: p.Model, variant: variant, color: colors[p.Model], style: style}
			index[k] = l
			lines = append(lines, l)
		}
		x, y, lo, hi := xy(p)
		l.x, l.y, l.lo, l.hi = append(l.x, x), append(l.y, y), append(l.lo, lo), append(l.hi, hi)
	}
	for _, l := range lines {
		sort.Sort(byX{l})
	}
	return lines
}

type byX struct{ l *chartLine }

func (s byX) Len() int           { return len(s.l.x) }
func (s byX) Less(i, j int) bool { return s.l.x[i] < s.l.x[j] }
func (s byX) Swap(i, j int) {
	l := s.l
	l.x[i], l.x[j] = l.x[j], l.x[i]
	l.y[i], l.y[j] = l.y[j], l.y[i]
	l.lo[i], l.lo[j] = l.lo[j], l.lo[i]
	l.hi[i], l.hi[j] = l.hi[j], l.hi[i]
}

// charts defines the report's figures by file name (without extension):
// tokens/s against sequence length per model (training and scoring, with
// the IQR band), per-token latency against output length for each
// generation batch size (cached and re-feeding), latency per translated
// sequence against output length at batch 1 and at the largest
// translation batch (one line per model and decoding mode), and peak RSS
// against length (training sequence length; prompt plus output for
// generation); with the image sweep, generation time against image size
// (imageChart).
func charts(r *Report) map[string]*chart {
	c := r.Config
	out := map[string]*chart{}
	add := func(name string, ch *chart) {
		if len(ch.lines) > 0 {
			out[name] = ch
		}
	}
	add("throughput_vs_seq_len", &chart{
		title:  fmt.Sprintf("Tokens/s vs sequence length (batch %s)", batchLabel(c.Train.Batch, c.Score.Batch)),
		xlabel: "sequence length (tokens per row)", xname: "seq_len", xunit: "tokens",
		ylabel: "tokens/s (median, IQR band)", unit: "tokens/s",
		lines: collect(r, func(p Point) (string, int, bool) {
			switch {
			case p.Kind == KindTrain && p.Batch == c.Train.Batch:
				return "training", 0, true
			case p.Kind == KindScore && p.Batch == c.Score.Batch:
				return "scoring", 1, true
			}
			return "", 0, false
		}, func(p Point) (float64, float64, float64, float64) {
			return float64(p.SeqLen), p.TokensPerSec.Median, p.TokensPerSec.Q1, p.TokensPerSec.Q3
		}),
	})
	batches := map[int]bool{}
	for _, p := range r.Points {
		if p.Kind == KindGenerate {
			batches[p.Batch] = true
		}
	}
	maxBatch := 0
	for b := range batches {
		maxBatch = max(maxBatch, b)
		add(fmt.Sprintf("latency_vs_length_b%d", b), &chart{
			title:  fmt.Sprintf("Per-token latency vs output length (batch %d)", b),
			xlabel: "generated tokens per row", xname: "length", xunit: "tokens",
			ylabel: "median latency per step (ms)", unit: "ms",
			lines: collect(r, func(p Point) (string, int, bool) {
				if p.Kind != KindGenerate || p.Batch != b || p.Latency.N == 0 {
					return "", 0, false
				}
				if p.Mode == ModeRefeed {
					return "re-feeding", 1, true
				}
				return "cached", 0, true
			}, func(p Point) (float64, float64, float64, float64) {
				y := 1e3 * p.Latency.P50
				return float64(p.Length), y, y, y
			}),
		})
	}
	transBatches := map[int]bool{}
	modeStyle := map[string]int{}
	for _, p := range r.Points {
		if p.Kind == KindTranslate && p.Skipped == "" {
			transBatches[p.Batch] = true
			if _, ok := modeStyle[p.Mode]; !ok {
				modeStyle[p.Mode] = len(modeStyle)
			}
		}
	}
	maxTrans := 0
	for b := range transBatches {
		maxTrans = max(maxTrans, b)
	}
	for b := range transBatches {
		if b != 1 && b != maxTrans {
			continue
		}
		add(fmt.Sprintf("translate_latency_vs_length_b%d", b), &chart{
			title:  fmt.Sprintf("Translation latency per sequence (batch %d)", b),
			xlabel: "output tokens per row", xname: "length", xunit: "tokens",
			ylabel: "median ms per sequence (decode / rows)", unit: "ms",
			lines: collect(r, func(p Point) (string, int, bool) {
				if p.Kind != KindTranslate || p.Batch != b || p.SeqLatency == nil || p.SeqLatency.N == 0 {
					return "", 0, false
				}
				return p.Mode, modeStyle[p.Mode], true
			}, func(p Point) (float64, float64, float64, float64) {
				y := 1e3 * p.SeqLatency.P50
				return float64(p.Length), y, y, y
			}),
		})
	}
	add("memory_vs_length", &chart{
		title:  fmt.Sprintf("Peak memory vs length (batch %s)", batchLabel(c.Train.Batch, maxBatch)),
		xlabel: "tokens per row (training: sequence; generation: prompt + output)", xname: "length", xunit: "tokens",
		ylabel: "peak RSS (MiB)", unit: "MiB",
		lines: collect(r, func(p Point) (string, int, bool) {
			switch {
			case p.Kind == KindTrain && p.Batch == c.Train.Batch:
				return "training", 0, true
			case p.Kind == KindGenerate && p.Batch == maxBatch && p.Mode == ModeCached:
				return "generation", 1, true
			}
			return "", 0, false
		}, func(p Point) (float64, float64, float64, float64) {
			x := float64(p.SeqLen)
			if p.Kind == KindGenerate {
				x = float64(p.Prompt + p.Length)
			}
			y := float64(p.Memory.PeakRSS) / mib
			return x, y, y, y
		}),
	})
	add("generation_time_vs_image_size", imageChart(r))
	return out
}

// imageChart is ms per image against pixels per image (H·W) for the
// image sweep, on a log scale: per model a line per sample batch
// ("sample, batch B": solid for the smallest batch, then dotted and
// dash-dot) and one for the training step ("train, batch B", dashed), so
// that sampling's N sequential steps stand against one parallel pass over
// all N pixels. The scoring passes are in the tables only (a fourth style
// per model crowds the chart).
func imageChart(r *Report) *chart {
	var batches, sides []int
	for _, p := range r.Points {
		if p.Skipped != "" || !isImage(p.Kind) {
			continue
		}
		if p.Kind == KindImageSample && !slices.Contains(batches, p.Batch) {
			batches = append(batches, p.Batch)
		}
		if !slices.Contains(sides, p.Side) {
			sides = append(sides, p.Side)
		}
	}
	slices.Sort(batches)
	slices.Sort(sides)
	sampleStyles := []int{0, 2, 3, 4}
	return &chart{
		title:  "Generation time vs image size",
		xlabel: "pixels per image, H·W" + sideRange(sides), xname: "pixels", xunit: "pixels",
		ylabel: "ms per image", unit: "ms", logY: true,
		lines: collect(r, func(p Point) (string, int, bool) {
			switch p.Kind {
			case KindImageSample:
				i := slices.Index(batches, p.Batch)
				return fmt.Sprintf("sample, batch %d", p.Batch), sampleStyles[i%len(sampleStyles)], true
			case KindImageTrain:
				return fmt.Sprintf("train, batch %d", p.Batch), 1, true
			}
			return "", 0, false
		}, func(p Point) (float64, float64, float64, float64) {
			return float64(p.SeqLen), p.MsPerImage.Median, p.MsPerImage.Q1, p.MsPerImage.Q3
		}),
	}
}

// batchLabel names the batch sizes of a chart's two variants.
func batchLabel(a, b int) string {
	if a == b || b == 0 {
		return fmt.Sprint(a)
	}
	return fmt.Sprintf("%d / %d", a, b)
}

// Charts returns the report's charts by file name, as line charts of
// package reports.
func Charts(r *Report) map[string]*reports.LineChart {
	out := map[string]*reports.LineChart{}
	for name, ch := range charts(r) {
		lc := &reports.LineChart{Title: ch.title, XLabel: ch.xlabel, YLabel: ch.ylabel, XScale: reports.ScaleLog}
		if ch.logY {
			lc.YScale = reports.ScaleLog
		}
		for _, l := range ch.lines {
			line := reports.Line{Group: l.model, Color: l.color, Variant: l.variant, Style: l.style, X: l.x, Y: l.y}
			if name == "throughput_vs_seq_len" {
				line.Lo, line.Hi = l.lo, l.hi
			}
			lc.Lines = append(lc.Lines, line)
		}
		out[name] = lc
	}
	return out
}

// SeriesOf returns the charts' data as harness series (one per line,
// named by chart, labelled model/variant), for generic report renderers.
func SeriesOf(r *Report) []harness.SeriesRecord {
	cs := charts(r)
	names := make([]string, 0, len(cs))
	for n := range cs {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []harness.SeriesRecord
	for _, n := range names {
		ch := cs[n]
		for _, l := range ch.lines {
			out = append(out, harness.SeriesRecord{Model: l.model, Task: "bench", Series: harness.Series{
				Name: n, Label: l.variant, XName: ch.xname, XUnit: ch.xunit, Unit: ch.unit,
				X: l.x, Y: l.y, Params: map[string]any{"backend": r.Backend, "device": r.Device},
			}})
		}
	}
	return out
}

// sideRange names the image sides of a chart, " (sides 8–28)", or
// " (side 8)" for one; "" for none.
func sideRange(sides []int) string {
	switch len(sides) {
	case 0:
		return ""
	case 1:
		return fmt.Sprintf(" (side %d)", sides[0])
	}
	return fmt.Sprintf(" (sides %d–%d)", sides[0], sides[len(sides)-1])
}

func renderChart(w io.Writer, c *reports.LineChart, format string) error {
	return reports.Render(w, c, format)
}
