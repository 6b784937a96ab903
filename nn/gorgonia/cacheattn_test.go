package gorgonia

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"arbench/nn"
)

// cacheAttnCase is one shape of TestCacheAttentionEqualsComposition: rows
// queries against caches of slots slots, n of them filled.
type cacheAttnCase struct{ rows, slots, dk, dv, n int }

func (c cacheAttnCase) String() string {
	return fmt.Sprintf("rows=%d/slots=%d/dk=%d/dv=%d/n=%d", c.rows, c.slots, c.dk, c.dv, c.n)
}

// runCacheAttention runs nn.CacheAttention on q, k, v over the first n
// slots on graph wrap(g), with the mask the composition needs.
func runCacheAttention(t *testing.T, c cacheAttnCase, q, k, v []float32, wrap func(nn.Graph) nn.Graph) []float32 {
	t.Helper()
	mask := make([]float32, c.slots)
	for j := c.n; j < c.slots; j++ {
		mask[j] = nn.CausalMaskValue
	}
	feeds := nn.Feeds{
		Floats: map[string][]float32{"q": q, "k": k, "v": v, "mask": mask},
		Ints:   map[string][]int{"n": {c.n}},
	}
	res := eval(t, nil, feeds, func(g nn.Graph) error {
		g = wrap(g)
		qt, kt, vt := g.Floats("q", c.rows, 1, c.dk), g.Floats("k", c.rows, c.slots, c.dk), g.Floats("v", c.rows, c.slots, c.dv)
		g.Output("y", nn.CacheAttention(g, qt, kt, vt, g.Floats("mask", 1, c.slots), g.Ints("n", 1)))
		return nil
	})
	return res.Outputs["y"].Data
}

// inputs draws the case's queries and caches from N(0, 1).
func (c cacheAttnCase) inputs(rng *rand.Rand) (q, k, v []float32) {
	q = randomFloats(rng, c.rows*c.dk, 1)
	return q, randomFloats(rng, c.rows*c.slots*c.dk, 1), randomFloats(rng, c.rows*c.slots*c.dv, 1)
}

func randomFloats(rng *rand.Rand, n int, scale float64) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(scale * rng.NormFloat64())
	}
	return out
}

// TestCacheAttentionEqualsComposition: the fused node gives bit for bit
// what ScaledDotProductAttention gives under the mask of the empty slots
// (the reference semantics), on every GEMM path, for full and partly
// filled caches, a single filled slot, rows in and out of the four-row
// groups, value widths the four-row kernel takes (multiples of 32) and
// ones it leaves to the packed product, and odd key widths (dotNT's tail).
// The empty slots hold large values, which must not leak into the result.
func TestCacheAttentionEqualsComposition(t *testing.T) {
	cases := []cacheAttnCase{
		{8, 16, 32, 32, 16}, {8, 64, 32, 32, 1}, {8, 64, 32, 32, 37}, {12, 32, 64, 64, 20},
		{6, 40, 24, 40, 33}, {5, 128, 7, 5, 100}, {1, 16, 32, 32, 9}, {4, 300, 32, 96, 257},
	}
	for _, p := range gemmPaths {
		for i, c := range cases {
			t.Run(p.String()+"/"+c.String(), func(t *testing.T) {
				useGemmPath(t, p)
				q, k, v := c.inputs(rand.New(rand.NewPCG(uint64(i), 3)))
				for r := range c.rows {
					for j := c.n; j < c.slots; j++ {
						for d := range c.dk {
							k[(r*c.slots+j)*c.dk+d] = 1e3
						}
						for d := range c.dv {
							v[(r*c.slots+j)*c.dv+d] = -1e3
						}
					}
				}
				fused := runCacheAttention(t, c, q, k, v, func(g nn.Graph) nn.Graph {
					if _, ok := g.(nn.CacheAttender); !ok {
						t.Fatalf("%T does not implement nn.CacheAttender", g)
					}
					return g
				})
				composed := runCacheAttention(t, c, q, k, v, func(g nn.Graph) nn.Graph { return composedGraph{g} })
				if len(fused) != c.rows*c.dv || len(composed) != len(fused) {
					t.Fatalf("%d and %d values, want %d", len(fused), len(composed), c.rows*c.dv)
				}
				for j := range fused {
					if math.Float32bits(fused[j]) != math.Float32bits(composed[j]) {
						t.Fatalf("element %d: fused %v, composition %v", j, fused[j], composed[j])
					}
				}
			})
		}
	}
}

// TestCacheAttentionFilledSlots: a filled-slot count outside [1, C] fails
// the run with an error naming it.
func TestCacheAttentionFilledSlots(t *testing.T) {
	exe, err := New().Compile(nn.Spec{Key: "test/cacheattn"}, func(g nn.Graph) error {
		q, k, v := g.Floats("q", 2, 1, 4), g.Floats("k", 2, 8, 4), g.Floats("v", 2, 8, 4)
		g.Output("y", nn.CacheAttention(g, q, k, v, g.Floats("mask", 1, 8), g.Ints("n", 1)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer exe.Close()
	for _, n := range []int{0, 9, -1} {
		feeds := nn.Feeds{
			Floats: map[string][]float32{"q": make([]float32, 8), "k": make([]float32, 64), "v": make([]float32, 64), "mask": make([]float32, 8)},
			Ints:   map[string][]int{"n": {n}},
		}
		_, err := exe.Run(context.Background(), feeds)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%d filled slots of a cache of 8", n)) {
			t.Errorf("n = %d: error %v, want one naming the filled slots", n, err)
		}
	}
}

// TestCacheAttentionOnCrew: split into pieces on the crew (two cores or
// more), the attention computes bit for bit what one goroutine computes
// over all rows, for even and odd row counts, pieces ending inside a
// four-row group (two-row weighted sums) and values too narrow for them.
func TestCacheAttentionOnCrew(t *testing.T) {
	cr := sharedCrew()
	if cr == nil {
		t.Skip("one processor: no crew")
	}
	cases := []cacheAttnCase{{4, 64, 32, 32, 40}, {12, 32, 32, 64, 32}, {6, 40, 24, 40, 33}, {5, 50, 7, 5, 17}, {64, 16, 32, 32, 9}}
	for _, p := range gemmPaths {
		for i, c := range cases {
			t.Run(p.String()+"/"+c.String(), func(t *testing.T) {
				useGemmPath(t, p)
				q, k, v := c.inputs(rand.New(rand.NewPCG(uint64(i), 5)))
				a := newCacheAttention(c.rows, c.slots, c.dk, c.dv, &gemmPool{}, func(n int) []float32 { return make([]float32, n) })
				if a.pieces < 2 {
					t.Fatalf("%d rows in %d piece, want the crew's", c.rows, a.pieces)
				}
				serial := make([]float32, c.rows*c.dv)
				a.rowsOf(0, q, k, v, serial, 0, c.rows, c.n)
				split := make([]float32, c.rows*c.dv)
				a.q, a.k, a.v, a.out, a.n = q, k, v, split, c.n
				if !cr.run(a.pieces, a) {
					t.Fatal("the crew is busy")
				}
				for j := range serial {
					if math.Float32bits(serial[j]) != math.Float32bits(split[j]) {
						t.Fatalf("element %d: on the crew %v, serial %v", j, split[j], serial[j])
					}
				}
			})
		}
	}
}
