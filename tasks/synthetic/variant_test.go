package synthetic_test

import (
	"strings"
	"testing"

	"arbench/harness"
	_ "arbench/plugins/all"
	_ "arbench/tasks/synthetic"
)

// TestVariantErrorsAtParseTime checks that variant-specific configuration
// errors are reported with the experiment's other errors, before any work.
func TestVariantErrorsAtParseTime(t *testing.T) {
	yaml := "name: bad\ntasks:\n  - name: synthetic/nosuch\n  - name: synthetic/copy\n    config: {distances: [4, 8]}\nmodels:\n  - name: rnn\n"
	_, err := harness.ParseExperiment("bad.yaml", []byte(yaml))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`bad.yaml:3: tasks[0].config: unknown variant "nosuch"`, "bad.yaml:5: tasks[1].config: distances: does not apply to variant copy"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
