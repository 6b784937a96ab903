package bench

import (
	"fmt"
	"slices"
	"strings"
)

// writeImages writes the image sweep's table of measured points and the
// comparison of sequential sampling with the parallel passes per model
// and image size.
func writeImages(b *strings.Builder, r *Report, img []Point) {
	b.WriteString("\n## Images\n\n")
	fmt.Fprintf(b, "Binary S×S images in tasks/image's framing (vocabulary 3, a row of N = S·S pixels), %d timed repeats per point after %d untimed. ",
		r.Config.Image.Repeats, r.Config.Warmup)
	b.WriteString("*image_sample*: the batch's images drawn pixel by pixel from the start token through harness.Decoder at temperature 1, as the image task samples them ")
	b.WriteString("(N sequential steps; path cached: the model's Stepper carries its state, refeed: the prefix is re-read for every pixel). ")
	b.WriteString("*image_train*: one training step, Gradients (forward and backward, no optimiser update), and *image_score*: one LogProbs pass, ")
	b.WriteString("each over a batch of random images framed as the task frames them, all N pixels in parallel. ")
	b.WriteString("ms/image is a repeat's time over the batch's images (median and IQR over the repeats); pixels/s counts all rows; ")
	b.WriteString("MFLOP/pixel counts the matrix products executed per pixel (for sampling, every pass the decoder ran, re-read prefixes included).\n\n")
	b.WriteString("| model | kind | path | side | pixels | batch | ms/image | IQR | pixels/s | MFLOP/pixel | GFLOP/s | % ceiling | peak RSS MiB |\n")
	b.WriteString("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, p := range img {
		path := p.Mode
		if path == "" {
			path = "—"
		}
		flops, gf, ceil := flopsCells(p, 3)
		fmt.Fprintf(b, "| %s | %s | %s | %d | %d | %d | %s | %s | %s | %s | %s | %s | %s |\n",
			p.Model, p.Kind, path, p.Side, p.SeqLen, p.Batch, ms(p.MsPerImage.Median), ms(p.MsPerImage.IQR),
			num(p.TokensPerSec.Median), flops, gf, ceil, rssCell(p))
	}
	writeImageComparison(b, img)
}

// imageRow is one (model, side) of the comparison: ms per image sampled
// at each batch, and of the training and scoring passes (0 when not
// measured).
type imageRow struct {
	model            string
	side             int
	sample           map[int]float64
	train, score     float64
	trainOK, scoreOK bool
}

// imageRows groups the measured image points by model and side, in the
// order of the points.
func imageRows(img []Point) (rows []*imageRow, batches []int) {
	index := map[[2]any]*imageRow{}
	for _, p := range img {
		k := [2]any{p.Model, p.Side}
		row := index[k]
		if row == nil {
			row = &imageRow{model: p.Model, side: p.Side, sample: map[int]float64{}}
			index[k] = row
			rows = append(rows, row)
		}
		v := p.MsPerImage.Median
		switch p.Kind {
		case KindImageSample:
			row.sample[p.Batch] = v
			if !slices.Contains(batches, p.Batch) {
				batches = append(batches, p.Batch)
			}
		case KindImageTrain:
			row.train, row.trainOK = v, true
		case KindImageScore:
			row.score, row.scoreOK = v, true
		}
	}
	slices.Sort(batches)
	return rows, batches
}

// writeImageComparison writes, per model and image size, the ms per image
// of sampling at each batch next to those of the parallel passes, and
// sampling at the largest batch over each pass: how many parallel passes
// one sequentially generated image costs (the image task's
// generation_over_train_step and generation_over_score).
func writeImageComparison(b *strings.Builder, img []Point) {
	rows, batches := imageRows(img)
	if len(batches) == 0 {
		return
	}
	top := batches[len(batches)-1]
	b.WriteString("\n### Sequential generation vs one parallel pass\n\n")
	fmt.Fprintf(b, "ms per image; the last two columns are sampling at batch %d over the training step and over the scoring pass.\n\n", top)
	b.WriteString("| model | side | pixels |")
	for _, bt := range batches {
		fmt.Fprintf(b, " sample b=%d |", bt)
	}
	fmt.Fprintf(b, " train step | score | sample b=%d / train step | sample b=%d / score |\n|---|--:|--:|", top, top)
	b.WriteString(strings.Repeat("--:|", len(batches)+4) + "\n")
	for _, row := range rows {
		fmt.Fprintf(b, "| %s | %d | %d |", row.model, row.side, row.side*row.side)
		for _, bt := range batches {
			v, ok := row.sample[bt]
			fmt.Fprintf(b, " %s |", optMs(v, ok))
		}
		s, sok := row.sample[top]
		fmt.Fprintf(b, " %s | %s | %s | %s |\n", optMs(row.train, row.trainOK), optMs(row.score, row.scoreOK),
			ratio(s, row.train, sok && row.trainOK), ratio(s, row.score, sok && row.scoreOK))
	}
}

// ms formats milliseconds with three significant digits (at least three
// decimals below 1 ms).
func ms(v float64) string {
	if v < 1 {
		return fmt.Sprintf("%.3f", v)
	}
	return num(v)
}

// optMs is ms(v), or "—" when v was not measured.
func optMs(v float64, ok bool) string {
	if !ok {
		return "—"
	}
	return ms(v)
}

// ratio formats a/b as a multiple, or "—" when either was not measured.
func ratio(a, b float64, ok bool) string {
	if !ok || !(b > 0) {
		return "—"
	}
	return num(a/b) + "×"
}
