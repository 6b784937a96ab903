package pixelcnn

import (
	"context"
	"errors"
	"fmt"

	"arbench/harness"
	"arbench/nn"
	"arbench/plugins/internal/lm"
)

// Re-fed generation (harness.Decoder) asks for one position per step, at
// a prefix length that grows by one each time. Through NextLogProbs every
// input width would be its own compiled executable, each keeping its
// activation buffers (up to lm.DefaultCacheSize of them, together many
// times the memory of one evaluation batch), and every step would run the
// network over the whole prefix. NextLogProbsAt instead runs it on the
// image rows its receptive field covers: the position's row and the
// Config.FieldRows rows above it (rows below are never read: the masks
// are causal). So there are at most FieldRows+1 executables per batch
// size (key: rows R and batch B), each step costs at most FieldRows+1
// rows whatever the image height, and the executables are kept in a
// cache bounded by pixels rather than entries: at most 2·B·H image rows
// of batch B in all, i.e. twice the activations of one whole-image
// evaluation of the batch, the least recently used closed first.

// positionExecs is that cache.
type positionExecs struct {
	backend nn.Backend
	params  *nn.ParamSet
	execs   map[[2]int]*positionExec // by (batch, rows)
	clock   uint64
	rows    int // Σ batch·rows of the cached executables
}

type positionExec struct {
	exec    nn.Executable
	lastUse uint64
}

// get returns the executable for batch B and R rows, compiling it with
// build and evicting others until the batch·rows held are at most
// max(limit, B·R).
func (c *positionExecs) get(B, R, limit int, build nn.BuildFunc) (nn.Executable, error) {
	key := [2]int{B, R}
	c.clock++
	if e, ok := c.execs[key]; ok {
		e.lastUse = c.clock
		return e.exec, nil
	}
	for c.rows+B*R > max(limit, B*R) && len(c.execs) > 0 {
		var oldest [2]int
		first := true
		for k, e := range c.execs {
			if first || e.lastUse < c.execs[oldest].lastUse {
				oldest, first = k, false
			}
		}
		err := c.execs[oldest].exec.Close()
		delete(c.execs, oldest)
		c.rows -= oldest[0] * oldest[1]
		if err != nil {
			return nil, fmt.Errorf("evict rows %d of batch %d: %w", oldest[1], oldest[0], err)
		}
	}
	e, err := c.backend.Compile(nn.Spec{Key: fmt.Sprintf("at/b%d/r%d", B, R), Params: c.params}, build)
	if err != nil {
		return nil, err
	}
	c.execs[key] = &positionExec{exec: e, lastUse: c.clock}
	c.rows += B * R
	return e, nil
}

// close releases every cached executable.
func (c *positionExecs) close() error {
	var errs []error
	for k, e := range c.execs {
		errs = append(errs, e.exec.Close())
		delete(c.execs, k)
	}
	c.rows = 0
	return errors.Join(errs...)
}

// NextLogProbsAt returns out[i][v] = log p(v | inputs[i][:at+1]) for
// equal-length rows (harness.PositionDistributioner): with r = ⌊at/W⌋ the
// network runs on image rows r0 = max(0, r−FieldRows) … r only, fed the
// pixels of those rows up to position at (the rest, and the rows outside,
// are never read by position at: every feature position at depends on
// reads rows r0 … r only, so the zero padding above row r0 is read only
// by features it does not depend on). The values are NextLogProbs's up to
// float32 rounding (a matrix product over fewer rows may round
// differently; TestPixelCNNPositionCache compares them to 1e-5).
func (m *Model) NextLogProbsAt(ctx context.Context, inputs [][]int, at int) ([][]float32, error) {
	if m.Base == nil || m.gen == nil {
		return nil, lm.ErrNotSetup
	}
	B, T, err := lm.Shape("inputs", inputs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.family, err)
	}
	N, W := m.h*m.w, m.w
	if at < 0 || at >= T || at >= N {
		return nil, fmt.Errorf("%s: position %d of rows of %d tokens (a %d×%d image has %d positions)", m.family, at, T, m.h, m.w, N)
	}
	r := at / W
	r0 := max(0, r-m.cfg.FieldRows())
	R := r - r0 + 1
	n := R * W
	ids := make([]int, 0, B*n)
	for i, row := range inputs {
		// Token j is pixel j−1 (Logits): token r0·W, the pixel before row
		// r0 (or the start token), is not read.
		for j := r0 * W; j < r0*W+n; j++ {
			v := 0 // never read by position at
			if j <= at {
				v = row[j]
				if v < 0 || v >= Vocab {
					return nil, fmt.Errorf("%s: inputs: token %d at row %d position %d is outside the vocabulary [0,%d)", m.family, v, i, j, Vocab)
				}
			}
			ids = append(ids, v)
		}
	}
	e, err := m.gen.get(B, R, 2*B*m.h, func(g nn.Graph) error {
		l := g.Reshape(m.Logits(g, g.Ints(lm.FeedIDs, B*n), B, n, false), B, R, W, Vocab)
		l = g.Reshape(g.Slice(l, 1, R-1, R), B*W, Vocab)
		g.Output(lm.OutLogProbs, g.LogSoftmax(l))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.family, err)
	}
	res, err := e.Run(ctx, nn.Feeds{Ints: map[string][]int{lm.FeedIDs: ids}})
	if err != nil {
		return nil, fmt.Errorf("%s: score: %w", m.family, err)
	}
	v := res.Outputs[lm.OutLogProbs].Data
	out := make([][]float32, B)
	for i := range out {
		off := (i*W + at%W) * Vocab
		out[i] = append([]float32(nil), v[off:off+Vocab]...)
	}
	return out, nil
}

// Close releases the compiled executables; it does nothing before Setup.
func (m *Model) Close() error {
	var err error
	if m.gen != nil {
		err = m.gen.close()
	}
	return errors.Join(err, m.Base.Close())
}

var _ harness.PositionDistributioner = (*Model)(nil)
