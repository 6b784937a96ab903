package synthetic

import (
	"context"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"arbench/harness"
)

// TestNewFieldsValidateAtOnce: every problem of the fields added for
// issue 15 is reported in one pass, each naming its field.
func TestNewFieldsValidateAtOnce(t *testing.T) {
	c := DefaultConfig()
	c.Distractors, c.Items, c.Delays = -1, -2, []int{-1, 3, 3}
	c.Stickiness, c.Blocks = 1, -1
	c.GradientRows = -1
	errs := c.Validate()
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	all := strings.Join(msgs, "\n")
	want := []string{"distractors: must be >= 0", "items: must be >= 0", "delays: -1 outside", "delays: 3 listed twice",
		"stickiness: must be in [0, 1)", "blocks: must be >= 0", "gradient_rows: must be >= 0", "gradient_rows: set without gradient_norms"}
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("errors do not mention %q:\n%s", w, all)
		}
	}
	if len(errs) != len(want) {
		t.Errorf("got %d errors, want %d:\n%s", len(errs), len(want), all)
	}
}

// TestNewFieldsAgainstVariants: the new fields' checks that depend on the
// variant or on other fields.
func TestNewFieldsAgainstVariants(t *testing.T) {
	for _, c := range []struct {
		variant string
		edit    func(*Config)
		want    []string
	}{
		{"needle", func(c *Config) { c.Distractors, c.Keys = 4, 4 }, []string{"keys: 4 keys are fewer than the 5 pairs"}},
		{"needle", func(c *Config) { c.Distractors, c.Distances = 1, []int{1, 8} }, []string{"distances: with distractors the query repeats the key, so the shortest distance is 2, got 1"}},
		{"needle", func(c *Config) { c.Keys = 12 }, []string{"keys: needle reads keys only with distractors > 0"}},
		{"copy", func(c *Config) { c.Distractors, c.Delays = 2, []int{4} },
			[]string{"distractors: does not apply to variant copy", "delays: does not apply to variant copy"}},
		{"copy-memory", func(c *Config) { c.Lengths, c.Stickiness = []int{4}, 0.5 },
			[]string{"lengths: does not apply to variant copy-memory", "stickiness: does not apply to variant copy-memory"}},
		{"oracle", func(c *Config) { c.GradientNorms = true }, []string{"gradient_norms: does not apply to variant oracle"}},
		{"oracle", func(c *Config) { c.Blocks = 4 }, []string{"blocks: has no effect without stickiness"}},
		{"oracle", func(c *Config) { c.Stickiness, c.Blocks = 0.5, 1 }, []string{"blocks: 1 block is the whole chain"}},
		{"oracle", func(c *Config) { c.Stickiness, c.Blocks = 0.5, 17 }, []string{"blocks: 17 blocks for 16 states"}},
		{"needle", func(c *Config) { c.GradientNorms, c.GradientRows = true, 200 }, []string{"gradient_rows: 200 exceeds the 128 test rows"}},
	} {
		cfg := DefaultConfig()
		c.edit(&cfg)
		errs := harness.ConfigProblems(&cfg, c.variant)
		var msgs []string
		for _, e := range errs {
			msgs = append(msgs, e.Error())
		}
		all := strings.Join(msgs, "\n")
		for _, w := range c.want {
			if !strings.Contains(all, w) {
				t.Errorf("%s: errors do not mention %q:\n%s", c.variant, w, all)
			}
		}
		if len(errs) != len(c.want) {
			t.Errorf("%s: %d errors, want %d:\n%s", c.variant, len(errs), len(c.want), all)
		}
	}
	for _, c := range []struct {
		variant string
		edit    func(*Config)
	}{
		{"needle", func(c *Config) { c.Distractors, c.Distances = 3, []int{2, 40} }},
		{"copy-memory", func(c *Config) { c.Items, c.Delays = 3, []int{0, 9} }},
		{"oracle", func(c *Config) { c.Stickiness, c.Blocks = 0.9, 4 }},
		{"copy", func(c *Config) { c.GradientNorms, c.GradientRows = true, 5 }},
	} {
		cfg := DefaultConfig()
		c.edit(&cfg)
		if errs := harness.ConfigProblems(&cfg, c.variant); len(errs) != 0 {
			t.Errorf("%s: valid configuration refused: %v", c.variant, errs)
		}
	}
}

// TestNewFieldsOmittedWhenZero: a configuration written before the new
// fields existed must compare equal to its rerun (reproduce, -resume), so
// the recorded configuration (a YAML round trip of Config) leaves them out
// at their defaults; and such a stored configuration decodes and resolves
// for every variant.
func TestNewFieldsOmittedWhenZero(t *testing.T) {
	b, err := yaml.Marshal(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"distractors", "items", "delays", "stickiness", "blocks", "gradient_norms", "gradient_rows"} {
		if strings.Contains(string(b), f+":") {
			t.Errorf("the default configuration records %s:\n%s", f, b)
		}
	}
	stored := "symbols: 8\nlengths: []\ndistances: []\npairs: []\nqueries: 0\nkeys: 32\nfillers: 8\nmax_prefix: 8\n" +
		"marked: 4\ntypes: 2\nmax_depth: 8\nstates: 16\nconcentration: 0.1\nfree_running: true\nusable_accuracy: 0.9\n" +
		"eval_rows: 128\nvalid_rows: 128\neval_batch: 64\n"
	if got, want := stored, string(b); got != want {
		t.Errorf("the recorded default configuration changed:\n%s\nwant\n%s", want, got)
	}
	for _, v := range Variants() {
		tk := New().(*Task)
		if err := harness.DecodeConfig("stored.yaml", []byte(stored), tk.Config()); err != nil {
			t.Fatalf("%s: stored configuration refused: %v", v, err)
		}
		if errs := harness.ConfigProblems(tk.Config(), v); len(errs) != 0 {
			t.Errorf("%s: stored configuration invalid: %v", v, errs)
		}
	}
	// Prepare of the new variant with the defaults works.
	tk := New().(*Task)
	if err := tk.Prepare(context.Background(), harness.TaskEnv{Variant: "copy-memory", Seed: 1}); err != nil {
		t.Fatal(err)
	}
	if w := tk.Info().SeqLen; w != 2*defaultItems+128+1 {
		t.Errorf("copy-memory rows are %d tokens, want 2·10+128+1", w)
	}
}
