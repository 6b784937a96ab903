package binimage

import (
	"strings"
	"testing"

	"arbench/harness"
)

func TestGrid(t *testing.T) {
	imgs := [][]uint8{
		{1, 0, 0, 0, 0, 0},
		{0, 0, 0, 0, 0, 1},
		{1, 1, 1, 1, 1, 1},
	}
	g := Grid(imgs, 2, 3, 2)
	b := g.Bounds()
	// 2 columns of 3+1, plus 1; 2 rows of 2+1, plus 1.
	if b.Dx() != 9 || b.Dy() != 7 {
		t.Fatalf("grid is %d×%d, want 9×7", b.Dx(), b.Dy())
	}
	gray := func(x, y int) uint8 {
		r, _, _, _ := g.At(x, y).RGBA()
		return uint8(r >> 8)
	}
	checks := []struct {
		x, y int
		want uint8
	}{
		{0, 0, 128}, // frame
		{1, 1, 255}, // image 0, pixel (0, 0)
		{2, 1, 0},   // image 0, pixel (0, 1)
		{4, 1, 128}, // line between columns
		{7, 2, 255}, // image 1, pixel (1, 2): x = 4+1+2, y = 1+1
		{5, 2, 0},   // image 1, pixel (1, 0)
		{1, 4, 255}, // image 2, pixel (0, 0): second row of cells
		{3, 5, 255}, // image 2, pixel (1, 2)
		{6, 5, 128}, // empty fourth cell
		{8, 6, 128}, // frame
		{1, 3, 128}, // line between rows
		{3, 4, 255}, // image 2 row 0
		{5, 1, 0},   // image 1, pixel (0, 0)
		{7, 1, 0},   // image 1, pixel (0, 2)
		{2, 2, 0},   // image 0, pixel (1, 1)
		{1, 2, 0},   // image 0, pixel (1, 0)
	}
	for _, c := range checks {
		if got := gray(c.x, c.y); got != c.want {
			t.Errorf("pixel (%d, %d) = %d, want %d", c.x, c.y, got, c.want)
		}
	}
	s := GridScaled(imgs[:1], 2, 3, 4, 3)
	if s.Bounds().Dx() != 4*(3*3+1)+1 || s.Bounds().Dy() != 3*2+1+1 {
		t.Errorf("scaled grid %v", s.Bounds())
	}
	for y := 1; y <= 3; y++ {
		for x := 1; x <= 3; x++ {
			if s.GrayAt(x, y).Y != 255 || s.GrayAt(x+3, y).Y != 0 {
				t.Fatalf("scaled pixel (%d, %d)", x, y)
			}
		}
	}
	if e := Grid(nil, 2, 2, 3).Bounds(); e.Dx() != 10 || e.Dy() != 4 {
		t.Errorf("empty grid %v", e)
	}
	defer func() {
		if recover() == nil {
			t.Error("Grid accepted an image of the wrong size")
		}
	}()
	Grid([][]uint8{{1}}, 2, 2, 1)
}

// TestSampleImagesRefuses: a pixel other than '0' or '1', a pixels string
// of another length than height·width, and images of two sizes are
// errors; samples of other kinds are skipped.
func TestSampleImagesRefuses(t *testing.T) {
	img := func(h, w float64, px string) harness.Sample {
		return harness.Sample{SampleKindKey: SampleKind, "height": h, "width": w, PixelsKey: px}
	}
	for _, c := range []struct {
		name    string
		samples []harness.Sample
		want    string
	}{
		{"pixel 2", []harness.Sample{img(2, 2, "0120")}, "character '2' at pixel 2 is not 0 or 1"},
		{"length", []harness.Sample{img(2, 2, "010")}, "not a 4-pixel sample image"},
		{"sizes", []harness.Sample{img(2, 2, "0101"), img(1, 2, "01")}, "1×2 image after 2×2 ones"},
	} {
		if _, _, _, err := SampleImages(c.samples, SampleKind, PixelsKey); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.want)
		}
	}
	other := harness.Sample{SampleKindKey: CompletionKind, "height": 1.0, "width": 1.0, PixelsKey: "x"}
	imgs, H, W, err := SampleImages([]harness.Sample{other, img(1, 2, "10")}, SampleKind, PixelsKey)
	if err != nil || len(imgs) != 1 || H != 1 || W != 2 || imgs[0][0] != 1 || imgs[0][1] != 0 {
		t.Errorf("%v %d×%d %v", imgs, H, W, err)
	}
	if got := Pixels([]uint8{0, 1, 2, 0}); got != "0110" {
		t.Errorf("Pixels = %q", got)
	}
}

// TestPromptRows: the rows every completion was given, as written (int)
// or read back from JSON (float64); none is -1; disagreeing, fractional
// or out-of-range rows are errors.
func TestPromptRows(t *testing.T) {
	c := func(rows any) harness.Sample {
		return harness.Sample{SampleKindKey: CompletionKind, PromptRowsKey: rows}
	}
	other := harness.Sample{SampleKindKey: SampleKind}
	if r, err := PromptRows([]harness.Sample{other, c(3), c(3.0)}, 8); r != 3 || err != nil {
		t.Errorf("PromptRows = %d, %v; want 3", r, err)
	}
	if r, err := PromptRows([]harness.Sample{other}, 8); r != -1 || err != nil {
		t.Errorf("no completions: %d, %v; want -1", r, err)
	}
	for _, bad := range [][]harness.Sample{{c(3), c(4)}, {c(2.5)}, {c(9)}, {c(-1)}, {c("3")}, {{SampleKindKey: CompletionKind}}} {
		if _, err := PromptRows(bad, 8); err == nil || !strings.Contains(err.Error(), PromptRowsKey) {
			t.Errorf("%v: %v", bad, err)
		}
	}
}
