package nn_test

import (
	"context"
	"slices"
	"testing"

	"arbench/nn"
)

// runOnly hides an executable's optional interfaces: nn.RunInto must
// fall back to Run.
type runOnly struct{ nn.Executable }

// TestRunInto: through the backend's IntoRunner and through the Run
// fallback, nn.RunInto gives each run's outputs and loss as Run does; the
// IntoRunner writes a second run into the arrays of the first, and an
// entry of the wrong size (a result of another executable) is replaced,
// not written past.
func TestRunInto(t *testing.T) {
	exe, err := testBackend(t).Compile(nn.Spec{Key: "test/runinto"}, func(g nn.Graph) error {
		x := g.Floats("x", 2, 3)
		g.Output("y", g.Scale(x, 2))
		g.Output("s", g.Sum(x))
		g.Loss(g.Sum(g.Mul(x, x)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer exe.Close()
	ctx := context.Background()
	feeds := func(v float32) nn.Feeds {
		return nn.Feeds{Floats: map[string][]float32{"x": {v, 1, 2, 3, 4, 5}}}
	}
	for _, e := range []nn.Executable{exe, runOnly{exe}} {
		_, into := e.(nn.IntoRunner)
		res := nn.Result{Outputs: map[string]nn.Value{"y": {Shape: []int{1, 7}, Data: make([]float32, 7)}}}
		var first []float32
		for _, v := range []float32{0, 10} {
			want, err := exe.Run(ctx, feeds(v))
			if err != nil {
				t.Fatal(err)
			}
			if err := nn.RunInto(ctx, e, feeds(v), &res); err != nil {
				t.Fatal(err)
			}
			for name, w := range want.Outputs {
				got := res.Outputs[name]
				if !slices.Equal(got.Data, w.Data) || !slices.Equal(got.Shape, w.Shape) {
					t.Errorf("IntoRunner %v, x0 = %v: %s = %v %v, Run gives %v %v", into, v, name, got.Shape, got.Data, w.Shape, w.Data)
				}
			}
			if res.Loss != want.Loss {
				t.Errorf("IntoRunner %v: loss %v, Run gives %v", into, res.Loss, want.Loss)
			}
			if first == nil {
				first = res.Outputs["y"].Data
			} else if into && &first[0] != &res.Outputs["y"].Data[0] {
				t.Error("RunInto did not reuse the first run's array")
			}
		}
	}
}
