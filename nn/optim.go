package nn

import (
	"fmt"
	"math"
)

// AdamConfig holds Adam's hyper-parameters with torch.optim.Adam's meaning.
type AdamConfig struct {
	LR    float64
	Beta1 float64
	Beta2 float64
	Eps   float64
	// WeightDecay adds WeightDecay·θ to the gradient (L2 regularisation, as
	// torch.optim.Adam; not AdamW's decoupled decay).
	WeightDecay float64
}

// DefaultAdamConfig returns torch.optim.Adam's defaults: lr 1e-3, betas
// (0.9, 0.999), eps 1e-8, no weight decay.
func DefaultAdamConfig() AdamConfig {
	return AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
}

// Validate reports out-of-range hyper-parameters.
func (c AdamConfig) Validate() error {
	switch {
	case !(c.LR >= 0) || math.IsInf(c.LR, 0):
		return fmt.Errorf("adam: invalid learning rate %v", c.LR)
	case !(c.Beta1 >= 0 && c.Beta1 < 1):
		return fmt.Errorf("adam: invalid beta1 %v (want [0,1))", c.Beta1)
	case !(c.Beta2 >= 0 && c.Beta2 < 1):
		return fmt.Errorf("adam: invalid beta2 %v (want [0,1))", c.Beta2)
	case !(c.Eps >= 0):
		return fmt.Errorf("adam: invalid eps %v", c.Eps)
	case !(c.WeightDecay >= 0):
		return fmt.Errorf("adam: invalid weight decay %v", c.WeightDecay)
	}
	return nil
}

// Adam is the optimiser of Kingma & Ba (2015, Algorithm 1) with
// torch.optim.Adam's exact update (amsgrad=False, maximize=False): for step
// t = 1, 2, ... and each parameter θ with gradient g,
//
//	g   ← g + λθ                      (only when WeightDecay λ > 0)
//	m   ← β1·m + (1−β1)·g
//	v   ← β2·v + (1−β2)·g²
//	θ   ← θ − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε)
//
// so ε is added after the square root of the bias-corrected v̂. The moments
// are float32 like the parameters; each element's update is computed in
// float64.
//
// A parameter starts when it first receives a non-zero gradient: until
// then Step leaves it alone (no update, no moments), and from then on its
// t counts its own steps. This is torch.optim.Adam's treatment of a
// parameter whose .grad is still None, which gets no state and no step
// count until its first gradient; a model whose parameters sit out the
// first part of training (a student while its teacher trains) then gets
// the bias correction of a fresh optimiser, not one inflated by the steps
// it sat out. A parameter with a non-zero gradient at the first step, as
// in ordinary training, is updated exactly as before.
type Adam struct {
	cfg  AdamConfig
	ps   *ParamSet
	step int
	m, v [][]float32
	// start[k] is the number of steps taken before parameter k started,
	// −1 while it has not.
	start []int
}

// NewAdam returns an optimiser for every parameter of ps (in ps.List order,
// which must not change afterwards) with zero moments. It panics on an
// invalid configuration (see AdamConfig.Validate).
func NewAdam(ps *ParamSet, cfg AdamConfig) *Adam {
	if err := cfg.Validate(); err != nil {
		panic("nn: NewAdam: " + err.Error())
	}
	a := &Adam{cfg: cfg, ps: ps}
	for _, p := range ps.List() {
		a.m = append(a.m, make([]float32, len(p.Data)))
		a.v = append(a.v, make([]float32, len(p.Data)))
		a.start = append(a.start, -1)
	}
	return a
}

// started reports whether parameter k has started (see Adam), starting it
// at the current step when p's gradient is non-zero.
func (a *Adam) started(k int, p *Param) bool {
	if a.start[k] >= 0 {
		return true
	}
	for _, g := range p.Grad {
		if g != 0 {
			a.start[k] = a.step - 1
			return true
		}
	}
	return false
}

// Config returns the current hyper-parameters.
func (a *Adam) Config() AdamConfig { return a.cfg }

// SetLR changes the learning rate (for schedules); the moments are kept.
func (a *Adam) SetLR(lr float64) { a.cfg.LR = lr }

// Steps returns the number of Step calls so far (t in the update rule).
func (a *Adam) Steps() int { return a.step }

// Step applies one update to every parameter from its Grad.
func (a *Adam) Step() {
	list := a.ps.List()
	if len(list) != len(a.m) {
		panic(fmt.Sprintf("nn: Adam.Step: parameter set has %d parameters, optimiser was built for %d", len(list), len(a.m)))
	}
	a.step++
	c := a.cfg
	var jobs []adamJob
	for k, p := range list {
		m, v := a.m[k], a.v[k]
		if len(p.Data) != len(m) || len(p.Grad) != len(m) {
			panic(fmt.Sprintf("nn: Adam.Step: parameter %s changed size", p.Name))
		}
		if !a.started(k, p) {
			continue
		}
		t := float64(a.step - a.start[k])
		u := adamUpdate{
			b1: c.Beta1, omb1: 1 - c.Beta1, b2: c.Beta2, omb2: 1 - c.Beta2,
			stepSize: c.LR / (1 - math.Pow(c.Beta1, t)), bc2Sqrt: math.Sqrt(1 - math.Pow(c.Beta2, t)),
			eps: c.Eps, wd: c.WeightDecay,
		}
		for lo := 0; lo < len(m); lo += adamChunk {
			hi := min(lo+adamChunk, len(m))
			jobs = append(jobs, adamJob{u: u, p: p.Data[lo:hi], g: p.Grad[lo:hi], m: m[lo:hi], v: v[lo:hi]})
		}
	}
	runAdamJobs(jobs)
}

// AdamState is Adam's resumable state as plain slices: the step count and
// the first and second moments of each parameter, named and ordered as the
// ParamSet's List.
type AdamState struct {
	Step  int
	Names []string
	M, V  [][]float32
	// Start holds, per parameter, the steps taken before it started (−1:
	// not yet; see Adam); nil means every parameter started at step 0.
	Start []int
}

// State returns a deep copy of the optimiser state.
func (a *Adam) State() AdamState {
	s := AdamState{Step: a.step, Start: append([]int(nil), a.start...)}
	for k, p := range a.ps.List() {
		s.Names = append(s.Names, p.Name)
		s.M = append(s.M, append([]float32(nil), a.m[k]...))
		s.V = append(s.V, append([]float32(nil), a.v[k]...))
	}
	return s
}

// SetState restores a state returned by State (possibly of another
// optimiser over an identically shaped ParamSet). It checks names and sizes
// and leaves the optimiser unchanged on error.
func (a *Adam) SetState(s AdamState) error {
	list := a.ps.List()
	if s.Step < 0 {
		return fmt.Errorf("adam: set state: negative step %d", s.Step)
	}
	if len(s.Names) != len(list) || len(s.M) != len(list) || len(s.V) != len(list) {
		return fmt.Errorf("adam: set state: %d names, %d first and %d second moments for %d parameters",
			len(s.Names), len(s.M), len(s.V), len(list))
	}
	for k, p := range list {
		if s.Names[k] != p.Name {
			return fmt.Errorf("adam: set state: entry %d is %q, want parameter %q", k, s.Names[k], p.Name)
		}
		if len(s.M[k]) != len(p.Data) || len(s.V[k]) != len(p.Data) {
			return fmt.Errorf("adam: set state: %s has moments of length %d and %d, want %d",
				p.Name, len(s.M[k]), len(s.V[k]), len(p.Data))
		}
	}
	if s.Start != nil && len(s.Start) != len(list) {
		return fmt.Errorf("adam: set state: %d start steps for %d parameters", len(s.Start), len(list))
	}
	for k, st := range s.Start {
		if st < -1 || st > s.Step {
			return fmt.Errorf("adam: set state: %s starts after %d steps, outside [-1, %d]", list[k].Name, st, s.Step)
		}
	}
	a.step = s.Step
	for k := range list {
		a.m[k] = append([]float32(nil), s.M[k]...)
		a.v[k] = append([]float32(nil), s.V[k]...)
		a.start[k] = 0
		if s.Start != nil {
			a.start[k] = s.Start[k]
		}
	}
	return nil
}

// ClipGradNorm is torch.nn.utils.clip_grad_norm_(params, maxNorm) with the
// L2 norm: it computes the global norm of all gradients (in float64) and,
// when maxNorm/(norm+1e-6) < 1, scales every gradient by that factor. It
// returns the norm before clipping. A non-finite norm is returned as is; an
// infinite one zeroes the gradients and a NaN leaves them unchanged, so
// callers should check the result before stepping. maxNorm must be
// positive.
func ClipGradNorm(ps *ParamSet, maxNorm float64) float64 {
	if !(maxNorm > 0) {
		panic(fmt.Sprintf("nn: ClipGradNorm: maxNorm %v must be positive", maxNorm))
	}
	var sum float64
	for _, p := range ps.List() {
		for _, g := range p.Grad {
			sum += float64(g) * float64(g)
		}
	}
	norm := math.Sqrt(sum)
	coef := maxNorm / (norm + 1e-6)
	if coef < 1 {
		c := float32(coef)
		for _, p := range ps.List() {
			for i := range p.Grad {
				p.Grad[i] *= c
			}
		}
	}
	return norm
}
