package seq2seq

import (
	"context"
	"fmt"
	"time"

	"arbench/harness"
)

// pass is what translating a list of test rows in calls of a fixed number
// of rows produced, with each call timed.
type pass struct {
	rows    int
	outputs [][]int
	// lengths are the model's predicted lengths (EOS included), nil
	// unless every call returned them.
	lengths []int
	// stats sums the calls' Translation.Stats (nil when none had any).
	stats map[string]float64
	// passes sums each call's decoder passes times its rows: every row of
	// a call waits for all of its passes.
	passes float64
	// seconds is each call's wall time, perRow its rows.
	seconds []float64
	perRow  []int
}

// msPerSeq is the pass's wall time per row in milliseconds.
func (p *pass) msPerSeq() float64 { return 1000 * sum(p.seconds) / float64(p.rows) }

// passesPerSeq is the mean number of decoder passes a row waited for.
func (p *pass) passesPerSeq() float64 { return p.passes / float64(p.rows) }

func sum(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s
}

// sources returns the examples' sources.
func sources(exs []Example) [][]int {
	out := make([][]int, len(exs))
	for i, e := range exs {
		out[i] = e.Source
	}
	return out
}

// translator decodes the task's sources with one model and setting.
type translator struct {
	m   harness.Model
	opt harness.TranslateOptions
}

// translate decodes srcs in one call and checks what came back.
func (tr translator) translate(ctx context.Context, srcs [][]int) (*harness.Translation, time.Duration, error) {
	t0 := time.Now()
	out, err := harness.Translate(ctx, tr.m, srcs, tr.opt)
	d := time.Since(t0)
	if err != nil {
		return nil, 0, err
	}
	if out.Lengths != nil && len(out.Lengths) != len(srcs) {
		return nil, 0, fmt.Errorf("model %s predicted %d lengths for %d sources", tr.m.Info().Family, len(out.Lengths), len(srcs))
	}
	return out, d, nil
}

// chunks splits n rows into calls of at most size rows.
func chunks(n, size int) [][2]int {
	var out [][2]int
	for lo := 0; lo < n; lo += size {
		out = append(out, [2]int{lo, min(lo+size, n)})
	}
	return out
}

// warmUp translates every call once, untimed, so that no call's time
// includes compiling a shape: a model compiles per batch size and also per
// source width, output length or cache capacity, which only the calls
// themselves reveal.
func (tr translator) warmUp(ctx context.Context, srcs [][]int, calls [][2]int) error {
	for _, c := range calls {
		if _, _, err := tr.translate(ctx, srcs[c[0]:c[1]]); err != nil {
			return fmt.Errorf("warm-up of rows %d..%d: %w", c[0], c[1]-1, err)
		}
	}
	return nil
}

// run translates exs in calls of batch rows after a warm-up, timing each
// call.
func (tr translator) run(ctx context.Context, exs []Example, batch int) (*pass, error) {
	srcs := sources(exs)
	calls := chunks(len(srcs), batch)
	if err := tr.warmUp(ctx, srcs, calls); err != nil {
		return nil, err
	}
	p := &pass{rows: len(srcs), lengths: []int{}}
	for _, c := range calls {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out, d, err := tr.translate(ctx, srcs[c[0]:c[1]])
		if err != nil {
			return nil, fmt.Errorf("rows %d..%d: %w", c[0], c[1]-1, err)
		}
		p.add(out, d, c[1]-c[0])
	}
	return p, nil
}

// add records one call's translation.
func (p *pass) add(out *harness.Translation, d time.Duration, rows int) {
	p.outputs = append(p.outputs, out.Outputs...)
	if out.Lengths == nil || p.lengths == nil {
		p.lengths = nil
	} else {
		p.lengths = append(p.lengths, out.Lengths...)
	}
	for k, v := range out.Stats {
		if p.stats == nil {
			p.stats = map[string]float64{}
		}
		p.stats[k] += v
	}
	p.passes += float64(out.Passes * rows)
	p.seconds = append(p.seconds, d.Seconds())
	p.perRow = append(p.perRow, rows)
}
