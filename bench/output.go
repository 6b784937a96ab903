package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Output file names, inside the output directory.
const (
	JSONFileName      = "bench.json"
	MarkdownFileName  = "bench.md"
	BenchstatFileName = "bench.txt"
	ChartsDir         = "charts"
)

// cpuName returns the processor's model name (Linux), else "".
func cpuName() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

const mib = 1 << 20

// summaryLine is the progress line of a point.
func summaryLine(p Point) string {
	head := fmt.Sprintf("%-12s %s", p.Model, describe(p))
	if p.Skipped != "" {
		return head + ": skipped (" + p.Skipped + ")"
	}
	_, gf, ceil := flopsCells(p, 2)
	tail := fmt.Sprintf(", %s GFLOP/s (%s of ceiling), peak RSS %s MiB", gf, ceil, rssCell(p))
	if p.MsPerImage != nil {
		return head + fmt.Sprintf(": %.3f ms/image (IQR %.3f), %s pixels/s", p.MsPerImage.Median, p.MsPerImage.IQR, num(p.TokensPerSec.Median)) + tail
	}
	s := fmt.Sprintf("%s: %s tokens/s (IQR %s)", head, num(p.TokensPerSec.Median), num(p.TokensPerSec.IQR))
	if p.SeqLatency != nil {
		s += fmt.Sprintf(", %s seq/s, p50 %.3f ms/seq, %s passes", num(p.SeqPerSec.Median), 1e3*p.SeqLatency.P50, num(p.Passes))
		if p.Acceptance != nil {
			s += fmt.Sprintf(", acceptance %.2f", *p.Acceptance)
		}
	}
	if p.Latency != nil {
		s += fmt.Sprintf(", TTFT %.2f ms, p50 %.3f ms/token", 1e3*p.TTFT.Median, 1e3*p.Latency.P50)
	}
	return s + tail
}

// num formats a rate with three significant digits and no exponent.
func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "—"
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// repeatsNote says how many timed repeats the report's points had:
// Config.Repeats, and the image section's when it differs and the report
// has image points (translation's are stated with its table).
func repeatsNote(r *Report) string {
	note := fmt.Sprintf("%d repeats per point", r.Config.Repeats)
	hasImage, hasOther := false, false
	for _, p := range r.Points {
		switch {
		case isImage(p.Kind):
			hasImage = true
		case p.Kind != KindTranslate:
			hasOther = true
		}
	}
	switch n := r.Config.Image.Repeats; {
	case hasImage && !hasOther:
		note = fmt.Sprintf("%d repeats per point", n)
	case hasImage && n != r.Config.Repeats:
		note += fmt.Sprintf(" (%d per image point)", n)
	}
	return note
}

// WriteMarkdown writes the report's tables.
func WriteMarkdown(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Throughput: %s\n\n", r.Name)
	info := ""
	if r.BackendInfo != "" {
		info = " (" + r.BackendInfo + ")"
	}
	fmt.Fprintf(&b, "Backend %s%s on %s; %s, %d CPUs, GOMAXPROCS %d; %s %s/%s. ", r.Backend, info, r.Device, r.CPU, r.NumCPU, r.GOMAXPROCS, r.GoVersion, r.GOOS, r.GOARCH)
	fmt.Fprintf(&b, "Warm-up %d, %s: medians with the interquartile range (IQR).\n\n", r.Config.Warmup, repeatsNote(r))
	fmt.Fprintf(&b, "Matrix-multiply ceiling (%d×%d by %d×%d on this backend): **%.1f GFLOP/s** best, %.1f median.\n",
		r.Ceiling.N, r.Ceiling.N, r.Ceiling.N, r.Ceiling.N, r.Ceiling.Best, r.Ceiling.GFLOPS.Median)
	writeRuntimes(&b, r)

	var tr, gen, trans, img []Point
	var skipped []Point
	conditional := false
	for _, p := range r.Points {
		switch {
		case p.Skipped != "":
			skipped = append(skipped, p)
		case p.Kind == KindGenerate:
			gen = append(gen, p)
		case p.Kind == KindTranslate:
			trans = append(trans, p)
		case isImage(p.Kind):
			img = append(img, p)
		default:
			tr = append(tr, p)
			conditional = conditional || p.Source > 0
		}
	}
	if len(tr) > 0 {
		b.WriteString("\n## Training and scoring\n\n")
		b.WriteString("Training includes gradient clipping and the Adam update. FLOPs are the matrix products executed per token.")
		if conditional {
			b.WriteString(" Conditional (encoder–decoder) models read random sources of the sequence length and count their target tokens.")
		}
		b.WriteString("\n\n")
		b.WriteString("| model | kind | batch | seq len | tokens/s | IQR | ms/step | MFLOP/token | GFLOP/s | % ceiling | peak RSS MiB | peak heap MiB |\n")
		b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, p := range tr {
			flops, gf, ceil := flopsCells(p, 2)
			fmt.Fprintf(&b, "| %s | %s | %d | %d | %s | %s | %.1f | %s | %s | %s | %s | %.0f |\n",
				p.Model, p.Kind, p.Batch, p.SeqLen, num(p.TokensPerSec.Median), num(p.TokensPerSec.IQR),
				1e3*p.StepSeconds.Median, flops, gf, ceil,
				rssCell(p), float64(p.Memory.PeakHeap)/mib)
		}
	}
	if len(gen) > 0 {
		b.WriteString("\n## Generation\n\n")
		b.WriteString("Greedy decoding after a random prompt; tokens/s counts the generated tokens of all rows over the whole loop, ")
		b.WriteString("TTFT is the prompt's pass, p50/p90/p99 the latency of each later step (all rows).\n\n")
		b.WriteString("| model | mode | batch | length | tokens/s | IQR | TTFT ms | p50 ms | p90 ms | p99 ms | MFLOP/token | GFLOP/s | % ceiling | peak RSS MiB | peak heap MiB |\n")
		b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, p := range gen {
			flops, gf, ceil := flopsCells(p, 2)
			fmt.Fprintf(&b, "| %s | %s | %d | %d | %s | %s | %.2f | %.3f | %.3f | %.3f | %s | %s | %s | %s | %.0f |\n",
				p.Model, p.Mode, p.Batch, p.Length, num(p.TokensPerSec.Median), num(p.TokensPerSec.IQR),
				1e3*p.TTFT.Median, 1e3*p.Latency.P50, 1e3*p.Latency.P90, 1e3*p.Latency.P99,
				flops, gf, ceil,
				rssCell(p), float64(p.Memory.PeakHeap)/mib)
		}
		if sp := speedups(gen); len(sp) > 0 {
			b.WriteString("\n### Cached vs re-feeding generation\n\n")
			b.WriteString("| model | batch | length | cached tokens/s | re-feeding tokens/s | speed-up |\n|---|--:|--:|--:|--:|--:|\n")
			for _, s := range sp {
				fmt.Fprintf(&b, "| %s | %d | %d | %s | %s | %.1f× |\n", s.model, s.batch, s.length, num(s.cached), num(s.refeed), s.cached/s.refeed)
			}
		}
	}
	if len(trans) > 0 {
		writeTranslate(&b, r, trans)
	}
	if len(img) > 0 {
		writeImages(&b, r, img)
	}
	writeBaseline(&b, r)
	writePeers(&b, r)
	if len(skipped) > 0 {
		b.WriteString("\n## Not measured\n\n")
		for _, p := range skipped {
			fmt.Fprintf(&b, "- %s %s: %s\n", p.Model, describe(p), p.Skipped)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeTranslate writes the translation table, the FLOPs notes and the
// speed-ups over the autoregressive baseline.
func writeTranslate(b *strings.Builder, r *Report, trans []Point) {
	b.WriteString("\n## Translation\n\n")
	fmt.Fprintf(b, "harness.Translate of random sources (%d tokens) into outputs of exactly the given length, %d timed decodes per point. ",
		r.Config.Translate.Source, r.Config.Translate.Repeats)
	b.WriteString("seq/s and tokens/s count all rows; ms/seq is a decode's time over its rows (at batch 1 one sequence's latency), p50 and p99 over the decodes; ")
	b.WriteString("passes are the decoder passes per decode (mask-predict iterations, verifier calls); acceptance is the share of drafted tokens accepted, ")
	b.WriteString("tokens/verify the output tokens per row and verifier pass.\n\n")
	b.WriteString("| model | mode | batch | length | seq/s | tokens/s | ms/seq p50 | ms/seq p99 | passes | acceptance | tokens/verify | MFLOP/token | GFLOP/s | % ceiling | peak RSS MiB |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	opt := func(v *float64) string {
		if v == nil {
			return "—"
		}
		return fmt.Sprintf("%.2f", *v)
	}
	// Notes are listed once per model and text, with their points.
	type note struct{ model, text string }
	var notes []note
	where := map[note][]string{}
	addNote := func(p Point, text string) {
		if text == "" {
			return
		}
		n := note{p.Model, text}
		if where[n] == nil {
			notes = append(notes, n)
		}
		where[n] = append(where[n], fmt.Sprintf("%s b=%d len=%d", p.Mode, p.Batch, p.Length))
	}
	for _, p := range trans {
		flops, gf, ceil := flopsCells(p, 2)
		addNote(p, p.FLOPsNote)
		addNote(p, p.Note)
		fmt.Fprintf(b, "| %s | %s | %d | %d | %s | %s | %.3f | %.3f | %s | %s | %s | %s | %s | %s | %s |\n",
			p.Model, p.Mode, p.Batch, p.Length, num(p.SeqPerSec.Median), num(p.TokensPerSec.Median),
			1e3*p.SeqLatency.P50, 1e3*p.SeqLatency.P99, num(p.Passes), opt(p.Acceptance), opt(p.TokensPerVerify),
			flops, gf, ceil, rssCell(p))
	}
	if len(notes) > 0 {
		b.WriteString("\n")
		for _, n := range notes {
			fmt.Fprintf(b, "- %s (%s): %s\n", n.model, strings.Join(where[n], ", "), n.text)
		}
	}
	base, rows := translateSpeedups(trans)
	if len(rows) == 0 {
		return
	}
	b.WriteString("\n### Speed-up over autoregressive decoding\n\n")
	fmt.Fprintf(b, "Sequences/s over those of the baseline, **%s %s** (%s), at the same batch size and output length.\n\n", base.Model, base.Mode, base.Family)
	b.WriteString("| model | mode | batch | length | seq/s | baseline seq/s | speed-up |\n|---|---|--:|--:|--:|--:|--:|\n")
	for _, s := range rows {
		fmt.Fprintf(b, "| %s | %s | %d | %d | %s | %s | %.2f× |\n", s.p.Model, s.p.Mode, s.p.Batch, s.p.Length, num(s.p.SeqPerSec.Median), num(s.base), s.p.SeqPerSec.Median/s.base)
	}
}

// BaselineFamily is the model family whose greedy translate points the
// other translate points' speed-ups are measured against: the
// autoregressive encoder–decoder.
const BaselineFamily = "transformer-s2s"

type translateSpeedup struct {
	p    Point
	base float64
}

// translateSpeedups returns the baseline of the speed-up table (a point
// naming its model and mode) and every measured translate point with the
// baseline's seq/s at its batch and length. The baseline is the first
// model of family BaselineFamily with greedy points, else the first model
// with greedy points; none without greedy points.
func translateSpeedups(trans []Point) (Point, []translateSpeedup) {
	var base Point
	for _, p := range trans {
		if p.Mode == ModeGreedy && p.Family == BaselineFamily {
			base = p
			break
		}
	}
	if base.Model == "" {
		for _, p := range trans {
			if p.Mode == ModeGreedy {
				base = p
				break
			}
		}
	}
	if base.Model == "" {
		return base, nil
	}
	type key struct{ batch, length int }
	ref := map[key]float64{}
	for _, p := range trans {
		if p.Model == base.Model && p.Mode == ModeGreedy && p.SeqPerSec.Median > 0 {
			ref[key{p.Batch, p.Length}] = p.SeqPerSec.Median
		}
	}
	var out []translateSpeedup
	for _, p := range trans {
		if v, ok := ref[key{p.Batch, p.Length}]; ok {
			out = append(out, translateSpeedup{p, v})
		}
	}
	return base, out
}

type speedup struct {
	model          string
	batch, length  int
	cached, refeed float64
}

// speedups pairs cached and re-feeding generation at the same point.
func speedups(gen []Point) []speedup {
	type key struct {
		model         string
		batch, length int
	}
	cached := map[key]float64{}
	for _, p := range gen {
		if p.Mode == ModeCached {
			cached[key{p.Model, p.Batch, p.Length}] = p.TokensPerSec.Median
		}
	}
	var out []speedup
	for _, p := range gen {
		k := key{p.Model, p.Batch, p.Length}
		if c, ok := cached[k]; ok && p.Mode == ModeRefeed && p.TokensPerSec.Median > 0 {
			out = append(out, speedup{p.Model, p.Batch, p.Length, c, p.TokensPerSec.Median})
		}
	}
	return out
}

// benchName is a point's name in Go benchmark format (sub-benchmark keys
// that benchstat groups by).
func benchName(p Point, procs int) string {
	switch p.Kind {
	case KindImageSample:
		return fmt.Sprintf("BenchmarkImageSample/model=%s/path=%s/batch=%d/side=%d-%d", p.Model, p.Mode, p.Batch, p.Side, procs)
	case KindImageTrain, KindImageScore:
		kind := "Train"
		if p.Kind == KindImageScore {
			kind = "Score"
		}
		return fmt.Sprintf("BenchmarkImage%s/model=%s/batch=%d/side=%d-%d", kind, p.Model, p.Batch, p.Side, procs)
	case KindGenerate:
		return fmt.Sprintf("BenchmarkGenerate/model=%s/mode=%s/batch=%d/len=%d-%d", p.Model, p.Mode, p.Batch, p.Length, procs)
	case KindTranslate:
		return fmt.Sprintf("BenchmarkTranslate/model=%s/mode=%s/batch=%d/len=%d-%d", p.Model, p.Mode, p.Batch, p.Length, procs)
	}
	kind := "Train"
	if p.Kind == KindScore {
		kind = "Score"
	}
	return fmt.Sprintf("Benchmark%s/model=%s/batch=%d/seq=%d-%d", kind, p.Model, p.Batch, p.SeqLen, procs)
}

// WriteBenchstat writes every repeat of every point as a Go benchmark
// result line, so `benchstat old.txt new.txt` compares two runs. An op is
// one training or scoring step, one generated token (all rows), one
// translation of the whole batch, or, for an image point, sampling the
// whole batch of images or one training or scoring pass over it.
func WriteBenchstat(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "goos: %s\ngoarch: %s\npkg: arbench/bench\n", r.GOOS, r.GOARCH)
	if r.CPU != "" {
		fmt.Fprintf(&b, "cpu: %s\n", r.CPU)
	}
	fmt.Fprintf(&b, "backend: %s\ndevice: %s\n", r.Backend, r.Device)
	for _, v := range r.Ceiling.GFLOPS.Values {
		n := float64(r.Ceiling.N)
		fmt.Fprintf(&b, "BenchmarkMatmulCeiling/n=%d-%d\t1\t%.0f ns/op\t%.2f GFLOP/s\n", r.Ceiling.N, r.GOMAXPROCS, 2*n*n*n/v, v)
	}
	for _, p := range r.Points {
		if p.Skipped != "" {
			continue
		}
		mem := fmt.Sprintf("\t%d peak-RSS-B\t%d peak-heap-B", p.Memory.PeakRSS, p.Memory.PeakHeap)
		for i, rate := range p.TokensPerSec.Values {
			gf := p.FLOPsPerToken * rate / 1e9
			if p.Kind == KindTranslate {
				sec := p.StepSeconds.Values[i]
				fmt.Fprintf(&b, "%s\t1\t%.0f ns/op\t%.3f seq/s\t%.2f tokens/s\t%.0f ns/seq\t%.4g passes/op",
					benchName(p, r.GOMAXPROCS), 1e9*sec, p.SeqPerSec.Values[i], rate, 1e9*sec/float64(p.Batch), p.Passes)
				if p.Acceptance != nil {
					fmt.Fprintf(&b, "\t%.4f acceptance", *p.Acceptance)
				}
				fmt.Fprintf(&b, "%s%s\n", gflopsCol(p, gf), mem)
				continue
			}
			if isImage(p.Kind) {
				fmt.Fprintf(&b, "%s\t1\t%.0f ns/op\t%.0f ns/image\t%.2f pixels/s%s%s\n",
					benchName(p, r.GOMAXPROCS), 1e9*p.StepSeconds.Values[i], 1e6*p.MsPerImage.Values[i], rate, gflopsCol(p, gf), mem)
				continue
			}
			if p.Kind == KindGenerate {
				lat := p.LatencyRepeats[i]
				fmt.Fprintf(&b, "%s\t1\t%.0f ns/op\t%.2f tokens/s\t%.0f ttft-ns\t%.0f p50-ns\t%.0f p90-ns\t%.0f p99-ns%s%s\n",
					benchName(p, r.GOMAXPROCS), 1e9/rate, rate, 1e9*p.TTFT.Values[i], 1e9*lat.P50, 1e9*lat.P90, 1e9*lat.P99, gflopsCol(p, gf), mem)
				continue
			}
			fmt.Fprintf(&b, "%s\t1\t%.0f ns/op\t%.2f tokens/s%s%s\n",
				benchName(p, r.GOMAXPROCS), 1e9*p.StepSeconds.Values[i], rate, gflopsCol(p, gf), mem)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Write writes bench.json, bench.md, bench.txt and the charts (PNG and SVG)
// into dir and returns the paths written.
func Write(dir string, r *Report) ([]string, error) {
	if err := os.MkdirAll(filepath.Join(dir, ChartsDir), 0o755); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	var written []string
	put := func(name string, render func(io.Writer) error) error {
		var buf bytes.Buffer
		if err := render(&buf); err != nil {
			return fmt.Errorf("bench: %s: %w", name, err)
		}
		path := filepath.Join(dir, name)
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		written = append(written, path)
		return nil
	}
	if err := put(JSONFileName, func(w io.Writer) error {
		out := struct {
			*Report
			Series any `json:"series"`
		}{r, SeriesOf(r)}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}); err != nil {
		return written, err
	}
	if err := put(MarkdownFileName, func(w io.Writer) error { return WriteMarkdown(w, r) }); err != nil {
		return written, err
	}
	if err := put(BenchstatFileName, func(w io.Writer) error { return WriteBenchstat(w, r) }); err != nil {
		return written, err
	}
	charts := Charts(r)
	names := make([]string, 0, len(charts))
	for name := range charts {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, format := range []string{"png", "svg"} {
			c := charts[name]
			if err := put(filepath.Join(ChartsDir, name+"."+format), func(w io.Writer) error { return renderChart(w, c, format) }); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// flopsCells are a point's MFLOP per token (with prec decimals), GFLOP/s
// and share of the ceiling for a table, or "unknown" when its FLOPs are
// not known (FLOPsNote): never a 0 that was not measured.
func flopsCells(p Point, prec int) (flops, gf, ceil string) {
	if p.FLOPsNote != "" {
		return "unknown", "unknown", "unknown"
	}
	return fmt.Sprintf("%.*f", prec, p.FLOPsPerToken/1e6), fmt.Sprintf("%.1f", p.GFLOPS), fmt.Sprintf("%.0f%%", 100*p.CeilingFraction)
}

// gflopsCol is a bench.txt line's GFLOP/s column, absent when the point's
// FLOPs are unknown.
func gflopsCol(p Point, gf float64) string {
	if p.FLOPsNote != "" {
		return ""
	}
	return fmt.Sprintf("\t%.3f GFLOP/s", gf)
}

// pointKey identifies a point's configuration across models.
type pointKey struct {
	kind, mode                                string
	batch, seqLen, source, prompt, length, sd int
}

func keyOf(p Point) pointKey {
	return pointKey{p.Kind, p.Mode, p.Batch, p.SeqLen, p.Source, p.Prompt, p.Length, p.Side}
}

// writeBaseline writes every model's speed over the baseline model's
// (Config.Baseline) at the same point: the ratio of median tokens/s, > 1
// faster (e.g. a Go model and its PyTorch twin in one run).
func writeBaseline(b *strings.Builder, r *Report) {
	base := r.Config.Baseline
	if base == "" {
		return
	}
	ref := map[pointKey]Point{}
	for _, p := range r.Points {
		if p.Model == base && p.Skipped == "" {
			ref[keyOf(p)] = p
		}
	}
	var rows []string
	for _, p := range r.Points {
		q, ok := ref[keyOf(p)]
		if p.Model == base || p.Skipped != "" || !ok || !(q.TokensPerSec.Median > 0) {
			continue
		}
		rows = append(rows, fmt.Sprintf("| %s | %s | %s | %s | %s | %.3f× |", p.Model, describe(p),
			num(p.TokensPerSec.Median), num(q.TokensPerSec.Median), ratioCell(p, q), p.TokensPerSec.Median/q.TokensPerSec.Median))
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(b, "\n## Speed relative to %s\n\n", base)
	fmt.Fprintf(b, "Tokens (or pixels) per second of each model over %s's at the same point, medians of one run (> 1: faster than %s).\n\n", base, base)
	fmt.Fprintf(b, "| model | point | tokens/s | %s tokens/s | IQRs | ratio |\n|---|---|--:|--:|--:|--:|\n", base)
	for _, row := range rows {
		b.WriteString(row + "\n")
	}
}

// ratioCell shows both points' interquartile ranges.
func ratioCell(p, q Point) string {
	return num(p.TokensPerSec.IQR) + " / " + num(q.TokensPerSec.IQR)
}

// rssCell is a point's peak RSS in MiB, with its plugin process's when the
// model computes in one ("27 + plugin 310").
func rssCell(p Point) string {
	s := fmt.Sprintf("%.0f", float64(p.Memory.PeakRSS)/mib)
	if p.Memory.PluginPeakRSS > 0 {
		s += fmt.Sprintf(" + plugin %.0f", float64(p.Memory.PluginPeakRSS)/mib)
	}
	return s
}

// writeRuntimes lists what computes the models that do not run on
// arbench's backend.
func writeRuntimes(b *strings.Builder, r *Report) {
	if len(r.Runtimes) == 0 {
		return
	}
	labels := slices.Sorted(maps.Keys(r.Runtimes))
	b.WriteString("\nModels computed outside arbench's backend (plugins; peak RSS \"A + plugin P\": arbench's process, then the plugin's):\n\n")
	for _, l := range labels {
		fmt.Fprintf(b, "- %s: %s\n", l, r.Runtimes[l])
	}
}

// writePeers writes, for every pair of Config.Peers, arbench's model's
// tokens/s over its peer's at each point both measured, with both peak
// RSS figures: arbench's process for arbench's model, the plugin's
// process for a peer that computes in one (its driver, arbench's process,
// is in the tables above). Generation points pair by batch and lengths
// whatever their mode, so that arbench's cached and re-feeding loops are
// both set against the peer's own step.
func writePeers(b *strings.Builder, r *Report) {
	if len(r.Config.Peers) == 0 {
		return
	}
	measured := func(p Point) bool { return p.Skipped == "" && p.TokensPerSec.Median > 0 }
	var rows []string
	for _, pr := range r.Config.Peers {
		peer := map[pointKey]Point{}
		for _, q := range r.Points {
			if q.Model == pr.Peer && measured(q) {
				peer[peerKey(q)] = q
			}
		}
		for _, p := range r.Points {
			q, ok := peer[peerKey(p)]
			if p.Model != pr.Model || !measured(p) || !ok {
				continue
			}
			rows = append(rows, fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %s | **%.2f×** | %s | %s | %s |", p.Model, q.Model, describe(p), describe(q),
				num(p.TokensPerSec.Median), num(q.TokensPerSec.Median), ratioCell(p, q), p.TokensPerSec.Median/q.TokensPerSec.Median,
				pairedCell(p, q), peakCell(p), peakCell(q)))
		}
	}
	if len(rows) == 0 {
		return
	}
	b.WriteString("\n## Against peers\n\n")
	b.WriteString("Each model's tokens/s over its peer's (the same model in another framework) at the same point, medians of this run (> 1: arbench faster). ")
	b.WriteString("Paired: the two points' repeats alternated (model, peer, model, …), and each round's ratio of the two; median (first–third quartile) of those, — where the points were measured apart. ")
	b.WriteString("Peak RSS is the process that computes: arbench's for its own model (which, when paired, also holds the peer's protocol client), the plugin's for a peer run through the plugin protocol.\n\n")
	b.WriteString("| model | peer | point | peer point | tokens/s | peer tokens/s | IQRs | ratio | paired | peak RSS MiB | peer peak RSS MiB |\n|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, row := range rows {
		b.WriteString(row + "\n")
	}
}

// pairedCell is the median and quartiles of the round-by-round ratios of
// p's repeats to q's when the two were interleaved ("1.02× (0.97–1.06)"),
// else "—".
func pairedCell(p, q Point) string {
	rs := pairedRatios(p, q)
	if len(rs) == 0 {
		return "—"
	}
	s := Summarize(rs)
	return fmt.Sprintf("%.2f× (%.2f–%.2f)", s.Median, s.Q1, s.Q3)
}

// peerKey is keyOf without a generation point's mode.
func peerKey(p Point) pointKey {
	k := keyOf(p)
	if p.Kind == KindGenerate {
		k.mode = ""
	}
	return k
}

// peakCell is the peak RSS in MiB of the process that computes p's model.
func peakCell(p Point) string {
	if p.Memory.PluginPeakRSS > 0 {
		return fmt.Sprintf("%.0f", float64(p.Memory.PluginPeakRSS)/mib)
	}
	return fmt.Sprintf("%.0f", float64(p.Memory.PeakRSS)/mib)
}
