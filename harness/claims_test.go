package harness_test

import (
	"testing"

	"arbench/harness"
)

const claimsBase = `name: unit
backend: fake
tasks:
  - name: fake/count
models:
  - name: fake-lm
  - name: fake-uniform
`

func TestClaimsDecode(t *testing.T) {
	e, err := parse(t, claimsBase+`claims:
  - id: lm-beats-uniform
    claim: a trained model beats the uniform one
    tests:
      - {task: fake/count, metric: nll, model: fake-lm, other: fake-uniform, expect: less}
      - {task: fake/count, metric: nll, model: fake-lm, other: fake-uniform, ratio: true, expect: less, than: 0.9}
      - {task: fake/count, metric: acc_vs_x, at: 4, label: trained, model: fake-lm, expect: greater, than: 0.5}
`)
	if err != nil {
		t.Fatal(err)
	}
	c := e.Claims[0]
	if c.ID != "lm-beats-uniform" || len(c.Tests) != 3 {
		t.Fatalf("decoded %+v", c)
	}
	if c.Tests[0].Expect != harness.ExpectLess {
		t.Errorf("expect %q", c.Tests[0].Expect)
	}
	if th := c.Tests[0].Threshold(); th != 0 {
		t.Errorf("difference threshold %v, want 0", th)
	}
	if th := c.Tests[1].Threshold(); th != 0.9 {
		t.Errorf("ratio threshold %v, want 0.9", th)
	}
	r := c.Tests[1]
	r.Than = nil
	if th := r.Threshold(); th != 1 {
		t.Errorf("default ratio threshold %v, want 1", th)
	}
	if at := c.Tests[2].At; at == nil || *at != 4 || c.Tests[2].Label != "trained" {
		t.Errorf("series test %+v", c.Tests[2])
	}
}

// Every problem of the claims section is reported at once, with its line.
func TestClaimsErrors(t *testing.T) {
	_, err := parse(t, claimsBase+`claims:
  - id: a
    claim: x
    tests:
      - {task: fake/nope, metric: nll, model: rnn, other: fake-lm, expect: below}
      - {task: fake/count, model: fake-lm, ratio: true}
      - {task: fake/count, metric: m, model: fake-lm, other: fake-lm, expect: less, label: free}
  - id: a
    tests: []
  - claim: y
    tests:
      - {task: fake/count, metric: m, model: fake-lm, expect: less, thn: 1}
`)
	if err == nil {
		t.Fatal("no error")
	}
	want := `x.yaml:12: claims[0].tests[0].task: no task "fake/nope" in this experiment (it has [fake/count])
x.yaml:12: claims[0].tests[0].model: no model labelled "rnn" in this experiment (it has [fake-lm fake-uniform])
x.yaml:12: claims[0].tests[0].expect: must be "less" or "greater", got "below"
x.yaml:13: claims[0].tests[1].metric: required
x.yaml:13: claims[0].tests[1].expect: must be "less" or "greater", got ""
x.yaml:13: claims[0].tests[1].ratio: a ratio needs other or other_metric: what to divide by
x.yaml:13: claims[0].tests[1].than: required when nothing else is compared (other, other_metric): the threshold of the quantity
x.yaml:14: claims[0].tests[2].other: compares model "fake-lm" with itself
x.yaml:14: claims[0].tests[2].label: chooses a series' variant: it needs at
x.yaml:15: claims[1].id: duplicate claim id "a"
x.yaml:15: claims[1].claim: required: the claim in words
x.yaml:16: claims[1].tests: at least one test is required
x.yaml:17: claims[2].id: required
x.yaml:19: claims[2].tests[0].thn: unknown field (known: at, expect, label, metric, model, other, other_metric, ratio, task, than)
x.yaml:19: claims[2].tests[0].than: required when nothing else is compared (other, other_metric): the threshold of the quantity`
	if err.Error() != want {
		t.Errorf("errors:\n%v\nwant:\n%s", err, want)
	}
}
