package reports

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"arbench/harness"
	"arbench/reports/claims"
)

// Files WriteReport writes inside a results directory, besides the CSVs.
const (
	// PlotsDir holds every figure as NAME.png and NAME.svg.
	PlotsDir     = "plots"
	HTMLFileName = "report.html"
)

// Written lists what WriteReport wrote.
type Written struct {
	// Files are the paths written, in order.
	Files []string
	// Figures are the report's figures, rendered (or with Err set).
	Figures []Figure
}

// WriteReport renders everything a results directory's report consists of
// from rf alone (nothing is rerun): report.md, report.html (self-contained),
// results.csv, summary.csv, curves.csv, series.csv, claims.json when the
// experiment tests claims (the Claims table, package reports/claims) and
// every figure as
// plots/NAME.png and plots/NAME.svg: the charts of Figures and the image
// grids of ImageFigures, read from the directory's samples.jsonl. PNG and SVG files left in plots/ by an
// earlier report that this one does not produce are removed.
//
// A figure that cannot be drawn (no points, NaN or ±Inf values) does not
// stop the report: it is listed as not drawn in report.md and report.html,
// everything else is written, and the returned error names every such
// figure (and a samples.jsonl that cannot be read: no grids then).
func WriteReport(dir string, rf *harness.ResultsFile) (*Written, error) {
	out := &Written{Figures: Figures(rf)}
	samples, samplesErr := harness.LoadSamples(dir)
	out.Figures = append(out.Figures, ImageFigures(rf, samples)...)
	for i := range out.Figures {
		out.Figures[i].Render()
	}
	plots := filepath.Join(dir, PlotsDir)
	if err := os.MkdirAll(plots, 0o755); err != nil {
		return out, fmt.Errorf("report: %w", err)
	}
	keep := map[string]bool{}
	write := func(path string, f func(w io.Writer) error) error {
		if err := harness.WriteFileAtomic(path, f); err != nil {
			return fmt.Errorf("report: %w", err)
		}
		out.Files = append(out.Files, path)
		return nil
	}
	var figErrs []error
	if samplesErr != nil {
		figErrs = append(figErrs, fmt.Errorf("sample grids: %w", samplesErr))
	}
	for _, f := range out.Figures {
		if f.Err != nil {
			figErrs = append(figErrs, f.Err)
			continue
		}
		for _, img := range []struct {
			ext  string
			data []byte
		}{{FormatPNG, f.PNG}, {FormatSVG, f.SVG}} {
			name := f.Name + "." + img.ext
			keep[name] = true
			if err := write(filepath.Join(plots, name), func(w io.Writer) error { _, err := w.Write(img.data); return err }); err != nil {
				return out, err
			}
		}
	}
	if err := removeStale(plots, keep); err != nil {
		return out, err
	}
	steps := []struct {
		name string
		f    func(w io.Writer) error
	}{
		{harness.ReportFileName, func(w io.Writer) error { return markdown(w, rf, out.Figures, PlotsDir) }},
		{HTMLFileName, func(w io.Writer) error { return HTML(w, rf, out.Figures, PlotsDir) }},
		{ResultsCSV, func(w io.Writer) error { return ResultsCSVTo(w, rf) }},
		{SummaryCSV, func(w io.Writer) error { return SummaryCSVTo(w, rf) }},
		{CurvesCSV, func(w io.Writer) error { return CurvesCSVTo(w, rf) }},
		{SeriesCSV, func(w io.Writer) error { return SeriesCSVTo(w, rf) }},
	}
	if specs, err := claims.Specs(rf); err == nil && len(specs) > 0 {
		steps = append(steps, struct {
			name string
			f    func(w io.Writer) error
		}{ClaimsFileName, func(w io.Writer) error { return writeClaimsJSON(w, rf) }})
	}
	for _, s := range steps {
		if err := write(filepath.Join(dir, s.name), s.f); err != nil {
			return out, err
		}
	}
	if len(figErrs) > 0 {
		return out, fmt.Errorf("report: %d figure(s) not drawn (everything else was written): %w", len(figErrs), errors.Join(figErrs...))
	}
	return out, nil
}

// removeStale deletes the .png and .svg files of dir not in keep.
func removeStale(dir string, keep map[string]bool) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	for _, e := range entries {
		n := e.Name()
		if e.Type().IsRegular() && !keep[n] && (strings.HasSuffix(n, ".png") || strings.HasSuffix(n, ".svg")) {
			if err := os.Remove(filepath.Join(dir, n)); err != nil {
				return fmt.Errorf("report: remove stale figure: %w", err)
			}
		}
	}
	return nil
}
