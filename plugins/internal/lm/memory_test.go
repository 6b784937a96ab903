package lm

import (
	"context"
	"errors"
	"math"
	"runtime"
	"testing"

	"arbench/harness"
)

// TestEstimateFormula checks Footprint.Estimate against its documented
// formula on round numbers.
func TestEstimateFormula(t *testing.T) {
	f := Footprint{Params: 1000, Train: 10, Eval: 5, Workspace: 300, Ops: 2}
	got := f.Estimate(harness.Env{Vocab: 7, SeqLen: 8, Batch: 100})
	want := harness.MemoryEstimate{
		Params:    4000,
		Training:  16000 + 1200 + 100*8*(40+48) + 2*OpBytesTrain + 100*8*(20+48) + 2*OpBytesEval,
		Inference: 4000 + 100*8*(20+48) + 2*OpBytesEval, // the training batch exceeds EvalBatch
	}
	if got != want {
		t.Errorf("Estimate = %+v, want %+v", got, want)
	}
	got = f.Estimate(harness.Env{Vocab: 7, SeqLen: 8})
	if got.Training != 0 || got.Inference != 4000+EvalBatch*8*(20+48)+2*OpBytesEval {
		t.Errorf("Estimate without a batch = %+v, want no training and an EvalBatch inference", got)
	}
}

// TestValues checks the composition of per-position counts: saved and
// held values add up over the parts of a graph, the peak is the largest
// part's.
func TestValues(t *testing.T) {
	a := Values{Saved: 10, Peak: 4, Held: 1}
	b := Values{Saved: 2, Peak: 7, Held: 3}
	if got, want := a.Then(b), (Values{Saved: 12, Peak: 7, Held: 4}); got != want {
		t.Errorf("Then = %+v, want %+v", got, want)
	}
	if got, want := a.Times(3), (Values{Saved: 30, Peak: 4, Held: 3}); got != want {
		t.Errorf("Times = %+v, want %+v", got, want)
	}
	if got := a.Then(b).Total(); got != 23 {
		t.Errorf("Total = %v, want 23", got)
	}
}

// TestGemmWorkspace: a worker's packing buffers grow with a layer's input
// up to the panel width, 1024, and with its output up to the block depth,
// 256; a layer's products take one worker per 2^20 multiply-adds, at
// least one and at most GOMAXPROCS, and each worker holds the largest
// buffers of the layers that use it.
func TestGemmWorkspace(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	small, wide := Linear{In: 64, Out: 16}, Linear{In: 1024, Out: 256}
	perSmall, perWide := 256.0*64+120*16, 256.0*1024+120*256
	if got := GemmWorkspace(512, small); got != perSmall {
		t.Errorf("one worker: %v, want %v", got, perSmall)
	}
	if got, want := GemmWorkspace(16, wide), float64(min(4, procs))*perWide; got != want {
		t.Errorf("2^22 multiply-adds: %v, want %v", got, want)
	}
	huge := Linear{In: 4096, Out: 4096}
	if got, want := GemmWorkspace(1<<20, huge, small), float64(procs)*perWide; got != want {
		t.Errorf("every worker: %v, want %v", got, want)
	}
	// The wide layer takes min(4, procs) workers, the small one only the
	// first, whose buffers are the wide layer's anyway.
	if got, want := GemmWorkspace(16, small, wide), float64(min(4, procs))*perWide; got != want {
		t.Errorf("mixed layers: %v, want %v", got, want)
	}
}

// TestEstimateUsesEvalBatch is issue 9's review finding 3: the estimate
// assumed 64 evaluation rows whatever the task's eval_batch (an rnn on
// text/jargon peaks at 86 MB with eval_batch 32 and 2.8 GB with 1500). It
// must count env.EvalBatch rows, 64 when 0, or the training batch when
// that is larger.
func TestEstimateUsesEvalBatch(t *testing.T) {
	f := Footprint{Params: 1000, Train: 10, Eval: 5}
	perRow := int64(8 * (20 + 48)) // T = 8 positions of 4·Eval + 48 bytes
	for _, c := range []struct {
		evalBatch, batch, rows int
	}{
		{0, 0, EvalBatch}, {32, 0, 32}, {1500, 0, 1500}, {1500, 100, 1500}, {32, 100, 100},
	} {
		env := harness.Env{Vocab: 7, SeqLen: 8, EvalBatch: c.evalBatch, Batch: c.batch}
		if got := EvalRows(env); got != c.rows {
			t.Errorf("EvalRows(eval batch %d, batch %d) = %d, want %d", c.evalBatch, c.batch, got, c.rows)
		}
		est := f.Estimate(env)
		if want := 4000 + int64(c.rows)*perRow; est.Inference != want {
			t.Errorf("eval batch %d, batch %d: inference %d, want %d (%d rows)", c.evalBatch, c.batch, est.Inference, want, c.rows)
		}
		if c.batch > 0 {
			if want := 16000 + int64(c.batch)*8*(40+48) + int64(c.rows)*perRow; est.Training != want {
				t.Errorf("eval batch %d, batch %d: training %d, want %d", c.evalBatch, c.batch, est.Training, want)
			}
		}
	}
}

func TestEstimateSaturates(t *testing.T) {
	for _, f := range []Footprint{{Params: 1e30, Train: 1, Eval: 1}, {Params: math.NaN()}, {Params: 1, Train: math.Inf(1), Eval: math.Inf(1)}} {
		est := f.Estimate(harness.Env{SeqLen: 1, Batch: 1})
		if est.Total() < 0 || max(est.Params, est.Training, est.Inference) != maxEstimate {
			t.Errorf("%+v: estimate %+v (total %d), want a part saturated at %d", f, est, est.Total(), int64(maxEstimate))
		}
	}
}

// TestNilBase: plugins embed a *Base that is nil before Setup, and the
// harness may Close or call a model whose Setup failed (issue 9, case 1).
func TestNilBase(t *testing.T) {
	var b *Base
	if err := b.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if b.Params() != nil || b.Vocab() != 0 {
		t.Error("nil Base has parameters or a vocabulary")
	}
	ctx := context.Background()
	batch := harness.Batch{Inputs: [][]int{{1}}, Targets: [][]int{{1}}}
	_, gerr := b.Gradients(ctx, batch, 1)
	_, lerr := b.LogProbs(ctx, batch)
	_, nerr := b.NextLogProbs(ctx, batch.Inputs)
	_, _, serr := Recurrent{}.Start(ctx, batch.Inputs)
	_, perr := Recurrent{}.Step(ctx, nil, []int{1})
	for name, err := range map[string]error{"Gradients": gerr, "LogProbs": lerr, "NextLogProbs": nerr, "Start": serr, "Step": perr} {
		if !errors.Is(err, ErrNotSetup) {
			t.Errorf("%s on a nil Base = %v, want ErrNotSetup", name, err)
		}
	}
}
