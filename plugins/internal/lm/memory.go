package lm

import (
	"arbench/harness"
)

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
// copies, six int64 values.
const intBytesPerPosition = 6 * 8

// maxEstimate caps every part of an estimate at 2 EiB, so that the parts,
// computed in float64, convert to int64 and sum (MemoryEstimate.Total)
// without overflow whatever the configured sizes.
const maxEstimate = 1 << 61

// Footprint is what a language model keeps in memory, in float32 values,
// as counted for the gorgonia backend: every operation of a compiled
// executable has its own output buffer, and a training executable one
// gradient buffer per differentiable operation, all kept between runs.
// (libtorch frees intermediate values, so there the estimate is high.)
type Footprint struct {
	// Params is the number of parameters.
	Params float64
	// Train and Eval are the values kept per position (one token of one
	// row) by a training and an evaluation executable.
	Train, Eval float64
}

// LogitValues is the per-position share of the output layer over a
// vocabulary of v tokens, 5v in training and evaluation alike: in training
// the logits, their bias sum and log-softmax with their gradients; in
// evaluation the logits, bias sum and log-softmax, the copy the backend
// returns and the per-row copy NextLogProbs hands out.
func LogitValues(v int) float64 { return 5 * float64(v) }

// Estimate turns a footprint into the harness's estimate for env, with
// P parameters, B = env.Batch, T = env.SeqLen and the activations of one
// evaluation batch A = EvalRows(env)·T·(4·Eval + 48), i.e. max(B, the
// task's eval batch)·T·(4·Eval + 48):
//
//	Params    = 4·P bytes
//	Inference = 4·P (Param.Grad, allocated with the parameters) + A
//	Training  = 4·P·4 (Param.Grad, the executable's gradient buffers, Adam's
//	            two moments) + B·T·(4·Train + 48) + A, 0 when B is 0
//
// where 48 bytes per position are the integer inputs and targets
// (intBytesPerPosition). Training includes A because the executable cache
// keeps the evaluation executable that the validation curve compiles
// during training next to the training one: measured over whole runs, the
// peak live heap is parameters + training. The arithmetic is float64 and
// each part saturates at 2 EiB, so absurd sizes give a huge estimate,
// never an overflow.
func (f Footprint) Estimate(env harness.Env) harness.MemoryEstimate {
	params := 4 * f.Params
	T := float64(max(env.SeqLen, 0))
	eval := float64(EvalRows(env)) * T * (4*f.Eval + intBytesPerPosition)
	var training float64
	if env.Batch > 0 {
		training = 4*params + float64(env.Batch)*T*(4*f.Train+intBytesPerPosition) + eval
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
