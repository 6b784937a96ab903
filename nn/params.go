package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Param is one named parameter tensor. Names follow PyTorch state_dict
// conventions (e.g. "rnn.weight_ih_l0") so weights round-trip through
// safetensors files that PyTorch reads and writes.
type Param struct {
	Name  string
	Shape []int
	Data  []float32
	// Grad has the same length as Data; training executables overwrite it.
	Grad []float32
}

// Size returns the number of elements.
func (p *Param) Size() int { return len(p.Data) }

// ParamSet is an ordered collection of uniquely named parameters.
type ParamSet struct {
	list  []*Param
	index map[string]*Param
}

// NewParamSet returns an empty set.
func NewParamSet() *ParamSet { return &ParamSet{index: map[string]*Param{}} }

// Add creates a zero-valued parameter. It panics on a duplicate or empty
// name or a non-positive dimension (programmer errors).
func (s *ParamSet) Add(name string, shape ...int) *Param {
	if name == "" {
		panic("nn: empty parameter name")
	}
	if _, dup := s.index[name]; dup {
		panic("nn: duplicate parameter " + name)
	}
	n := 1
	for _, d := range shape {
		if d <= 0 {
			panic(fmt.Sprintf("nn: parameter %s has non-positive dimension in %v", name, shape))
		}
		n *= d
	}
	p := &Param{Name: name, Shape: append([]int(nil), shape...), Data: make([]float32, n), Grad: make([]float32, n)}
	s.list = append(s.list, p)
	s.index[name] = p
	return p
}

// Get returns the parameter called name, or nil.
func (s *ParamSet) Get(name string) *Param { return s.index[name] }

// List returns the parameters in insertion order.
func (s *ParamSet) List() []*Param { return s.list }

// Count returns the total number of scalar parameters; 0 for a nil set
// (a model before Setup), so a model's Info can report it unconditionally.
func (s *ParamSet) Count() int {
	if s == nil {
		return 0
	}
	n := 0
	for _, p := range s.list {
		n += len(p.Data)
	}
	return n
}

// ZeroGrad clears every gradient.
func (s *ParamSet) ZeroGrad() {
	for _, p := range s.list {
		clear(p.Grad)
	}
}

// NewRNG returns the deterministic generator arbench uses for parameter
// initialisation and sampling.
func NewRNG(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)) }

// InitUniform fills p with U(-bound, bound), the PyTorch default for
// nn.Linear, nn.RNN and nn.LSTM with bound = 1/sqrt(fan_in).
func InitUniform(p *Param, rng *rand.Rand, bound float64) {
	for i := range p.Data {
		p.Data[i] = float32((rng.Float64()*2 - 1) * bound)
	}
}

// InitNormal fills p with N(0, std²), the PyTorch default for nn.Embedding (std 1).
func InitNormal(p *Param, rng *rand.Rand, std float64) {
	for i := range p.Data {
		p.Data[i] = float32(rng.NormFloat64() * std)
	}
}

// InitConst fills p with v (e.g. LayerNorm weight 1, bias 0).
func InitConst(p *Param, v float32) {
	for i := range p.Data {
		p.Data[i] = v
	}
}

// DropoutMask returns the keep-mask multipliers (0 or 1/(1-p)) for the k-th
// Dropout call (k counts from 0 in build order) of a run with the given seed.
// Every backend uses it so that runs agree across backends.
func DropoutMask(seed uint64, k, n int, p float32) []float32 {
	rng := rand.New(rand.NewPCG(seed, uint64(k)+1))
	m := make([]float32, n)
	scale := float32(1 / (1 - float64(p)))
	for i := range m {
		if rng.Float32() >= p {
			m[i] = scale
		}
	}
	return m
}

// Bound returns 1/sqrt(fanIn), PyTorch's default initialisation bound.
func Bound(fanIn int) float64 { return 1 / math.Sqrt(float64(fanIn)) }
