package reports

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	stdimage "image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"arbench/harness"
	"arbench/tasks/image/binimage"
)

// testImage is a deterministic 8×8 binary image, different for each i.
func testImage(i int) []uint8 {
	img := make([]uint8, 64)
	for k := range img {
		if (k*7+i*3)%5 == 0 || k/8 == i%8 {
			img[k] = 1
		}
	}
	return img
}

// imageSamples is what tasks/image writes for one run: n samples (image
// 100·seed+i) and n completions of images 50+i given their top 4 rows,
// decoded from JSON as samples.jsonl is.
func imageSamples(t *testing.T, task, model string, seed uint64, n int) []harness.SampleRecord {
	t.Helper()
	var out []harness.SampleRecord
	add := func(s harness.Sample) {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var back harness.Sample
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		out = append(out, harness.SampleRecord{Run: harness.RunKey{Task: task, Model: model, Seed: seed}, Sample: back})
	}
	for i := range n {
		add(harness.Sample{binimage.SampleKindKey: binimage.SampleKind, "index": i, "height": 8, "width": 8,
			binimage.PixelsKey: binimage.Pixels(testImage(100*int(seed) + i))})
	}
	for i := range n {
		truth, done := testImage(50+i), testImage(50+i)
		copy(done[32:], testImage(70 + i)[32:])
		add(harness.Sample{binimage.SampleKindKey: binimage.CompletionKind, "index": i, "test_index": i, "height": 8, "width": 8,
			"prompt_rows": 4, binimage.PixelsKey: binimage.Pixels(done), binimage.TruthKey: binimage.Pixels(truth)})
	}
	return out
}

func imageResults(runs ...harness.RunKey) *harness.ResultsFile {
	rf := &harness.ResultsFile{Manifest: harness.Manifest{Name: "images"}}
	for _, k := range runs {
		rf.Runs = append(rf.Runs, harness.RunRecord{Model: k.Model, Task: k.Task, Seed: k.Seed})
	}
	return rf
}

// TestImageFigures: one sample grid and one completion grid per model of
// an image task, from the model's lowest seed; samples of runs the results
// do not list, and tasks without images, give none.
func TestImageFigures(t *testing.T) {
	const task = "image/shapes"
	rf := imageResults(
		harness.RunKey{Task: task, Model: "pixelcnn", Seed: 2}, harness.RunKey{Task: task, Model: "pixelcnn", Seed: 1},
		harness.RunKey{Task: task, Model: "lstm", Seed: 3}, harness.RunKey{Task: "text/jargon", Model: "lstm", Seed: 1})
	var samples []harness.SampleRecord
	samples = append(samples, imageSamples(t, task, "pixelcnn", 2, 3)...)
	samples = append(samples, imageSamples(t, task, "pixelcnn", 1, 3)...)
	samples = append(samples, imageSamples(t, task, "lstm", 3, 2)...)
	samples = append(samples, imageSamples(t, task, "lstm", 0, 2)...) // not a listed run
	samples = append(samples, harness.SampleRecord{Run: harness.RunKey{Task: "text/jargon", Model: "lstm", Seed: 1}, Sample: harness.Sample{"text": "x"}})
	figs := ImageFigures(rf, samples)
	var names []string
	for _, f := range figs {
		names = append(names, f.Name)
		if f.Err != nil || f.Kind != FigureGrid || f.Task != task || f.Raster == nil {
			t.Errorf("%s: kind %s, task %s, raster %v, err %v", f.Name, f.Kind, f.Task, f.Raster != nil, f.Err)
		}
	}
	want := "samples_image_shapes_pixelcnn completions_image_shapes_pixelcnn samples_image_shapes_lstm completions_image_shapes_lstm"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("figures %s\nwant    %s", got, want)
	}
	if !strings.Contains(figs[0].Caption, "seed 1") || !strings.Contains(figs[2].Caption, "seed 3") {
		t.Errorf("captions do not name the lowest listed seed: %q, %q", figs[0].Caption, figs[2].Caption)
	}
	// Cell n of a grid holds image n: seed 1's samples, 7 output pixels per
	// image pixel (scale 56/8).
	g := figs[0].Raster
	scale := gridScale(8)
	for n := range 3 {
		img := testImage(100 + n)
		for k, v := range img {
			x, y := n*(8*scale+1)+1+(k%8)*scale, 1+(k/8)*scale
			if got := g.At(x+scale/2, y+scale/2); (v == 1) != (got == binimage.GridInk) {
				t.Fatalf("sample %d pixel %d: drawn %v, image has %d", n, k, got, v)
			}
		}
	}
}

// TestCompletionGridShading: a completion grid alternates the test image
// and the completion; only the completion's sampled rows have the
// GridSampled background.
func TestCompletionGridShading(t *testing.T) {
	samples := imageSamples(t, "image/shapes", "m", 1, 2)
	var ss []harness.Sample
	for _, r := range samples {
		ss = append(ss, r.Sample)
	}
	img, caption, err := completionGrid(ss, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(caption, "top 4 of 8 rows") {
		t.Errorf("caption %q", caption)
	}
	scale := gridScale(8)
	g, ok := img.(*stdimage.Gray)
	if !ok {
		t.Fatalf("grid is a %T", img)
	}
	for cell := range 4 {
		src := testImage(50 + cell/2)
		if cell%2 == 1 {
			copy(src, testImage(50+cell/2))
			copy(src[32:], testImage(70 + cell/2)[32:])
		}
		for k, v := range src {
			row, col := k/8, k%8
			x, y := cell*(8*scale+1)+1+col*scale, 1+row*scale
			got := g.GrayAt(x, y).Y
			want := binimage.GridInk.Y
			if v == 0 {
				want = GridPrompt.Y
				if cell%2 == 1 && row >= 4 {
					want = GridSampled
				}
			}
			if got != want {
				t.Fatalf("cell %d pixel (%d, %d): grey %d, want %d", cell, row, col, got, want)
			}
		}
	}
}

// TestImageFiguresBadSamples: samples that are no images of one size give
// their figure an error naming the run; the other kind's grid is drawn.
func TestImageFiguresBadSamples(t *testing.T) {
	const task = "image/shapes"
	rf := imageResults(harness.RunKey{Task: task, Model: "m", Seed: 4})
	samples := imageSamples(t, task, "m", 4, 2)
	samples[1].Sample[binimage.PixelsKey] = "0101"
	figs := ImageFigures(rf, samples)
	if len(figs) != 2 {
		t.Fatalf("%d figures, want 2", len(figs))
	}
	if err := figs[0].Err; err == nil || !strings.Contains(err.Error(), "samples of m on image/shapes (seed 4)") {
		t.Errorf("sample grid error %v", err)
	}
	if figs[1].Err != nil {
		t.Errorf("completion grid: %v", figs[1].Err)
	}
	samples = imageSamples(t, task, "m", 4, 2)
	samples[3].Sample["prompt_rows"] = 3.0
	if err := ImageFigures(rf, samples)[1].Err; err == nil || !strings.Contains(err.Error(), "prompt_rows 3") {
		t.Errorf("completions with different prompt rows: %v", err)
	}
}

// TestImageGridGoldens compares the rendered grids with golden PNGs; the
// SVG shows the same PNG.
func TestImageGridGoldens(t *testing.T) {
	const task = "image/shapes"
	rf := imageResults(harness.RunKey{Task: task, Model: "m", Seed: 1})
	for _, f := range ImageFigures(rf, imageSamples(t, task, "m", 1, 11)) {
		f.Render()
		if f.Err != nil {
			t.Fatal(f.Err)
		}
		goldenPNG(t, "plots/"+f.Name+".png", f.PNG)
		if !bytes.Contains(f.SVG, []byte(base64PNG(f.PNG))) {
			t.Errorf("%s: the SVG does not embed the PNG", f.Name)
		}
		if _, err := png.Decode(bytes.NewReader(f.PNG)); err != nil {
			t.Error(err)
		}
	}
}

func base64PNG(b []byte) string {
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(b)
}

// TestWriteReportImageGrids: WriteReport draws the grids from the
// directory's samples.jsonl into plots/, report.md and report.html; an
// unreadable samples.jsonl is reported while everything else is written.
func TestWriteReportImageGrids(t *testing.T) {
	const task = "image/shapes"
	dir := t.TempDir()
	rf := imageResults(harness.RunKey{Task: task, Model: "pixelcnn", Seed: 1})
	var lines bytes.Buffer
	for _, r := range imageSamples(t, task, "pixelcnn", 1, 4) {
		m := map[string]any{"model": r.Run.Model, "task": r.Run.Task, "seed": r.Run.Seed}
		for k, v := range r.Sample {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		lines.Write(append(b, '\n'))
	}
	samplesPath := filepath.Join(dir, harness.SamplesFileName)
	if err := os.WriteFile(samplesPath, lines.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteReport(dir, rf); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"samples_image_shapes_pixelcnn", "completions_image_shapes_pixelcnn"} {
		for _, ext := range []string{".png", ".svg"} {
			if _, err := os.Stat(filepath.Join(dir, PlotsDir, name+ext)); err != nil {
				t.Error(err)
			}
		}
	}
	md, _ := os.ReadFile(filepath.Join(dir, harness.ReportFileName))
	if !strings.Contains(string(md), "![Samples of pixelcnn on image/shapes](plots/samples_image_shapes_pixelcnn.png)") {
		t.Errorf("report.md does not show the sample grid:\n%s", md)
	}
	page, _ := os.ReadFile(filepath.Join(dir, HTMLFileName))
	if n := strings.Count(string(page), `class="pixelated"`); n != 2 {
		t.Errorf("report.html shows %d pixelated grids, want 2", n)
	}
	if err := os.WriteFile(samplesPath, []byte("{not json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, harness.ReportFileName))
	_, err := WriteReport(dir, rf)
	if err == nil || !strings.Contains(err.Error(), "sample grids") || !strings.Contains(err.Error(), "samples.jsonl:1") {
		t.Errorf("unreadable samples: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, harness.ReportFileName)); err != nil {
		t.Errorf("report.md not written: %v", err)
	}
}
