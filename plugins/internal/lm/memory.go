package lm

import (
	"math"
	"runtime"

	"arbench/harness"
)

// Memory estimates (harness.MemoryEstimator) count float32 values as the
// gorgonia backend holds them with pooled buffers, its default
// (nn/gorgonia/pool.go): the ops' outputs of an executable share one arena,
// and a value's part of it is reused once its last reader in the
// executable's schedule (the forward ops, then for training the backward
// ops) has run; outputs, the loss and the parameters' gradients live to the
// end of the run. An executable therefore holds its largest set of values
// alive at once, which Values describes per position (one token of one
// row):
//
//   - in evaluation, the largest stage of the forward pass: an op's operands
//     and result, and the values waiting for a later reader (a residual
//     stream, an attention's values), all in Values.Peak;
//   - in training, the forward values the backward pass reads (Saved: a
//     product's operands, a softmax's or ReLU's output, a layer norm's
//     input), alive from their op into the backward pass, plus the largest
//     set of gradients and transients in flight on top of them (Peak), at
//     the top of the backward pass where few saved values have been freed.
//     A part's Peak is counted on top of every part's saved values, which
//     errs high by what is not computed yet or already freed then.
//
// Feeds, constants, dropout masks and fused ops' scratch (the LSTM's saved
// activations) are not pooled: they are Held for the executable's life, as
// are the matrix products' packing buffers (GemmWorkspace) and the graph's
// bookkeeping (Footprint.Ops).
//
// The estimates assume pooling. With ARBENCH_NO_POOL=1 every value has a
// buffer of its own and they are too low, 1.5–7× at the tested shapes (the
// Transformer's evaluation most). The gotch backend (libtorch) keeps what
// autograd saves during a run and frees it after; its memory is not what
// they are checked against.
type Values struct {
	// Saved are the forward values the backward pass reads (training only).
	Saved float64
	// Peak is the largest set of other values alive at once.
	Peak float64
	// Held are buffers outside the pool, and values handed out.
	Held float64
}

// Then is v followed by w in the same executable: saved and held values
// add up, while only one part's transients are alive at a time.
func (v Values) Then(w Values) Values {
	return Values{Saved: v.Saved + w.Saved, Peak: max(v.Peak, w.Peak), Held: v.Held + w.Held}
}

// Times is n copies of v run one after the other (n layers).
func (v Values) Times(n float64) Values {
	return Values{Saved: n * v.Saved, Peak: v.Peak, Held: n * v.Held}
}

// Total is the values alive at v's peak.
func (v Values) Total() float64 { return v.Saved + v.Peak + v.Held }

// Embedded is the token embedding, d wide, and what the first layer
// computes from it (the position sum, a time-major copy): the gathered rows
// and that value alive at once. In training the value is the first layer's
// saved input, which the layer counts, so the peak is the rows alone.
func Embedded(d float64) (train, eval Values) { return Values{Peak: d}, Values{Peak: 2 * d} }

// OutputTrain is a training executable's output layer, fc over d inputs
// to V logits, and its cross-entropy: saved are fc's input (for its
// weight's gradient) and the log-softmax (for its own); at the start of the
// backward pass the Pick's gradient and the log-softmax's are alive with
// them.
func OutputTrain(d, v float64) Values { return Values{Saved: d + v, Peak: 2 * v} }

// OutputEval is an evaluation executable's output layer over V tokens: the
// product and its bias sum, then the sum and its log-softmax (the output,
// alive to the end), with NextLogProbs's per-row copy of the distributions
// held by the caller.
func OutputEval(v float64) Values { return Values{Peak: 2 * v, Held: v} }

// EvalBatch is the evaluation batch (rows per Scorer or Distributioner
// call) memory estimates assume when env.EvalBatch does not say (0): the
// largest default of the built-in tasks (text eval_batch 32, synthetic 64).
const EvalBatch = 64

// EvalRows is the number of rows of one evaluation batch that an estimate
// for env counts: the task's env.EvalBatch (EvalBatch when 0), or the
// training batch when that is larger.
func EvalRows(env harness.Env) int {
	rows := env.EvalBatch
	if rows <= 0 {
		rows = EvalBatch
	}
	return max(env.Batch, rows)
}

// intBytesPerPosition is the integer data of one position of a batch: the
// task's input and target rows, their flattened feeds and the executable's
// copies, the row slices handed out, six int64 values.
const intBytesPerPosition = 6 * 8

// maxEstimate caps every part of an estimate at 2 EiB, so that the parts,
// computed in float64, convert to int64 and sum (MemoryEstimate.Total)
// without overflow whatever the configured sizes.
const maxEstimate = 1 << 61

// Packing buffers of the gorgonia backend's matrix products (see
// nn/gorgonia/sgemm.go): every worker packs panels of at most gemmKC inner
// by gemmNC output columns of one operand and blocks of at most gemmMC rows
// by gemmKC of the other, and a product takes a worker per
// gemmParallelMACs multiply-adds, up to runtime.GOMAXPROCS.
const (
	gemmKC, gemmNC, gemmMC = 256, 1024, 120
	gemmParallelMACs       = 1 << 20
)

// Linear is a layer x·Wᵀ of In inputs and Out outputs per position (a
// convolution's patch matrix and output channels, for GemmWorkspace).
type Linear struct{ In, Out float64 }

// workers is the number of workers the largest backward product of l over
// rows positions (at most In·Out·rows multiply-adds) takes: one per 2^20
// multiply-adds, at least one and at most GOMAXPROCS.
func (l Linear) workers(rows float64, procs int) int {
	return int(max(1, min(float64(procs), math.Floor(l.In*l.Out*rows/gemmParallelMACs))))
}

// packed is the packing buffers one worker holds for l's backward products
// G·W and Gᵀ·X: a panel of at most 256 rows by min(In, 1024) columns and a
// block of at most 120 rows by min(Out, 256).
func (l Linear) packed() float64 {
	return gemmKC*min(l.In, gemmNC) + gemmMC*min(l.Out, gemmKC)
}

// GemmWorkspace is the float values of a training executable's
// matrix-product packing buffers for layers over rows positions: each
// worker's buffers grow to the largest a layer that uses it needs
// (Linear.packed, Linear.workers). The forward products x·Wᵀ and q·kᵀ pack
// nothing and attention's other products only head-wide panels, so an
// evaluation executable's buffers are left out, as are the AVX-512
// kernels' smaller blocks and fewer workers.
func GemmWorkspace(rows float64, layers ...Linear) float64 {
	procs := runtime.GOMAXPROCS(0)
	total := 0.0
	for w := range procs {
		most := 0.0
		for _, l := range layers {
			if l.workers(rows, procs) > w {
				most = max(most, l.packed())
			}
		}
		if most == 0 {
			break
		}
		total += most
	}
	return total
}

// Footprint is what a model keeps in memory, in float32 values, as counted
// for the gorgonia backend with pooled buffers (see Values).
type Footprint struct {
	// Params is the number of parameters.
	Params float64
	// Train and Eval are the values per position (one token of one row) at
	// the peak of a training and an evaluation executable (Values.Total).
	Train, Eval float64
	// Workspace is the training executable's values that do not grow with
	// the positions: the packing buffers (GemmWorkspace) and per-run
	// transposed weights.
	Workspace float64
	// Ops is the number of ops of the forward graph (views and bound
	// inputs included): the backend's bookkeeping per op (OpBytesEval,
	// OpBytesTrain) is a large share of a small model's memory.
	Ops float64
}

// OpBytesEval and OpBytesTrain are the gorgonia backend's bookkeeping per
// forward op of an evaluation and a training executable (the graph node,
// the kernel and its closure, the handle; in training also the gradient's
// ops), measured on chains of element-wise ops: about 1.1 KB and 1.9 KB.
const (
	OpBytesEval  = 1152
	OpBytesTrain = 2048
)

// Estimate turns a footprint into the harness's estimate for env, with
// P parameters, B = env.Batch, T = env.SeqLen and the evaluation
// executable of one batch E = EvalRows(env)·T·(4·Eval + 48) +
// OpBytesEval·Ops, i.e. max(B, the task's eval batch)·T·(4·Eval + 48) and
// the graph's bookkeeping:
//
//	Params    = 4·P bytes
//	Inference = 4·P (Param.Grad, allocated with the parameters) + E
//	Training  = 4·P·4 (Param.Grad, the executable's gradient buffers, Adam's
//	            two moments) + 4·Workspace + B·T·(4·Train + 48)
//	            + OpBytesTrain·Ops + E, 0 when B is 0
//
// where 48 bytes per position are the integer inputs and targets and the
// row slices (intBytesPerPosition). The executable's gradient buffers are
// counted whole although at the training peak only the top layers' exist
// (they live from their op to the end of the run), so the estimate errs
// high by up to 4·P. Training includes E because the executable cache
// keeps the evaluation executable that the validation curve compiles
// during training next to the training one: measured over whole runs, the
// peak live heap is parameters + training. The arithmetic is float64 and
// each part saturates at 2 EiB, so absurd sizes give a huge estimate,
// never an overflow.
func (f Footprint) Estimate(env harness.Env) harness.MemoryEstimate {
	params := 4 * f.Params
	T := float64(max(env.SeqLen, 0))
	eval := float64(EvalRows(env))*T*(4*f.Eval+intBytesPerPosition) + OpBytesEval*f.Ops
	var training float64
	if env.Batch > 0 {
		training = 4*params + 4*f.Workspace + float64(env.Batch)*T*(4*f.Train+intBytesPerPosition) + OpBytesTrain*f.Ops + eval
	}
	return harness.MemoryEstimate{Params: estimateBytes(params), Training: estimateBytes(training), Inference: estimateBytes(params + eval)}
}

// estimateBytes converts a float64 byte count to int64, saturating at maxEstimate
// (NaN gives maxEstimate too: a size was absurd).
func estimateBytes(v float64) int64 {
	if !(v < maxEstimate) {
		return maxEstimate
	}
	return int64(max(v, 0))
}
