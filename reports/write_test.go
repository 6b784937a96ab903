package reports

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"arbench/harness"
)

func TestWriteReport(t *testing.T) {
	dir := t.TempDir()
	plots := filepath.Join(dir, PlotsDir)
	if err := os.MkdirAll(plots, 0o755); err != nil {
		t.Fatal(err)
	}
	// Left by an earlier report: removed. Other files are kept.
	os.WriteFile(filepath.Join(plots, "loss_old_task.png"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(plots, "notes.txt"), []byte("x"), 0o644)

	w, err := WriteReport(dir, load(t))
	if err != nil {
		t.Fatal(err)
	}
	var rel []string
	for _, f := range w.Files {
		r, _ := filepath.Rel(dir, f)
		rel = append(rel, r)
	}
	want := []string{
		"plots/loss_text_jargon.png", "plots/loss_text_jargon.svg",
		"plots/metric_text_jargon_bits_per_byte.png", "plots/metric_text_jargon_bits_per_byte.svg",
		"plots/series_text_jargon_token_error_vs_position.png", "plots/series_text_jargon_token_error_vs_position.svg",
		"plots/series_text_jargon_loss_vs_context.png", "plots/series_text_jargon_loss_vs_context.svg",
		"plots/metric_fake_count_bits_per_token.png", "plots/metric_fake_count_bits_per_token.svg",
		"plots/metric_synthetic_copy_accuracy.png", "plots/metric_synthetic_copy_accuracy.svg",
		"plots/series_synthetic_copy_accuracy_vs_distance.png", "plots/series_synthetic_copy_accuracy_vs_distance.svg",
		"report.md", "report.html", "results.csv", "summary.csv", "curves.csv", "series.csv", "claims.json",
	}
	if strings.Join(rel, " ") != strings.Join(want, " ") {
		t.Errorf("wrote %v\nwant  %v", rel, want)
	}
	if _, err := os.Stat(filepath.Join(plots, "loss_old_task.png")); !os.IsNotExist(err) {
		t.Error("a stale figure was kept")
	}
	if _, err := os.Stat(filepath.Join(plots, "notes.txt")); err != nil {
		t.Error("a file that is not a figure was removed")
	}
	for _, name := range []string{harness.ReportFileName, ResultsCSV, SummaryCSV, CurvesCSV, SeriesCSV} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		golden(t, "report/"+name+".golden", b)
	}
	// The images on disk are the rendered ones.
	for _, f := range w.Figures {
		b, _ := os.ReadFile(filepath.Join(plots, f.Name+".svg"))
		if !bytes.Equal(b, f.SVG) {
			t.Errorf("%s.svg on disk differs from the rendered figure", f.Name)
		}
	}
	html, err := os.ReadFile(filepath.Join(dir, HTMLFileName))
	if err != nil {
		t.Fatal(err)
	}
	checkHTML(t, string(html), len(w.Figures))
}

// checkHTML checks the structure of a report page: title, manifest, every
// table and every figure embedded, and no reference to another file that
// the page would need.
func checkHTML(t *testing.T, page string, figures int) {
	t.Helper()
	for _, s := range []string{
		"<title>arbench report: golden</title>",
		`<table class="manifest">`,
		"0123456789abcdef0123456789abcdef01234567 (dirty)",
		"Resolved configuration (manifest.config)",
		`<section id="task-text_jargon">`, `<section id="task-fake_count">`,
		"2.1881 ± 0.2737", "1.8034",
		`<section id="loss-curves">`, `<section id="datasets">`, `<section id="runs">`,
		"transformer seed 1: train loss is NaN at step 1 (diverged); the curve stops there.",
		// Tables scroll inside their box instead of widening the page.
		".table-wrap { overflow-x: auto;", `<div class="table-wrap"><table>`,
		// The best value of a column in bold, reference rows marked.
		"<td class=\"num\"><strong>1.8034</strong></td>", `<tr class="ref"><td>ref: unigram (train split)</td>`,
		"<h3>Speed</h3>", "bits/byte ↓<br>(test)",
	} {
		if !strings.Contains(page, s) {
			t.Errorf("report.html lacks %q", s)
		}
	}
	if n, m := strings.Count(page, "<table"), strings.Count(page, `<div class="table-wrap"><table`); n != m {
		t.Errorf("%d of %d tables are not in a scrolling box", n-m, n)
	}
	if n := strings.Count(page, `<img src="data:image/png;base64,`); n != figures {
		t.Errorf("report.html embeds %d images, want %d", n, figures)
	}
	for _, s := range []string{`src="http`, `href="http`, `<link `, `<script`, `src="plots/`} {
		if strings.Contains(page, s) {
			t.Errorf("report.html is not self-contained: it has %q", s)
		}
	}
}
