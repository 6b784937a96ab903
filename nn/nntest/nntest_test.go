package nntest_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"arbench/nn"
	"arbench/nn/gorgonia"
	"arbench/nn/nntest"
)

// recorder is a testing.TB that records failures instead of reporting them.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

// record runs f against a recorder in its own goroutine (Fatalf ends it).
func record(t *testing.T, f func(tb testing.TB)) []string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r.msgs
}

// skewed wraps a backend and scales every gradient of one parameter,
// simulating a wrong backward rule.
type skewed struct {
	nn.Backend
	name   string
	factor float32
}

func (s skewed) Compile(spec nn.Spec, build nn.BuildFunc) (nn.Executable, error) {
	exe, err := s.Backend.Compile(spec, build)
	if err != nil {
		return nil, err
	}
	return skewedExe{exe, spec.Params.Get(s.name), s.factor}, nil
}

type skewedExe struct {
	nn.Executable
	p      *nn.Param
	factor float32
}

func (e skewedExe) Run(ctx context.Context, f nn.Feeds) (*nn.Result, error) {
	res, err := e.Executable.Run(ctx, f)
	if err == nil && e.p != nil {
		for i := range e.p.Grad {
			e.p.Grad[i] *= e.factor
		}
	}
	return res, err
}

func model() (*nn.ParamSet, nn.Feeds, nn.BuildFunc) {
	ps := nn.NewParamSet()
	w := nntest.RandomParam(ps, "w", 1, 1, 3, 4)
	b := nntest.RandomParam(ps, "b", 2, 1, 4)
	feeds := nn.Feeds{Floats: map[string][]float32{"x": nntest.RandomData(6, 3, 1)}}
	build := func(g nn.Graph) error {
		h := g.Tanh(g.Add(g.MatMul(g.Floats("x", 2, 3), g.Param(w), false, false), g.Param(b)))
		g.Loss(nntest.Projection(g, g.LogSoftmax(h), 4))
		return nil
	}
	return ps, feeds, build
}

func TestCheckGradientsPasses(t *testing.T) {
	ps, feeds, build := model()
	before := append([]float32(nil), ps.Get("w").Data...)
	msgs := record(t, func(tb testing.TB) {
		nntest.CheckGradientsWith(tb, gorgonia.New(), ps, feeds, build, nntest.Options{Inputs: []string{"x"}})
	})
	if len(msgs) != 0 {
		t.Fatalf("correct gradients rejected: %v", msgs)
	}
	nntest.AssertClose(t, "restored w", ps.Get("w").Data, before, 0)
}

func TestCheckGradientsCatchesErrors(t *testing.T) {
	ps, feeds, build := model()
	msgs := record(t, func(tb testing.TB) {
		nntest.CheckGradients(tb, skewed{gorgonia.New(), "b", 1.1}, ps, feeds, build, 1e-3)
	})
	if len(msgs) == 0 {
		t.Fatal("a 10% gradient error in b went unnoticed")
	}
	for _, m := range msgs {
		if !strings.Contains(m, "b[") && !strings.Contains(m, "b:") {
			t.Errorf("message does not name parameter b: %q", m)
		}
	}
}

func TestInputsAsParams(t *testing.T) {
	ps, feeds, build := model()
	set, b2, err := nntest.InputsAsParams(ps, feeds, build, "x")
	if err != nil {
		t.Fatal(err)
	}
	if set.Get("w") == ps.Get("w") || &set.Get("w").Data[0] != &ps.Get("w").Data[0] {
		t.Fatal("stand-in for w must be a new Param sharing w's Data")
	}
	x := set.Get("input.x")
	if x == nil || len(x.Data) != 6 || x.Data[0] != feeds.Floats["x"][0] {
		t.Fatalf("input.x = %+v", x)
	}
	exe, err := gorgonia.New().Compile(nn.Spec{Key: "inputs", Params: set, Train: true}, b2)
	if err != nil {
		t.Fatal(err)
	}
	defer exe.Close()
	if _, err := exe.Run(context.Background(), nn.Feeds{}); err != nil {
		t.Fatal(err)
	}
	nonzero := false
	for _, v := range x.Grad {
		nonzero = nonzero || v != 0
	}
	if !nonzero {
		t.Fatal("no gradient reached input x")
	}
	if _, _, err := nntest.InputsAsParams(ps, feeds, build, "missing"); err == nil {
		t.Fatal("unknown input accepted")
	}
}
