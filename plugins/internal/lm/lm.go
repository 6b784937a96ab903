// Package lm holds what the language-model plugins share: turning harness
// batches into backend feeds, caching compiled executables per shape, and
// reading log-probabilities back out.
package lm

import (
	"fmt"

	"arbench/harness"
	"arbench/nn"
)

// Feed names shared by the plugins' build functions.
const (
	FeedIDs     = "ids"     // int [B*T] input tokens, row-major
	FeedTargets = "targets" // int [B*T] next tokens, -1 = ignored
	FeedWeights = "weights" // float [B*T] 1/count for scored targets, else 0
	OutLogProbs = "logp"    // float [B*T, V] next-token log-probabilities
	OutPicked   = "picked"  // float [B*T] log-probability of each position's target
)

// DefaultCacheSize is the number of executables a Cache keeps.
const DefaultCacheSize = 64

// Cache compiles each shape signature once per backend and keeps the most
// recently used executables. Generation creates a shape per prompt length
// (and, re-feeding the prefix, per sequence length), so without a bound
// the compiled graphs of a long generation would accumulate; the least
// recently used one is closed when a new one would exceed the limit.
type Cache struct {
	backend nn.Backend
	params  *nn.ParamSet
	execs   map[string]*cacheEntry
	limit   int
	clock   uint64
}

type cacheEntry struct {
	exec    nn.Executable
	lastUse uint64
}

// NewCache returns an empty cache over a backend and parameter set that
// keeps DefaultCacheSize executables.
func NewCache(b nn.Backend, ps *nn.ParamSet) *Cache {
	return &Cache{backend: b, params: ps, execs: map[string]*cacheEntry{}, limit: DefaultCacheSize}
}

// SetLimit changes how many executables the cache keeps (at least 1).
func (c *Cache) SetLimit(n int) { c.limit = max(n, 1) }

// Len returns the number of cached executables.
func (c *Cache) Len() int { return len(c.execs) }

// Get returns the executable for key, compiling it with build on first use
// (and closing the least recently used one when the cache is full).
func (c *Cache) Get(key string, train bool, build nn.BuildFunc) (nn.Executable, error) {
	return c.get(nn.Spec{Key: key, Params: c.params, Train: train}, build)
}

// GetUnbound is Get for an inference executable compiled without the
// parameter set (nn.Spec.Params nil), so that its build function may also
// bind parameters outside it, such as a key/value cache the caller owns.
func (c *Cache) GetUnbound(key string, build nn.BuildFunc) (nn.Executable, error) {
	return c.get(nn.Spec{Key: key}, build)
}

// GetUnboundTraining is GetUnbound for a training executable: its Run
// overwrites the Grad of every parameter the build function binds, in the
// parameter set or not (such as Base.EmbeddingGradientNorms's probe).
func (c *Cache) GetUnboundTraining(key string, build nn.BuildFunc) (nn.Executable, error) {
	return c.get(nn.Spec{Key: key, Train: true}, build)
}

func (c *Cache) get(spec nn.Spec, build nn.BuildFunc) (nn.Executable, error) {
	key := spec.Key
	c.clock++
	if e, ok := c.execs[key]; ok {
		e.lastUse = c.clock
		return e.exec, nil
	}
	e, err := c.backend.Compile(spec, build)
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", key, err)
	}
	for len(c.execs) >= c.limit {
		oldest := ""
		for k, v := range c.execs {
			if oldest == "" || v.lastUse < c.execs[oldest].lastUse {
				oldest = k
			}
		}
		err := c.execs[oldest].exec.Close()
		delete(c.execs, oldest)
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("evict %s: %w", oldest, err)
		}
	}
	c.execs[key] = &cacheEntry{exec: e, lastUse: c.clock}
	return e, nil
}

// Close releases every cached executable.
func (c *Cache) Close() error {
	var first error
	for k, e := range c.execs {
		if err := e.exec.Close(); err != nil && first == nil {
			first = err
		}
		delete(c.execs, k)
	}
	return first
}

// Shape returns the common row length of rows, or an error if rows are empty
// or ragged.
func Shape(what string, rows [][]int) (b, t int, err error) {
	if len(rows) == 0 || len(rows[0]) == 0 {
		return 0, 0, fmt.Errorf("%s: empty batch", what)
	}
	t = len(rows[0])
	for i, r := range rows {
		if len(r) != t {
			return 0, 0, fmt.Errorf("%s: row %d has %d tokens, row 0 has %d", what, i, len(r), t)
		}
	}
	return len(rows), t, nil
}

// Flatten concatenates rows, checking every token is in [0, vocab).
func Flatten(what string, rows [][]int, vocab int, allowNegative bool) ([]int, error) {
	var out []int
	for i, r := range rows {
		for j, v := range r {
			if v >= vocab || (v < 0 && !allowNegative) {
				return nil, fmt.Errorf("%s: token %d at row %d position %d is outside the vocabulary [0,%d)", what, v, i, j, vocab)
			}
		}
		out = append(out, r...)
	}
	return out, nil
}

// LMFeeds converts a language-modelling batch into feeds: ids, targets and
// weights (1/count on scored positions, so the summed loss is a mean).
func LMFeeds(b harness.Batch, vocab int, seed uint64) (nn.Feeds, int, int, error) {
	B, T, err := Shape("inputs", b.Inputs)
	if err != nil {
		return nn.Feeds{}, 0, 0, err
	}
	if tb, tt, err := Shape("targets", b.Targets); err != nil || tb != B || tt != T {
		if err == nil {
			err = fmt.Errorf("targets are %dx%d, inputs %dx%d", tb, tt, B, T)
		}
		return nn.Feeds{}, 0, 0, err
	}
	ids, err := Flatten("inputs", b.Inputs, vocab, false)
	if err != nil {
		return nn.Feeds{}, 0, 0, err
	}
	tg, err := Flatten("targets", b.Targets, vocab, true)
	if err != nil {
		return nn.Feeds{}, 0, 0, err
	}
	n := 0
	for i, v := range tg {
		if v < 0 {
			tg[i] = -1
		} else {
			n++
		}
	}
	w := make([]float32, len(tg))
	if n > 0 {
		for i, v := range tg {
			if v >= 0 {
				w[i] = 1 / float32(n)
			}
		}
	}
	return nn.Feeds{
		Ints:   map[string][]int{FeedIDs: ids, FeedTargets: tg},
		Floats: map[string][]float32{FeedWeights: w},
		Seed:   seed,
	}, B, T, nil
}

// PickLogProbs reads log p(target) per position from a [B*T, V] output.
func PickLogProbs(v nn.Value, targets [][]int) ([][]float64, error) {
	if len(v.Shape) != 2 {
		return nil, fmt.Errorf("log-probabilities have shape %v, want 2-D", v.Shape)
	}
	V := v.Shape[1]
	out := make([][]float64, len(targets))
	k := 0
	for i, row := range targets {
		out[i] = make([]float64, len(row))
		for t, tok := range row {
			if tok >= 0 {
				out[i][t] = float64(v.Data[k*V+tok])
			}
			k++
		}
	}
	if k*V != len(v.Data) {
		return nil, fmt.Errorf("log-probabilities hold %d values, want %d", len(v.Data), k*V)
	}
	return out, nil
}

// SplitRows reshapes a [B*T, V] output into out[b][t][v] (copying).
func SplitRows(v nn.Value, B, T int) [][][]float32 {
	V := v.Shape[len(v.Shape)-1]
	out := make([][][]float32, B)
	for b := range out {
		out[b] = make([][]float32, T)
		for t := range out[b] {
			off := (b*T + t) * V
			out[b][t] = append([]float32(nil), v.Data[off:off+V]...)
		}
	}
	return out
}

// LastRows returns, for a [B*T, V] output, the distribution at the last
// position of each row: out[b][v] (copying).
func LastRows(v nn.Value, B, T int) [][]float32 {
	V := v.Shape[len(v.Shape)-1]
	out := make([][]float32, B)
	for b := range out {
		off := (b*T + T - 1) * V
		out[b] = append([]float32(nil), v.Data[off:off+V]...)
	}
	return out
}
