package image

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"arbench/internal/split"
)

// Split is one of the three disjoint parts of the shapes variant's image
// space.
type Split = split.Split

// The splits.
const (
	Train = split.Train
	Valid = split.Valid
	Test  = split.Test
)

// SplitBuckets is the number of hash buckets SplitOf divides images into.
const SplitBuckets = 10

// SplitOf returns the split of a grey image: FNV-1a 64 of its bytes mod
// SplitBuckets is 0 for Test, 1 for Valid and anything else for Train.
func SplitOf(grey []uint8) Split {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for _, b := range grey {
		h ^= uint64(b)
		h *= prime
	}
	return split.Of(h, SplitBuckets)
}

// Bounds on rejection sampling: a training draw falls in the train split
// with probability about 0.8, and distinct fixed images are plentiful at
// every size, so these are never reached by a valid configuration.
const (
	maxTrainRejections = 1 << 20
	fixedDrawsPerImage = 64
	fixedDrawsSlack    = 1 << 16
)

// prepareShapes builds the shapes variant's fixed sets and training source.
func (t *Task) prepareShapes(ctx context.Context) (valid, test [][]uint8, err error) {
	size, shapes := t.side, t.cfg.MaxShapes
	if valid, err = fixedShapes(ctx, size, shapes, Valid, t.cfg.ValidImages); err != nil {
		return nil, nil, err
	}
	if test, err = fixedShapes(ctx, size, shapes, Test, t.cfg.testImages("shapes")); err != nil {
		return nil, nil, err
	}
	t.train = func(rng *rand.Rand) []uint8 {
		for range maxTrainRejections {
			if g := RenderShapes(rng, size, shapes); SplitOf(g) == Train {
				return g
			}
		}
		panic(fmt.Sprintf("image/shapes: %d draws in a row fell outside the train split", maxTrainRejections))
	}
	t.refs = nil
	return valid, test, nil
}

// fixedShapes draws n distinct grey images of split from the split's
// constant stream, in the order drawn.
func fixedShapes(ctx context.Context, size, shapes int, split Split, n int) ([][]uint8, error) {
	stream := uint64(validStream)
	if split == Test {
		stream = testStream
	}
	rng := rand.New(rand.NewPCG(fixedSeed, stream))
	out := make([][]uint8, 0, n)
	seen := map[string]bool{}
	budget := fixedDrawsPerImage*SplitBuckets*n + fixedDrawsSlack
	for k := range budget {
		if k%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		g := RenderShapes(rng, size, shapes)
		if SplitOf(g) != split || seen[string(g)] {
			continue
		}
		seen[string(g)] = true
		out = append(out, g)
		if len(out) == n {
			return out, nil
		}
	}
	return nil, fmt.Errorf("image/shapes: %s set: %d draws found only %d of the %d distinct images asked for; ask for fewer",
		split, budget, len(out), n)
}

// figure is one drawn shape; contains reports whether the point (x, y),
// in pixels from the top-left corner, is inked.
type figure interface {
	contains(x, y float64) bool
}

type rect struct {
	x0, y0, x1, y1 float64
	// stroke > 0 draws the outline of that width instead of filling.
	stroke float64
}

func (r rect) contains(x, y float64) bool {
	in := x >= r.x0 && x < r.x1 && y >= r.y0 && y < r.y1
	if !in || r.stroke == 0 {
		return in
	}
	s := r.stroke
	return !(x >= r.x0+s && x < r.x1-s && y >= r.y0+s && y < r.y1-s)
}

type disc struct {
	cx, cy, r float64
	// ring > 0 draws a ring of that width instead of filling.
	ring float64
}

func (d disc) contains(x, y float64) bool {
	dist := math.Hypot(x-d.cx, y-d.cy)
	return dist <= d.r && (d.ring == 0 || dist >= d.r-d.ring)
}

type stroke struct {
	ax, ay, bx, by, half float64
}

func (s stroke) contains(x, y float64) bool {
	dx, dy := s.bx-s.ax, s.by-s.ay
	u := ((x-s.ax)*dx + (y-s.ay)*dy) / (dx*dx + dy*dy)
	u = min(max(u, 0), 1)
	return math.Hypot(x-(s.ax+u*dx), y-(s.ay+u*dy)) <= s.half
}

// subsamples is the side of the sub-pixel grid whose coverage gives a
// pixel's grey value.
const subsamples = 4

// RenderShapes draws one grey image (size × size bytes, raster order, 0 =
// background, 255 = ink) of 1..maxShapes figures from rng: filled or
// outlined rectangles, strokes, filled discs or rings, at random positions
// and sizes (relative to size, so every size looks alike). A pixel's value
// is the fraction of its 4×4 sub-pixel samples that some figure covers.
func RenderShapes(rng *rand.Rand, size, maxShapes int) []uint8 {
	S := float64(size)
	u := func(lo, hi float64) float64 { return lo + (hi-lo)*rng.Float64() }
	figs := make([]figure, 1+rng.IntN(maxShapes))
	for i := range figs {
		switch rng.IntN(3) {
		case 0:
			w, h := u(0.2*S, 0.6*S), u(0.2*S, 0.6*S)
			x0, y0 := u(0, S-w), u(0, S-h)
			r := rect{x0: x0, y0: y0, x1: x0 + w, y1: y0 + h}
			if rng.IntN(2) == 0 {
				r.stroke = 1
			}
			figs[i] = r
		case 1:
			r := u(0.12*S, 0.3*S)
			d := disc{cx: u(r, S-r), cy: u(r, S-r), r: r}
			if rng.IntN(2) == 0 {
				d.ring = 1
			}
			figs[i] = d
		default:
			s := stroke{half: u(0.5, 0.9)}
			for {
				s.ax, s.ay, s.bx, s.by = u(0.5, S-0.5), u(0.5, S-0.5), u(0.5, S-0.5), u(0.5, S-0.5)
				if math.Hypot(s.bx-s.ax, s.by-s.ay) >= S/3 {
					break
				}
			}
			figs[i] = s
		}
	}
	out := make([]uint8, size*size)
	const n = subsamples * subsamples
	for i := range size {
		for j := range size {
			covered := 0
			for a := range subsamples {
				for b := range subsamples {
					x := float64(j) + (float64(b)+0.5)/subsamples
					y := float64(i) + (float64(a)+0.5)/subsamples
					for _, f := range figs {
						if f.contains(x, y) {
							covered++
							break
						}
					}
				}
			}
			out[i*size+j] = uint8((covered*255 + n/2) / n)
		}
	}
	return out
}
