package reports

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	stdimage "image"
	"image/png"
	"slices"

	"arbench/harness"
	"arbench/tasks/image/binimage"
)

// FigureGrid is a raster figure: a grid of binary images a task wrote to
// its samples (tasks/image: unconditional samples and completions).
const FigureGrid = "grid"

// Grid layout: columns of cells, cells drawn about gridCell pixels wide,
// and at most gridSamples samples and gridCompletions completions (each a
// pair of cells) per figure.
const (
	gridCols        = 8
	gridCell        = 56
	gridSamples     = 64
	gridCompletions = 16
)

// GridPrompt and GridSampled are the background greys of a completion
// cell: black where the rows were given (the prompt), dark grey where the
// model sampled them.
var (
	GridPrompt  = binimage.GridBackground
	GridSampled = uint8(72)
)

// ImageFigures builds the sample grids of every image task of rf from the
// run's saved samples (samples.jsonl, harness.LoadSamples): per task and
// model, for the model's lowest seed, a grid of its unconditional samples
// and one of its completions (the test image, then the model's completion
// of its bottom half given the top rows, side by side). Samples of runs
// that rf does not list are ignored. A model's samples that do not decode
// as images give a figure with Err set. Figures are not rendered (see
// Figure.Render).
func ImageFigures(rf *harness.ResultsFile, samples []harness.SampleRecord) []Figure {
	runs := map[harness.RunKey]bool{}
	for _, r := range rf.Runs {
		runs[harness.RunKey{Task: r.Task, Model: r.Model, Seed: r.Seed}] = true
	}
	// The lowest seed's samples per (task, model).
	type tm struct{ task, model string }
	seed := map[tm]uint64{}
	for _, s := range samples {
		k := tm{s.Run.Task, s.Run.Model}
		if cur, ok := seed[k]; runs[s.Run] && imageSample(s.Sample) && (!ok || s.Run.Seed < cur) {
			seed[k] = s.Run.Seed
		}
	}
	var figs []Figure
	for _, task := range taskOrder(rf) {
		for _, model := range modelOrder(rf, task) {
			sd, ok := seed[tm{task, model}]
			if !ok {
				continue
			}
			var mine []harness.Sample
			for _, s := range samples {
				if s.Run == (harness.RunKey{Task: task, Model: model, Seed: sd}) {
					mine = append(mine, s.Sample)
				}
			}
			figs = append(figs, modelGrids(task, model, sd, mine)...)
		}
	}
	return figs
}

// imageSample reports whether s is an image written by tasks/image.
func imageSample(s harness.Sample) bool {
	k := binimage.Kind(s)
	return k == binimage.SampleKind || k == binimage.CompletionKind
}

// modelGrids returns the sample and completion grids of one run's samples
// (a grid only when the run has images of its kind).
func modelGrids(task, model string, seed uint64, samples []harness.Sample) []Figure {
	var figs []Figure
	base := Figure{Task: task, Kind: FigureGrid}
	for _, kind := range []string{binimage.SampleKind, binimage.CompletionKind} {
		if !slices.ContainsFunc(samples, func(s harness.Sample) bool { return binimage.Kind(s) == kind }) {
			continue
		}
		f := base
		f.Name = slug(kind + "s_" + task + "_" + model)
		var err error
		if kind == binimage.SampleKind {
			f.Title = fmt.Sprintf("Samples of %s on %s", model, task)
			f.Raster, f.Caption, err = sampleGrid(samples, seed)
		} else {
			f.Title = fmt.Sprintf("Completions by %s on %s", model, task)
			f.Raster, f.Caption, err = completionGrid(samples, seed)
		}
		if err != nil {
			f.Err = fmt.Errorf("%s of %s on %s (seed %d): %w", kind+"s", model, task, seed, err)
		}
		figs = append(figs, f)
	}
	return figs
}

// gridScale is the scale at which an image W pixels wide is drawn about
// gridCell pixels wide.
func gridScale(W int) int { return max(1, gridCell/W) }

// sampleGrid draws the first gridSamples unconditional samples.
func sampleGrid(samples []harness.Sample, seed uint64) (stdimage.Image, string, error) {
	imgs, H, W, err := binimage.SampleImages(samples, binimage.SampleKind, binimage.PixelsKey)
	if err != nil {
		return nil, "", err
	}
	imgs = imgs[:min(len(imgs), gridSamples)]
	caption := fmt.Sprintf("The first %d unconditional samples (seed %d) of %d×%d binary pixels, drawn pixel by pixel in raster order at temperature 1; ink white, background black.",
		len(imgs), seed, H, W)
	return binimage.GridScaled(imgs, H, W, gridCols, gridScale(W)), caption, nil
}

// completionGrid draws the first gridCompletions completions as pairs of
// cells, the test image then the completion, with the sampled rows of the
// completion on a dark grey background.
func completionGrid(samples []harness.Sample, seed uint64) (stdimage.Image, string, error) {
	truth, H, W, err := binimage.SampleImages(samples, binimage.CompletionKind, binimage.TruthKey)
	if err != nil {
		return nil, "", err
	}
	done, _, _, err := binimage.SampleImages(samples, binimage.CompletionKind, binimage.PixelsKey)
	if err != nil {
		return nil, "", err
	}
	prompt, err := binimage.PromptRows(samples, H)
	if err != nil {
		return nil, "", err
	}
	n := min(len(done), gridCompletions)
	cells := make([][]uint8, 0, 2*n)
	for i := range n {
		cells = append(cells, truth[i], done[i])
	}
	scale := gridScale(W)
	g := binimage.GridScaled(cells, H, W, gridCols, scale)
	for i := 1; i < len(cells); i += 2 {
		shadeRows(g, i, H, W, scale, prompt)
	}
	caption := fmt.Sprintf("The first %d completions (seed %d), in pairs: a test image, then the model's completion of it: its top %d of %d rows given, the rest sampled pixel by pixel (dark grey background).",
		n, seed, prompt, H)
	return g, caption, nil
}

// shadeRows paints the background pixels of rows from..H−1 of grid cell
// n (laid out as binimage.GridScaled lays it) GridSampled.
func shadeRows(g *stdimage.Gray, n, H, W, scale, from int) {
	cw, ch := scale*W+1, scale*H+1
	x0, y0 := (n%gridCols)*cw+1, (n/gridCols)*ch+1
	for y := y0 + from*scale; y < y0+H*scale; y++ {
		row := g.Pix[y*g.Stride+x0 : y*g.Stride+x0+W*scale]
		for x, v := range row {
			if v == GridPrompt.Y {
				row[x] = GridSampled
			}
		}
	}
}

// renderRaster sets f.PNG to the raster and f.SVG to an SVG showing the
// same PNG at its size (pixels kept sharp when scaled).
func (f *Figure) renderRaster() {
	var buf bytes.Buffer
	if err := png.Encode(&buf, f.Raster); err != nil {
		f.Err = fmt.Errorf("figure %s: %w", f.Name, err)
		return
	}
	b := f.Raster.Bounds()
	f.PNG = buf.Bytes()
	f.SVG = fmt.Appendf(nil, `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">
<title>%s</title>
<image width="%d" height="%d" style="image-rendering:pixelated" href="data:image/png;base64,%s"/>
</svg>
`, b.Dx(), b.Dy(), b.Dx(), b.Dy(), xmlEscape(f.Title), b.Dx(), b.Dy(), base64.StdEncoding.EncodeToString(f.PNG))
}

// xmlEscape escapes s for XML text.
func xmlEscape(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s)) // a bytes.Buffer does not fail
	return b.String()
}
