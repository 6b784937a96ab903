// Package nntest holds backend-agnostic test helpers for nn backends and
// layers, chiefly a finite-difference gradient checker.
package nntest

import (
	"context"
	"fmt"
	"math"
	"testing"

	"arbench/nn"
)

// Options tunes CheckGradientsWith.
type Options struct {
	// Eps is the central-difference step (default 1e-2, suited to float32).
	Eps float64
	// RelTol and AbsTol bound the mismatch: an entry fails when
	// |analytic - numeric| > AbsTol + RelTol·max(|analytic|, |numeric|).
	// Defaults: RelTol 1e-2, AbsTol 1e-3.
	RelTol, AbsTol float64
	// MaxPerParam caps the entries checked per parameter; larger parameters
	// are checked on a random subset (default 64; negative checks all).
	MaxPerParam int
	// Seed picks the subset of entries.
	Seed uint64
	// Inputs names Floats inputs (fed through feeds.Floats) whose gradients
	// are checked too: each is replaced by a parameter "input.<name>"
	// holding the fed values (see InputsAsParams).
	Inputs []string
}

func (o Options) withDefaults() Options {
	if o.Eps == 0 {
		o.Eps = 1e-2
	}
	if o.RelTol == 0 {
		o.RelTol = 1e-2
	}
	if o.AbsTol == 0 {
		o.AbsTol = 1e-3
	}
	if o.MaxPerParam == 0 {
		o.MaxPerParam = 64
	}
	return o
}

// CheckGradients compiles build as a training executable on b and compares
// the gradient Run writes into every Param.Grad of ps with central
// differences (L(θ+ε) - L(θ-ε)) / 2ε of the Loss, failing t with the
// parameter name and index of each mismatch. tol is used as both the
// relative and the absolute tolerance (see Options); pass 0 for the
// defaults. Feeds (including Seed, so dropout masks stay fixed) are reused
// for every evaluation. Parameter values are restored afterwards.
//
// It also checks the Run contract: every Param.Grad of ps is poisoned with
// NaN first, so a backend must overwrite all of them (with zeros for
// parameters the Loss does not depend on), and the Loss must be the same
// on two identical runs.
func CheckGradients(t testing.TB, b nn.Backend, ps *nn.ParamSet, feeds nn.Feeds, build nn.BuildFunc, tol float64) {
	t.Helper()
	CheckGradientsWith(t, b, ps, feeds, build, Options{RelTol: tol, AbsTol: tol})
}

// CheckGradientsWith is CheckGradients with explicit options.
func CheckGradientsWith(t testing.TB, b nn.Backend, ps *nn.ParamSet, feeds nn.Feeds, build nn.BuildFunc, opts Options) {
	t.Helper()
	opts = opts.withDefaults()
	if len(opts.Inputs) > 0 {
		var err error
		if ps, build, err = InputsAsParams(ps, feeds, build, opts.Inputs...); err != nil {
			t.Fatalf("gradcheck: %v", err)
		}
	}
	exe, err := b.Compile(nn.Spec{Key: "gradcheck", Params: ps, Train: true}, build)
	if err != nil {
		t.Fatalf("gradcheck: compile: %v", err)
	}
	defer exe.Close()
	ctx := context.Background()
	loss := func() float64 {
		t.Helper()
		res, err := exe.Run(ctx, feeds)
		if err != nil {
			t.Fatalf("gradcheck: run: %v", err)
		}
		if math.IsNaN(res.Loss) || math.IsInf(res.Loss, 0) {
			t.Fatalf("gradcheck: loss is %v", res.Loss)
		}
		return res.Loss
	}
	for _, p := range ps.List() {
		fill(p.Grad, float32(math.NaN())) // Run must overwrite every gradient
	}
	l0 := loss()
	analytic := map[*nn.Param][]float32{}
	for _, p := range ps.List() {
		analytic[p] = append([]float32(nil), p.Grad...)
	}
	if l1 := loss(); l1 != l0 {
		t.Fatalf("gradcheck: loss is not deterministic: %v then %v", l0, l1)
	}
	rng := nn.NewRNG(opts.Seed)
	for _, p := range ps.List() {
		ana := analytic[p]
		idx := make([]int, len(p.Data))
		for i := range idx {
			idx[i] = i
		}
		if opts.MaxPerParam > 0 && len(idx) > opts.MaxPerParam {
			rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
			idx = idx[:opts.MaxPerParam]
		}
		fails := 0
		for _, i := range idx {
			orig := p.Data[i]
			p.Data[i] = orig + float32(opts.Eps)
			lp := loss()
			p.Data[i] = orig - float32(opts.Eps)
			lm := loss()
			p.Data[i] = orig
			// Use the step actually taken in float32.
			h := float64(orig+float32(opts.Eps)) - float64(orig-float32(opts.Eps))
			num := (lp - lm) / h
			a := float64(ana[i])
			if !(math.Abs(a-num) <= opts.AbsTol+opts.RelTol*math.Max(math.Abs(a), math.Abs(num))) {
				fails++
				if fails <= 5 {
					t.Errorf("gradcheck: %s[%d] (of shape %v): analytic %.6g, numeric %.6g", p.Name, i, p.Shape, a, num)
				}
			}
		}
		if fails > 5 {
			t.Errorf("gradcheck: %s: %d of %d checked entries mismatch", p.Name, fails, len(idx))
		}
	}
	loss() // leave the gradients of the restored parameters behind
}

// InputsAsParams rewrites a computation so that the named Floats inputs
// become parameters, which lets any backend report their gradients. It
// returns a new ParamSet holding, in order, a stand-in for every parameter
// of ps (sharing its Data and Grad slices) and one parameter
// "input.<name>" of shape [len] per input, initialised from feeds.Floats;
// the returned build function binds those instead of the originals.
func InputsAsParams(ps *nn.ParamSet, feeds nn.Feeds, build nn.BuildFunc, names ...string) (*nn.ParamSet, nn.BuildFunc, error) {
	set := nn.NewParamSet()
	w := &inputGraph{params: map[*nn.Param]*nn.Param{}, inputs: map[string]*nn.Param{}}
	for _, p := range ps.List() {
		q := set.Add(p.Name, p.Shape...)
		q.Data, q.Grad = p.Data, p.Grad
		w.params[p] = q
	}
	for _, name := range names {
		data, ok := feeds.Floats[name]
		if !ok {
			return nil, nil, fmt.Errorf("input %q is not in feeds.Floats", name)
		}
		q := set.Add("input."+name, len(data))
		copy(q.Data, data)
		w.inputs[name] = q
	}
	return set, func(g nn.Graph) error {
		return build(&inputGraph{Graph: g, params: w.params, inputs: w.inputs})
	}, nil
}

// inputGraph substitutes parameters for parameters and inputs.
type inputGraph struct {
	nn.Graph
	params map[*nn.Param]*nn.Param
	inputs map[string]*nn.Param
}

func (g *inputGraph) Param(p *nn.Param) nn.Tensor {
	if q, ok := g.params[p]; ok {
		return g.Graph.Param(q)
	}
	return g.Graph.Param(p)
}

func (g *inputGraph) Floats(name string, shape ...int) nn.Tensor {
	q, ok := g.inputs[name]
	if !ok {
		return g.Graph.Floats(name, shape...)
	}
	n := 1
	for _, d := range shape {
		n *= d
	}
	if n != len(q.Data) {
		panic(fmt.Sprintf("nntest: input %q declared with shape %v but fed %d values", name, shape, len(q.Data)))
	}
	return g.Graph.Reshape(g.Graph.Param(q), shape...)
}

func fill(x []float32, v float32) {
	for i := range x {
		x[i] = v
	}
}

// Projection reduces x to a scalar with fixed pseudo-random weights,
// Σ x·w with w ~ U(-1,1) drawn from seed, so that a gradient check of the
// result exercises every element of x with a different upstream gradient.
func Projection(g nn.Graph, x nn.Tensor, seed uint64) nn.Tensor {
	shape := x.Shape()
	n := 1
	for _, d := range shape {
		n *= d
	}
	w := RandomData(n, seed, 1)
	return g.Sum(g.Mul(x, g.Const(w, shape...)))
}

// RandomData returns n values from U(-scale, scale) drawn from seed.
func RandomData(n int, seed uint64, scale float64) []float32 {
	rng := nn.NewRNG(seed)
	out := make([]float32, n)
	for i := range out {
		out[i] = float32((rng.Float64()*2 - 1) * scale)
	}
	return out
}

// RandomParam adds a parameter to ps filled from U(-scale, scale).
func RandomParam(ps *nn.ParamSet, name string, seed uint64, scale float64, shape ...int) *nn.Param {
	p := ps.Add(name, shape...)
	copy(p.Data, RandomData(len(p.Data), seed, scale))
	return p
}

// AssertClose fails t when got and want differ in length or any element by
// more than tol·(1+|want|).
func AssertClose(t testing.TB, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d values, want %d", what, len(got), len(want))
	}
	bad := 0
	for i := range want {
		if d := math.Abs(float64(got[i]) - float64(want[i])); !(d <= tol*(1+math.Abs(float64(want[i])))) {
			bad++
			if bad <= 5 {
				t.Errorf("%s[%d] = %.7g, want %.7g", what, i, got[i], want[i])
			}
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d of %d values differ", what, bad, len(want))
	}
}
