// Package binimage is the format in which tasks/image stores binary
// images in an evaluation's Samples (and so in samples.jsonl), and their
// rendering as a grid: what the task writes and the report reads, without
// the task itself (which registers with the harness).
package binimage

import (
	"fmt"
	stdimage "image"
	"image/color"
	"strings"

	"arbench/harness"
)

// Grid colours: ink (pixel 1) white, background (pixel 0) black, as MNIST
// is usually shown, and the lines between cells mid-grey.
var (
	GridInk        = color.Gray{Y: 255}
	GridBackground = color.Gray{Y: 0}
	GridLine       = color.Gray{Y: 128}
)

// Grid lays out binary images of H × W pixels (raster order; 0 is
// background, anything else ink) in rows of cols cells, left to right and
// top to bottom, one image pixel per output pixel (GridScaled with scale
// 1). Cells are separated and framed by 1-pixel grey lines, so the image
// is cols·(W+1)+1 pixels wide and rows·(H+1)+1 high, rows = ⌈n/cols⌉;
// cells after the last image are left grey. It panics on an image of
// another size or non-positive H, W or cols (programmer errors).
func Grid(images [][]uint8, H, W, cols int) stdimage.Image {
	return GridScaled(images, H, W, cols, 1)
}

// GridScaled is Grid with each image pixel drawn as scale × scale output
// pixels (the lines stay 1 pixel wide): cols·(scale·W+1)+1 wide and
// rows·(scale·H+1)+1 high.
func GridScaled(images [][]uint8, H, W, cols, scale int) *stdimage.Gray {
	if H <= 0 || W <= 0 || cols <= 0 || scale <= 0 {
		panic(fmt.Sprintf("binimage: Grid of %d×%d images in %d columns at scale %d", H, W, cols, scale))
	}
	rows := max(1, (len(images)+cols-1)/cols)
	cw, ch := scale*W+1, scale*H+1
	g := stdimage.NewGray(stdimage.Rect(0, 0, cols*cw+1, rows*ch+1))
	for i := range g.Pix {
		g.Pix[i] = GridLine.Y
	}
	for n, img := range images {
		if len(img) != H*W {
			panic(fmt.Sprintf("binimage: Grid: image %d has %d pixels, want %d×%d", n, len(img), H, W))
		}
		x0, y0 := (n%cols)*cw+1, (n/cols)*ch+1
		for k, v := range img {
			c := GridBackground.Y
			if v != 0 {
				c = GridInk.Y
			}
			px, py := x0+(k%W)*scale, y0+(k/W)*scale
			for dy := range scale {
				row := g.Pix[(py+dy)*g.Stride:]
				for dx := range scale {
					row[px+dx] = c
				}
			}
		}
	}
	return g
}

// SampleImages reads back the images an evaluation wrote to its Samples
// (or that samples.jsonl holds, decoded as JSON) of one kind (SampleKind
// or CompletionKind), from field PixelsKey (the sample or completion) or
// TruthKey (a completion's test image), in the order given, with their
// height and width. Samples of other kinds are skipped; a sample of the
// kind without the field, or of another size than the first, is an error.
// Callers keep only one run's samples (samples.jsonl lines carry model,
// task and seed).
func SampleImages(samples []harness.Sample, kind, field string) (images [][]uint8, H, W int, err error) {
	for i, s := range samples {
		if Kind(s) != kind {
			continue
		}
		h, okH := asInt(s["height"])
		w, okW := asInt(s["width"])
		px, okP := s[field].(string)
		if !okH || !okW || !okP || h <= 0 || w <= 0 || len(px) != h*w {
			return nil, 0, 0, fmt.Errorf("sample %d: not a %d-pixel %s image (height %v, width %v, %s of %d characters)",
				i, h*w, kind, s["height"], s["width"], field, len(px))
		}
		if images == nil {
			H, W = h, w
		} else if h != H || w != W {
			return nil, 0, 0, fmt.Errorf("sample %d: %d×%d image after %d×%d ones", i, h, w, H, W)
		}
		img := make([]uint8, len(px))
		for k := range px {
			switch px[k] {
			case '0':
			case '1':
				img[k] = 1
			default:
				return nil, 0, 0, fmt.Errorf("sample %d: %s: character %q at pixel %d is not 0 or 1", i, field, px[k], k)
			}
		}
		images = append(images, img)
	}
	return images, H, W, nil
}

// asInt reads an integer written by the task (int) or decoded from JSON
// (float64).
func asInt(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case float64:
		if x == float64(int(x)) {
			return int(x), true
		}
	}
	return 0, false
}

// Keys and kinds of the images written to Samples: each sample is
// {kind: "sample" | "completion", index, height, width, pixels}, pixels a
// string of H·W '0'/'1' characters in raster order; a completion also has
// test_index, prompt_rows (the rows given) and truth (the test image).
const (
	SampleKindKey  = "image"
	SampleKind     = "sample"
	CompletionKind = "completion"
	PixelsKey      = "pixels"
	TruthKey       = "truth"
	PromptRowsKey  = "prompt_rows"
)

// Kind is a sample's image kind (SampleKind, CompletionKind), "" for a
// sample that is no image.
func Kind(s harness.Sample) string {
	k, _ := s[SampleKindKey].(string)
	return k
}

// PromptRows reads the rows every completion among samples was given
// (PromptRowsKey), the same for all of them and in [0, H]; -1 when there
// is no completion.
func PromptRows(samples []harness.Sample, H int) (int, error) {
	rows := -1
	for i, s := range samples {
		if Kind(s) != CompletionKind {
			continue
		}
		r, ok := asInt(s[PromptRowsKey])
		if !ok || r < 0 || r > H || (rows >= 0 && r != rows) {
			return 0, fmt.Errorf("sample %d: completion with %s %v (want one whole number of rows in [0, %d] for all)", i, PromptRowsKey, s[PromptRowsKey], H)
		}
		rows = r
	}
	return rows, nil
}

// Pixels renders 0/1 pixels as a string of '0' and '1' characters (any
// non-zero pixel is '1').
func Pixels(img []uint8) string {
	var b strings.Builder
	b.Grow(len(img))
	for _, v := range img {
		if v != 0 {
			b.WriteByte('1')
		} else {
			b.WriteByte('0')
		}
	}
	return b.String()
}
