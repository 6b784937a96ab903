package text

import (
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"arbench/harness"
)

// TestStoredConfigsStillLoad: results record the task's configuration
// keyed by its YAML names (harness configMap), and resume and reproduce
// decode it strictly and compare it with the plan's. A configuration
// recorded before stateful existed must decode, and the default one must
// record the same keys as then, so that resuming finds no difference.
func TestStoredConfigsStillLoad(t *testing.T) {
	stored := `{"seq_len": 64, "eval_stride": 32, "max_eval_tokens": 16384, "valid_tokens": 4096, "eval_batch": 32,
		"ablation_contexts": [1, 2, 4, 8, 16, 32], "ablation_targets": 512}`
	task := New()
	if err := harness.DecodeConfig("results.json", []byte(stored), task.Config()); err != nil {
		t.Fatalf("a stored configuration does not decode: %v", err)
	}
	if c := task.Config().(*Config); c.Stateful || c.StatefulStreams != 0 || c.AblationTargets != 512 {
		t.Errorf("decoded %+v", c)
	}
	def := DefaultConfig()
	b, err := yaml.Marshal(&def)
	if err != nil {
		t.Fatal(err)
	}
	var keys map[string]any
	if err := yaml.Unmarshal(b, &keys); err != nil {
		t.Fatal(err)
	}
	got := slices.Sorted(func(yield func(string) bool) {
		for k := range keys {
			if !yield(k) {
				return
			}
		}
	})
	want := []string{"ablation_contexts", "ablation_targets", "eval_batch", "eval_stride", "max_eval_tokens", "seq_len", "valid_tokens"}
	if !slices.Equal(got, want) {
		t.Errorf("the default configuration records %v, before issue 15 %v", got, want)
	}
	// With stateful on, both fields decode and are recorded.
	on := `{"seq_len": 64, "valid_tokens": 10, "eval_batch": 4, "stateful": true, "stateful_streams": 16}`
	task = New()
	if err := harness.DecodeConfig("x.yaml", []byte(on), task.Config()); err != nil {
		t.Fatal(err)
	}
	if c := task.Config().(*Config); !c.Stateful || c.streams() != 16 {
		t.Errorf("decoded %+v", c)
	}
}

func TestStatefulConfigValidate(t *testing.T) {
	c := DefaultConfig()
	c.StatefulStreams = 8
	if errs := c.Validate(); len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "stateful_streams:") || !strings.Contains(errs[0].Error(), "stateful: true") {
		t.Errorf("stateful_streams without stateful: %v", errs)
	}
	c.Stateful, c.StatefulStreams = true, -1
	if errs := c.Validate(); len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "stateful_streams:") {
		t.Errorf("negative stateful_streams: %v", errs)
	}
	c.StatefulStreams = 0
	if errs := c.Validate(); len(errs) != 0 || c.streams() != c.EvalBatch {
		t.Errorf("stateful with default streams: %v, streams %d", errs, c.streams())
	}
}
