package all

import (
	"testing"

	"arbench/harness"
)

func TestRegistersEveryTaskFamily(t *testing.T) {
	have := map[string]bool{}
	for _, r := range harness.Tasks() {
		have[r.Name] = true
	}
	for _, name := range []string{"image", "seq2seq", "synthetic", "text"} {
		if !have[name] {
			t.Errorf("task family %q is not registered (have %v)", name, have)
		}
	}
}
