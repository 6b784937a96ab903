package harness

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/stat/distuv"

	"arbench/internal/stats"
)

// ValidSlope is the trend of a run's validation loss at the end of
// training (RunRecord.ValidSlope): the ordinary least-squares slope of the
// validation points in the last quarter of the steps (from step
// steps − ⌊steps/4⌋ on, the last point included), in the validation
// loss's unit per 1,000 steps, with its Student t interval. Convergence
// reads it.
type ValidSlope struct {
	// Slope is the least-squares slope; NaN when fewer than
	// MinSlopePoints points lie in the window (Note says so).
	Slope Number `json:"slope"`
	// Unit is the slope's unit ("nats/token per 1000 steps").
	Unit string `json:"unit"`
	// CI is the slope's 95% t interval over Points − 2 degrees of
	// freedom; nil with a NaN Slope.
	CI *Interval `json:"ci,omitempty"`
	// Points is the number of validation points in the window, which
	// spans steps FromStep to ToStep (the last step).
	Points   int `json:"points"`
	FromStep int `json:"from_step"`
	ToStep   int `json:"to_step"`
	// Note says why there is no slope.
	Note string `json:"note,omitempty"`
}

// MinSlopePoints is the fewest validation points a slope is fitted to (a
// t interval needs one degree of freedom beyond the line's two).
const MinSlopePoints = 3

// noValidNote is the ValidSlope note of a run without a validation loss.
const noValidNote = "the task measures no validation loss for this model: convergence not judged"

// FitValidSlope fits the ValidSlope of a run of steps steps (> 0) to its
// validation curve. The slope is β̂ = Sxy/Sxx with x the step in
// thousands, and its interval β̂ ± t_{0.975, n−2}·√(MS_res/Sxx), MS_res the
// residual sum of squares over n − 2 (the t interval of a straight line's
// slope; Draper & Smith, "Applied Regression Analysis", 3rd ed. 1998,
// ch. 1). The interval treats the points' deviations from the line as
// independent; successive validation losses of one run are not quite (the
// same validation set, a smooth trajectory), so it is a yardstick for
// "still improving" rather than an exact coverage statement.
func FitValidSlope(valid Curve, steps int) *ValidSlope {
	vs := &ValidSlope{Slope: Number(math.NaN()), Unit: valid.Unit + " per 1000 steps", FromStep: steps - steps/4, ToStep: steps}
	var xs, ys []float64
	for i, s := range valid.Steps {
		if s >= vs.FromStep && s <= steps && finite(float64(valid.Values[i])) {
			xs = append(xs, float64(s))
			ys = append(ys, float64(valid.Values[i]))
		}
	}
	vs.Points = len(xs)
	if vs.Points < MinSlopePoints {
		vs.Note = fmt.Sprintf("too few validation points to judge convergence: %d in the last quarter of training (steps %d-%d), need %d",
			vs.Points, vs.FromStep, steps, MinSlopePoints)
		if steps >= 8 {
			vs.Note += fmt.Sprintf("; eval_every <= %d gives them", steps/8)
		}
		return vs
	}
	slope, se := olsSlope(xs, ys)
	half := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(vs.Points - 2)}.Quantile((1+stats.Level)/2) * se
	vs.Slope = Number(slope)
	vs.CI = &Interval{Lo: Number(slope - half), Hi: Number(slope + half), Level: stats.Level, Method: CIStudentT,
		N: vs.Points, Of: "validation points"}
	return vs
}

// olsSlope returns the least-squares slope of ys on xs (xs in steps, the
// slope per 1,000 steps) and its standard error. Both are measured from
// the first point, so that a flat curve gives exactly 0 and 0.
func olsSlope(xs, ys []float64) (slope, se float64) {
	n := float64(len(xs))
	var mx, my float64
	for i := range xs {
		mx += (xs[i] - xs[0]) / 1000
		my += ys[i] - ys[0]
	}
	mx, my = mx/n, my/n
	var sxx, sxy float64
	for i := range xs {
		dx, dy := (xs[i]-xs[0])/1000-mx, ys[i]-ys[0]-my
		sxx += dx * dx
		sxy += dx * dy
	}
	slope = sxy / sxx
	var ss float64
	for i := range xs {
		r := ys[i] - ys[0] - my - slope*((xs[i]-xs[0])/1000-mx)
		ss += r * r
	}
	return slope, math.Sqrt(ss / (n - 2) / sxx)
}

// String describes the slope in one line.
func (v *ValidSlope) String() string {
	if v.CI == nil {
		return v.Note
	}
	return fmt.Sprintf("valid loss slope %.4g [%.4g, %.4g] %s over steps %d-%d (%d points)",
		float64(v.Slope), float64(v.CI.Lo), float64(v.CI.Hi), v.Unit, v.FromStep, v.ToStep, v.Points)
}

// Convergence is what the end of a run's validation curve says about its
// training budget (RunRecord.Convergence).
type Convergence string

// Convergence verdicts, from the 95% interval of ValidSlope:
const (
	// ConvergenceUnknown: no slope (the run did not train, diverged, has
	// no validation loss or too few validation points).
	ConvergenceUnknown Convergence = "unknown"
	// ConvergenceImproving: the interval lies entirely below 0, so the
	// validation loss was still falling: not converged at this budget.
	ConvergenceImproving Convergence = "still improving"
	// ConvergenceFlat: the interval contains 0, no trend detectable over
	// the last quarter (not proof of convergence: with few, noisy points
	// the interval is wide).
	ConvergenceFlat Convergence = "flat"
	// ConvergenceRising: the interval lies entirely above 0, the
	// validation loss was rising (over-fitting); more steps would not help.
	ConvergenceRising Convergence = "rising"
)

// Convergence judges the run's budget from its ValidSlope: still improving
// when the slope's interval lies entirely below 0 (then reports say "not
// converged at this budget"), rising when entirely above 0, flat when it
// contains 0, unknown without an interval.
func (r RunRecord) Convergence() Convergence {
	v := r.ValidSlope
	switch {
	case v == nil || v.CI == nil || !finite(float64(v.CI.Lo)) || !finite(float64(v.CI.Hi)):
		return ConvergenceUnknown
	case v.CI.Hi < 0:
		return ConvergenceImproving
	case v.CI.Lo > 0:
		return ConvergenceRising
	}
	return ConvergenceFlat
}

// Converged reports whether the verdict says the budget sufficed: flat or
// rising. Still improving and unknown are not converged.
func (c Convergence) Converged() bool { return c == ConvergenceFlat || c == ConvergenceRising }
