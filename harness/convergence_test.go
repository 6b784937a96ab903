package harness_test

import (
	"context"
	"math"
	"strings"
	"testing"

	"arbench/harness"
)

func curve(steps []int, values ...float64) harness.Curve {
	c := harness.Curve{Name: harness.CurveValidLoss, Unit: "nats/token", Steps: steps}
	for _, v := range values {
		c.Values = append(c.Values, harness.Number(v))
	}
	return c
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// A straight line has its slope exactly, an interval of width ~0, and is
// still improving; points before the last quarter are not fitted.
func TestValidSlopeLine(t *testing.T) {
	steps := []int{100, 750, 800, 850, 900, 950, 1000}
	var ys []float64
	for _, s := range steps {
		ys = append(ys, 2-0.5*float64(s)/1000)
	}
	ys[0] = 99 // before the window
	v := harness.FitValidSlope(curve(steps, ys...), 1000)
	if v.Points != 6 || v.FromStep != 750 || v.ToStep != 1000 || v.Unit != "nats/token per 1000 steps" || v.Note != "" {
		t.Errorf("slope = %+v", v)
	}
	if !near(float64(v.Slope), -0.5, 1e-12) || v.CI == nil || !near(float64(v.CI.Lo), -0.5, 1e-9) || !near(float64(v.CI.Hi), -0.5, 1e-9) {
		t.Fatalf("slope %v, interval %+v; want -0.5 exactly", v.Slope, v.CI)
	}
	if v.CI.Method != harness.CIStudentT || v.CI.N != 6 || v.CI.Of != "validation points" || v.CI.Level != 0.95 {
		t.Errorf("interval %+v", v.CI)
	}
	if c := (harness.RunRecord{ValidSlope: v}).Convergence(); c != harness.ConvergenceImproving || c.Converged() {
		t.Errorf("a falling line: %q, converged %v", c, c.Converged())
	}
	if !strings.HasPrefix(v.String(), "valid loss slope -0.5 [-0.5, -0.5] nats/token per 1000 steps over steps 750-1000 (6 points)") {
		t.Errorf("String() = %q", v.String())
	}
}

// Three noisy points, worked by hand: x = 3, 3.5, 4 (thousands of steps),
// y = 1, 0.5, 0.6: Sxx = 0.5, Sxy = -0.2, slope -0.4; residuals 0.1, -0.2,
// 0.1, MS_res = 0.06/1, se = √(0.06/0.5) = 0.34641; t(0.975, 1) =
// 12.7062, so the interval is -0.4 ± 4.40156: it contains 0 (flat).
func TestValidSlopeKnownInterval(t *testing.T) {
	v := harness.FitValidSlope(curve([]int{3000, 3500, 4000}, 1, 0.5, 0.6), 4000)
	half := 12.706204736174707 * math.Sqrt(0.12)
	if !near(float64(v.Slope), -0.4, 1e-12) || !near(float64(v.CI.Lo), -0.4-half, 1e-9) || !near(float64(v.CI.Hi), -0.4+half, 1e-9) {
		t.Errorf("slope %v [%v, %v], want -0.4 ± %v", v.Slope, v.CI.Lo, v.CI.Hi, half)
	}
	if c := (harness.RunRecord{ValidSlope: v}).Convergence(); c != harness.ConvergenceFlat || !c.Converged() {
		t.Errorf("verdict %q", c)
	}
}

func TestValidSlopeFlatAndRising(t *testing.T) {
	flat := harness.FitValidSlope(curve([]int{80, 90, 100}, 0.7, 0.7, 0.7), 100)
	if flat.Slope != 0 || flat.CI.Lo != 0 || flat.CI.Hi != 0 {
		t.Errorf("a flat curve: %+v %+v", flat, flat.CI)
	}
	if c := (harness.RunRecord{ValidSlope: flat}).Convergence(); c != harness.ConvergenceFlat {
		t.Errorf("a flat curve: %q", c)
	}
	rising := harness.FitValidSlope(curve([]int{80, 90, 100}, 1, 1.1, 1.2), 100)
	if !near(float64(rising.Slope), 10, 1e-9) {
		t.Errorf("rising slope %v, want 10 per 1000 steps", rising.Slope)
	}
	if c := (harness.RunRecord{ValidSlope: rising}).Convergence(); c != harness.ConvergenceRising || !c.Converged() {
		t.Errorf("a rising curve: %q", c)
	}
}

func TestValidSlopeTooFewPoints(t *testing.T) {
	v := harness.FitValidSlope(curve([]int{500, 1000}, 1, 0.5), 1000)
	if !math.IsNaN(float64(v.Slope)) || v.CI != nil || v.Points != 1 {
		t.Errorf("slope = %+v", v)
	}
	want := "too few validation points to judge convergence: 1 in the last quarter of training (steps 750-1000), need 3; eval_every <= 125 gives them"
	if v.Note != want || v.String() != want {
		t.Errorf("note %q\nwant %q", v.Note, want)
	}
	if c := (harness.RunRecord{ValidSlope: v}).Convergence(); c != harness.ConvergenceUnknown || c.Converged() {
		t.Errorf("verdict %q", c)
	}
	if c := (harness.RunRecord{}).Convergence(); c != harness.ConvergenceUnknown {
		t.Errorf("a run without a slope: %q", c)
	}
	short := harness.FitValidSlope(curve([]int{2, 4, 6}, 1, 0.9, 0.8), 6)
	if short.Points != 1 || !strings.HasSuffix(short.Note, "need 3") {
		t.Errorf("a 6-step run: %+v", short)
	}
}

// A run records the slope of its own validation curve; too short a run
// says why it has none, and the record survives results.json.
func TestRunRecordsValidSlope(t *testing.T) {
	e := experiment(t, "")
	e.SetTrain(func(c *harness.TrainConfig) { c.Steps = 40 })
	if _, err := harness.Run(context.Background(), e, runOpts()); err != nil {
		t.Fatal(err)
	}
	rf, err := harness.LoadResults(e.Out)
	if err != nil {
		t.Fatal(err)
	}
	lm := rf.Runs[0]
	var valid harness.Curve
	for _, c := range rf.Curves {
		if c.Model == lm.Model && c.Seed == lm.Seed && c.Name == harness.CurveValidLoss {
			valid = c
		}
	}
	want := harness.FitValidSlope(valid, 40)
	if lm.Model != "fake-lm" || lm.ValidSlope == nil || lm.ValidSlope.Points != 6 || lm.ValidSlope.FromStep != 30 ||
		!sameJSONOf(t, lm.ValidSlope, want) || lm.Convergence() == harness.ConvergenceUnknown {
		t.Errorf("recorded %+v, want %+v", lm.ValidSlope, want)
	}
	if uni := rf.Runs[1]; uni.ValidSlope != nil || uni.Convergence() != harness.ConvergenceUnknown {
		t.Errorf("an untrained run has slope %+v", uni.ValidSlope)
	}

	short := experiment(t, "") // 6 steps, validation every 2
	if _, err := harness.Run(context.Background(), short, runOpts()); err != nil {
		t.Fatal(err)
	}
	if rf, err = harness.LoadResults(short.Out); err != nil {
		t.Fatal(err)
	}
	v := rf.Runs[0].ValidSlope
	if v == nil || !math.IsNaN(float64(v.Slope)) || !strings.HasPrefix(v.Note, "too few validation points") || rf.Runs[0].LR != 0.05 {
		t.Errorf("a 6-step run: slope %+v, lr %v", v, rf.Runs[0].LR)
	}
}
