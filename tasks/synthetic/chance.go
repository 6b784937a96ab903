package synthetic

import (
	"math"

	"arbench/harness"
)

// Chance levels: what a model that knows only the answer alphabet scores,
// computed from the configuration and the test rows rather than typed in.
// Such a model spreads its mass uniformly over the alphabet an answer is
// drawn from, so whatever the answers' distribution its argmax (a uniform
// guess) is right with probability 1/|A| and it loses log |A| nats per
// answer. Reports draw these values (ReferenceName(metric, "chance"), and
// series labelled "chance") as reference lines.

// chanceLabel is the reference name and series label of chance levels.
const chanceLabel = "chance"

// answerAlphabet returns |A|, the number of tokens an answer is one of:
// dyck's closers (an answer is ranked among them), else the main alphabet
// (copied symbols, values).
func (t *Task) answerAlphabet() int {
	if t.variant == "dyck" {
		return t.cfg.Types
	}
	return t.cfg.Symbols
}

// lossAlphabet returns the number of tokens a loss target is one of: every
// bracket for dyck (all of its tokens are in the loss), else the answer
// alphabet (only answers are in the loss).
func (t *Task) lossAlphabet() int {
	if t.variant == "dyck" {
		return 2 * t.cfg.Types
	}
	return t.answerAlphabet()
}

// chanceParams describes a chance level.
func (t *Task) chanceParams() map[string]any {
	return map[string]any{"alphabet": t.answerAlphabet(),
		"definition": "a model that knows only the answer alphabet: a uniform guess among its tokens"}
}

// chanceMetric is the chance level of metric.
func (t *Task) chanceMetric(metric string, value float64, unit string) harness.Metric {
	return harness.Metric{Name: harness.ReferenceName(metric, chanceLabel), Value: value, Unit: unit, Split: "test",
		Params: t.chanceParams()}
}

// chanceAnswerMetrics returns the chance levels of the teacher-forced
// metrics: accuracy 1/|A| (also at the largest sweep value), sequence
// accuracy the mean over test rows of |A|^−answers, nats per token
// log |loss alphabet|.
func (t *Task) chanceAnswerMetrics(x string) []harness.Metric {
	A := float64(t.answerAlphabet())
	var seq float64
	rows := 0
	for _, g := range t.test {
		for i := range g.exs {
			n := 0
			for _, a := range g.exs[i].answer {
				if a {
					n++
				}
			}
			seq += math.Pow(A, -float64(n))
			rows++
		}
	}
	out := []harness.Metric{
		t.chanceMetric("accuracy", 1/A, "fraction"),
		t.chanceMetric("sequence_accuracy", seq/float64(rows), "fraction"),
		t.chanceMetric("nats_per_token", math.Log(float64(t.lossAlphabet())), "nats/token"),
	}
	if t.variant != "dyck" {
		out = append(out, t.chanceMetric("accuracy_at_max_"+x, 1/A, "fraction"))
	}
	return out
}

// chanceSeries returns a series with s's axes and the constant y at every
// x, labelled "chance".
func chanceSeries(s harness.Series, y func(x float64) float64) harness.Series {
	c := harness.Series{Name: s.Name, Label: chanceLabel, XName: s.XName, XUnit: s.XUnit, Unit: s.Unit, Split: s.Split,
		Params: map[string]any{"definition": "a model that knows only the answer alphabet: a uniform guess among its tokens"}}
	for _, x := range s.X {
		c.X = append(c.X, x)
		c.Y = append(c.Y, y(x))
	}
	return c
}

// chanceFirstError is the chance probability that a row's first wrong
// answer is answer j (from 1): each answer is right with probability 1/|A|
// independently, so (1/|A|)^(j−1)·(1 − 1/|A|).
func (t *Task) chanceFirstError(j float64) float64 {
	p := 1 / float64(t.answerAlphabet())
	return math.Pow(p, j-1) * (1 - p)
}
