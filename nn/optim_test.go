package nn_test

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"testing"

	"arbench/nn"
)

// fixture reads a committed reference file; a missing file fails the test.
func fixture(t *testing.T, name string) map[string]nn.Value {
	t.Helper()
	vals, err := nn.ReadSafetensorsFloats(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("reference fixture (regenerate with nn/testdata/gen_reference.py): %v", err)
	}
	return vals
}

func fixtureMeta(t *testing.T, name string) map[string]string {
	t.Helper()
	meta, err := nn.ReadSafetensorsMetadata(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("reference fixture: %v", err)
	}
	return meta
}

func get(t *testing.T, vals map[string]nn.Value, name string) nn.Value {
	t.Helper()
	v, ok := vals[name]
	if !ok {
		t.Fatalf("fixture lacks tensor %s", name)
	}
	return v
}

// assertClose fails unless got and want agree elementwise within abs.
func assertClose(t *testing.T, what string, got, want []float32, abs float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	worst, at := 0.0, -1
	for i := range got {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		if d > worst {
			worst, at = d, i
		}
	}
	if worst > abs {
		t.Errorf("%s: max |diff| %.3g at %d (got %v, want %v), tolerance %.1g", what, worst, at, got[at], want[at], abs)
	}
}

func adamParamSet() *nn.ParamSet {
	ps := nn.NewParamSet()
	ps.Add("a", 3, 4)
	ps.Add("b", 5)
	return ps
}

func TestAdamMatchesTorch(t *testing.T) {
	ref := fixture(t, "adam.safetensors")
	meta := fixtureMeta(t, "adam.safetensors")
	for _, cname := range []string{"plain", "decay"} {
		t.Run(cname, func(t *testing.T) {
			num := func(key string) float64 {
				s, ok := meta[cname+"."+key]
				if !ok {
					t.Fatalf("adam fixture metadata lacks %s.%s", cname, key)
				}
				var v float64
				if err := json.Unmarshal([]byte(s), &v); err != nil {
					t.Fatalf("metadata %s.%s = %q: %v", cname, key, s, err)
				}
				return v
			}
			var betas [2]float64
			if err := json.Unmarshal([]byte(meta[cname+".betas"]), &betas); err != nil {
				t.Fatalf("metadata %s.betas: %v", cname, err)
			}
			cfg := nn.AdamConfig{LR: num("lr"), Beta1: betas[0], Beta2: betas[1], Eps: num("eps"), WeightDecay: num("weight_decay")}
			ps := adamParamSet()
			for _, p := range ps.List() {
				copy(p.Data, get(t, ref, cname+".init."+p.Name).Data)
			}
			opt := nn.NewAdam(ps, cfg)
			for step := 1; step <= 3; step++ {
				for _, p := range ps.List() {
					copy(p.Grad, get(t, ref, cname+".grad"+strconv.Itoa(step)+"."+p.Name).Data)
				}
				opt.Step()
				for _, p := range ps.List() {
					want := get(t, ref, cname+".param"+strconv.Itoa(step)+"."+p.Name).Data
					assertClose(t, "step "+strconv.Itoa(step)+" "+p.Name, p.Data, want, 1e-6)
				}
			}
			if opt.Steps() != 3 {
				t.Errorf("Steps() = %d, want 3", opt.Steps())
			}
		})
	}
}

func TestAdamStateResume(t *testing.T) {
	rng := nn.NewRNG(7)
	setGrads := func(ps *nn.ParamSet, step int) {
		r := nn.NewRNG(uint64(100 + step))
		for _, p := range ps.List() {
			for i := range p.Grad {
				p.Grad[i] = float32(r.NormFloat64())
			}
		}
	}
	cfg := nn.AdamConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}
	full := adamParamSet()
	for _, p := range full.List() {
		nn.InitNormal(p, rng, 1)
	}
	resumed := adamParamSet()
	for i, p := range resumed.List() {
		copy(p.Data, full.List()[i].Data)
	}

	a := nn.NewAdam(full, cfg)
	for step := range 2 {
		setGrads(full, step)
		a.Step()
	}
	state := a.State()
	for i, p := range resumed.List() {
		copy(p.Data, full.List()[i].Data)
	}
	// Mutating the exported state must not affect the optimiser.
	state2 := a.State()
	state2.M[0][0] = 123

	b := nn.NewAdam(resumed, cfg)
	if err := b.SetState(state); err != nil {
		t.Fatal(err)
	}
	for step := 2; step < 4; step++ {
		setGrads(full, step)
		setGrads(resumed, step)
		a.Step()
		b.Step()
	}
	for i, p := range full.List() {
		q := resumed.List()[i]
		for j := range p.Data {
			if p.Data[j] != q.Data[j] {
				t.Fatalf("%s[%d]: resumed %v, uninterrupted %v", p.Name, j, q.Data[j], p.Data[j])
			}
		}
	}

	bad := a.State()
	bad.Names[1] = "c"
	if err := b.SetState(bad); err == nil {
		t.Error("SetState accepted a state with a wrong parameter name")
	}
	bad = a.State()
	bad.V[0] = bad.V[0][:3]
	if err := b.SetState(bad); err == nil {
		t.Error("SetState accepted a truncated moment")
	}
}

func TestAdamConfigValidate(t *testing.T) {
	if err := nn.DefaultAdamConfig().Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	for _, c := range []nn.AdamConfig{
		{LR: -1, Beta1: 0.9, Beta2: 0.999},
		{LR: 1e-3, Beta1: 1, Beta2: 0.999},
		{LR: 1e-3, Beta1: 0.9, Beta2: math.NaN()},
		{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: -1},
		{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, WeightDecay: -0.1},
	} {
		if c.Validate() == nil {
			t.Errorf("Validate accepted %+v", c)
		}
	}
}

func TestClipGradNormMatchesTorch(t *testing.T) {
	ref := fixture(t, "clip.safetensors")
	meta := fixtureMeta(t, "clip.safetensors")
	for _, cname := range []string{"clip", "noclip"} {
		t.Run(cname, func(t *testing.T) {
			maxNorm, err := strconv.ParseFloat(meta[cname+".max_norm"], 64)
			if err != nil {
				t.Fatalf("metadata %s.max_norm: %v", cname, err)
			}
			ps := adamParamSet()
			for _, p := range ps.List() {
				copy(p.Grad, get(t, ref, cname+".grad."+p.Name).Data)
			}
			norm := nn.ClipGradNorm(ps, maxNorm)
			want := float64(get(t, ref, cname+".norm").Data[0])
			if math.Abs(norm-want) > 1e-5*want {
				t.Errorf("norm %v, torch %v", norm, want)
			}
			for _, p := range ps.List() {
				assertClose(t, "clipped "+p.Name, p.Grad, get(t, ref, cname+".clipped."+p.Name).Data, 1e-6)
			}
			if cname == "clip" {
				// The clipped gradients have norm maxNorm (up to the 1e-6 guard).
				var s float64
				for _, p := range ps.List() {
					for _, g := range p.Grad {
						s += float64(g) * float64(g)
					}
				}
				if math.Abs(math.Sqrt(s)-maxNorm) > 1e-5 {
					t.Errorf("norm after clipping %v, want %v", math.Sqrt(s), maxNorm)
				}
			}
		})
	}
}

// A parameter whose gradient is zero for its first steps starts when its
// gradient first is not (torch.optim.Adam's treatment of a parameter
// whose .grad is None): its updates then equal a fresh optimiser's, and
// State/SetState carry the start.
func TestAdamLateStart(t *testing.T) {
	run := func(idle int) ([]float32, nn.AdamState) {
		ps := nn.NewParamSet()
		early, late := ps.Add("early", 2), ps.Add("late", 2)
		copy(early.Data, []float32{1, 2})
		copy(late.Data, []float32{3, -1})
		a := nn.NewAdam(ps, nn.DefaultAdamConfig())
		for range idle {
			copy(early.Grad, []float32{0.5, -0.5})
			late.Grad[0], late.Grad[1] = 0, 0
			a.Step()
		}
		for step := range 3 {
			copy(early.Grad, []float32{0.5, -0.5})
			copy(late.Grad, []float32{0.1 * float32(step+1), -0.2})
			a.Step()
		}
		return append([]float32(nil), late.Data...), a.State()
	}
	fresh, _ := run(0)
	got, st := run(7)
	if fresh[0] != got[0] || fresh[1] != got[1] {
		t.Errorf("late parameter after 7 idle steps: %v, want a fresh optimiser's %v", got, fresh)
	}
	if st.Step != 10 || st.Start[0] != 0 || st.Start[1] != 7 {
		t.Errorf("state: step %d, start %v; want 10, [0 7]", st.Step, st.Start)
	}
	ps := nn.NewParamSet()
	ps.Add("early", 2)
	ps.Add("late", 2)
	b := nn.NewAdam(ps, nn.DefaultAdamConfig())
	if err := b.SetState(st); err != nil || b.State().Start[1] != 7 {
		t.Errorf("SetState: %v, start %v", err, b.State().Start)
	}
	st.Start[1] = 11
	if err := b.SetState(st); err == nil {
		t.Error("a start after the step count was accepted")
	}
}

// Count is 0 for a nil set, a model's parameters before Setup.
func TestParamSetCountNil(t *testing.T) {
	var ps *nn.ParamSet
	if n := ps.Count(); n != 0 {
		t.Errorf("nil ParamSet Count = %d", n)
	}
	ps = nn.NewParamSet()
	ps.Add("w", 2, 3)
	if n := ps.Count(); n != 6 {
		t.Errorf("Count = %d, want 6", n)
	}
}

// BenchmarkAdamStep: one Adam step over the large LSTM's 2.4M parameters
// (vocabulary 256, width 512), in ns per element.
func BenchmarkAdamStep(b *testing.B) {
	ps := nn.NewParamSet()
	for _, s := range [][]int{{256, 512}, {2048, 512}, {2048, 512}, {2048}, {2048}, {256, 512}, {256}} {
		p := ps.Add(fmt.Sprintf("p%d", len(ps.List())), s...)
		for i := range p.Grad {
			p.Grad[i] = float32(i%7) - 3
		}
	}
	opt := nn.NewAdam(ps, nn.DefaultAdamConfig())
	n := 0
	for _, p := range ps.List() {
		n += len(p.Data)
	}
	b.ResetTimer()
	for range b.N {
		opt.Step()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/element")
}
