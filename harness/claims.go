package harness

import (
	"fmt"
	"math"
	"slices"
)

// ClaimSpec is one entry of an experiment's `claims:` section: a claim of
// the survey the experiment tests, and the comparisons that decide it. The
// report judges it from the results (package reports/claims), so the verdict
// is computed, never written by hand:
//
//	claims:
//	  - id: rnn-long-range
//	    claim: RNNs lose long-range dependencies
//	    tests:
//	      - {task: synthetic/needle, metric: accuracy_vs_distance, at: 128,
//	         model: rnn, expect: less, other: transformer}
//	      - {task: synthetic/oracle, metric: exposure_excess_kl, model: lstm,
//	         expect: greater, than: 0}
type ClaimSpec struct {
	// ID names the claim in tables ("rnn-long-range"); unique in the file.
	ID string `yaml:"id" json:"id"`
	// Claim states it in words.
	Claim string `yaml:"claim" json:"claim"`
	// Tests are the comparisons; the claim is supported when all are,
	// contradicted when any is.
	Tests []ClaimTest `yaml:"tests" json:"tests"`
}

// ClaimTest compares one measured quantity with a threshold: the value of
// Metric for Model on Task (mean over seeds), or its difference to (ratio
// over) the same quantity of Other, or of another metric (OtherMetric).
type ClaimTest struct {
	Task string `yaml:"task" json:"task"`
	// Metric names a result metric, or with At a series; the metric
	// ClaimTrainTokensPerSec is each run's training throughput (its record's
	// tokens_per_sec).
	Metric string `yaml:"metric" json:"metric"`
	// OtherMetric, when set, is compared with Metric: the quantity is
	// Metric − OtherMetric (of Other when set, else of Model), e.g. the
	// free-running error minus the teacher-forced one.
	OtherMetric string `yaml:"other_metric" json:"other_metric,omitempty"`
	// At, when set, reads the series named Metric at this x (Label chooses
	// among a series' variants, e.g. "free_running").
	At    *float64 `yaml:"at" json:"at,omitempty"`
	Label string   `yaml:"label" json:"label,omitempty"`
	// Model is the model label measured.
	Model string `yaml:"model" json:"model"`
	// Other, when set, is compared with Model: the quantity is Model − Other
	// (or Model / Other with Ratio) on the same seeds.
	Other string `yaml:"other" json:"other,omitempty"`
	Ratio bool   `yaml:"ratio" json:"ratio,omitempty"`
	// Expect is "less" or "greater": the claim expects the quantity below
	// (above) Than.
	Expect string `yaml:"expect" json:"expect"`
	// Than is the threshold; it defaults to 0 for a difference and 1 for a
	// ratio, and is required without Other.
	Than *float64 `yaml:"than" json:"than,omitempty"`
}

// ClaimTrainTokensPerSec names a run's training throughput in a ClaimTest.
const ClaimTrainTokensPerSec = "train_tokens_per_sec"

// The values of ClaimTest.Expect.
const (
	ExpectLess    = "less"
	ExpectGreater = "greater"
)

// Threshold is the value the quantity is compared with (see Than).
func (t ClaimTest) Threshold() float64 {
	switch {
	case t.Than != nil:
		return *t.Than
	case t.Ratio:
		return 1
	}
	return 0
}

// checkClaims reports every problem of the claims section: missing or
// duplicate ids, tests naming no task or model of the experiment, unknown
// expectations, a threshold missing or not finite.
func (e *Experiment) checkClaims(add addFunc) {
	tasks := map[string]bool{}
	for _, t := range e.Tasks {
		tasks[t.Name] = true
	}
	models := map[string]bool{}
	for _, m := range e.Models {
		models[m.Label] = true
	}
	ids := map[string]bool{}
	for i, c := range e.Claims {
		path := fmt.Sprintf("claims[%d]", i)
		switch {
		case c.ID == "":
			add(path+".id", "required")
		case !safeName.MatchString(c.ID):
			add(path+".id", "%q must use only letters, digits, '.', '_' and '-'", c.ID)
		case ids[c.ID]:
			add(path+".id", "duplicate claim id %q", c.ID)
		}
		ids[c.ID] = true
		if c.Claim == "" {
			add(path+".claim", "required: the claim in words")
		}
		if len(c.Tests) == 0 {
			add(path+".tests", "at least one test is required")
		}
		for j, t := range c.Tests {
			t.check(fmt.Sprintf("%s.tests[%d]", path, j), tasks, models, add)
		}
	}
}

func (t ClaimTest) check(path string, tasks, models map[string]bool, add addFunc) {
	names := func(m map[string]bool) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	switch {
	case t.Task == "":
		add(path+".task", "required")
	case !tasks[t.Task]:
		add(path+".task", "no task %q in this experiment (it has %v)", t.Task, names(tasks))
	}
	if t.Metric == "" {
		add(path+".metric", "required")
	}
	for _, f := range []struct{ field, label string }{{"model", t.Model}, {"other", t.Other}} {
		switch {
		case f.label == "" && f.field == "model":
			add(path+".model", "required")
		case f.label != "" && !models[f.label]:
			add(path+"."+f.field, "no model labelled %q in this experiment (it has %v)", f.label, names(models))
		}
	}
	if t.Other != "" && t.Other == t.Model && (t.OtherMetric == "" || t.OtherMetric == t.Metric) {
		add(path+".other", "compares model %q with itself", t.Model)
	}
	if t.OtherMetric != "" && t.OtherMetric == t.Metric && t.Other == "" {
		add(path+".other_metric", "compares %q with itself", t.Metric)
	}
	if t.Expect != ExpectLess && t.Expect != ExpectGreater {
		add(path+".expect", "must be %q or %q, got %q", ExpectLess, ExpectGreater, t.Expect)
	}
	if t.Ratio && t.Other == "" && t.OtherMetric == "" {
		add(path+".ratio", "a ratio needs other or other_metric: what to divide by")
	}
	if t.Other == "" && t.OtherMetric == "" && t.Than == nil {
		add(path+".than", "required when nothing else is compared (other, other_metric): the threshold of the quantity")
	}
	if t.Than != nil && (math.IsNaN(*t.Than) || math.IsInf(*t.Than, 0)) {
		add(path+".than", "must be finite, got %v", *t.Than)
	}
	if t.At != nil && (math.IsNaN(*t.At) || math.IsInf(*t.At, 0)) {
		add(path+".at", "must be finite, got %v", *t.At)
	}
	if t.Label != "" && t.At == nil {
		add(path+".label", "chooses a series' variant: it needs at")
	}
}
