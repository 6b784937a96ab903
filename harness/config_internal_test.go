package harness

import (
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

type innerConfig struct {
	Scale float64   `yaml:"scale"`
	Ws    []float32 `yaml:"ws"`
}

type inlined struct {
	Temp float64 `yaml:"temp"`
}

// walkConfig has a float in every place the walkers reach.
type walkConfig struct {
	inlined  `yaml:",inline"`
	Rate     float64            `yaml:"rate"`
	Floor    float64            `yaml:"floor" arbench:"nonfinite"` // -Inf: no floor
	Inner    innerConfig        `yaml:"inner"`
	Ptr      *innerConfig       `yaml:"ptr"`
	Arr      [2]float64         `yaml:"arr"`
	ByName   map[string]float64 `yaml:"by_name"`
	Any      any                `yaml:"any"`
	Wait     time.Duration      `yaml:"wait"`
	Steps    int                `yaml:"steps"`
	Skipped  float64            `yaml:"-"`
	internal float64
}

func (c *walkConfig) Validate() []error { return nil }

func TestNonFiniteProblemsWalk(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	c := &walkConfig{
		inlined: inlined{Temp: inf},
		Rate:    nan, Floor: math.Inf(-1),
		Inner:   innerConfig{Scale: 1, Ws: []float32{0, float32(math.Inf(-1))}},
		Ptr:     &innerConfig{Scale: nan},
		Arr:     [2]float64{inf, 0},
		ByName:  map[string]float64{"b": nan, "a": 1},
		Any:     []any{1.0, map[string]any{"x": inf}},
		Skipped: nan, internal: nan,
	}
	var got []string
	for _, p := range nonFiniteProblems(c) {
		got = append(got, p.field+": "+p.msg)
	}
	want := []string{
		"temp: must be a finite number, got +Inf",
		"rate: must be a finite number, got NaN",
		"inner.ws[1]: must be a finite number, got -Inf",
		"ptr.scale: must be a finite number, got NaN",
		"arr[0]: must be a finite number, got +Inf",
		"by_name.b: must be a finite number, got NaN",
		"any[1].x: must be a finite number, got +Inf",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if ps := nonFiniteProblems(&walkConfig{Floor: math.Inf(-1)}); len(ps) != 0 {
		t.Errorf("finite config: %v", ps)
	}
}

func decodeWalk(t *testing.T, src string, c *walkConfig) string {
	t.Helper()
	if err := DecodeConfig("c.yaml", []byte(src), c); err != nil {
		return err.Error()
	}
	return ""
}

// The walker decodes the way yaml.v3 does, into every kind of value.
func TestWalkerDecodes(t *testing.T) {
	shared := &innerConfig{Scale: 2}
	c := &walkConfig{Ptr: shared, ByName: map[string]float64{"keep": 1}}
	msg := decodeWalk(t, `
temp: 0.5
base: &b {scale: 3, ws: [1, 2]}
inner: *b
ptr: {ws: [4]}
arr: [1, 2]
by_name: {new: 2}
any: {k: [1, two, {x: 3}]}
wait: 1m30s
`, c)
	if !strings.Contains(msg, "c.yaml:3: base: unknown field") || strings.Count(msg, "\n") != 0 {
		t.Fatalf("errors: %s", msg)
	}
	// A section with a problem is not decoded at all.
	if c.Temp != 0 || shared.Scale != 2 {
		t.Fatalf("failed decode changed the defaults: %+v", c)
	}
	c = &walkConfig{Ptr: shared, ByName: map[string]float64{"keep": 1}}
	msg = decodeWalk(t, `
temp: 0.5
inner: &b {scale: 3, ws: [1, 2]}
ptr: {ws: [4]}
arr: [1, 2]
by_name: {new: 2}
any: {k: [1, two, {x: 3}]}
wait: 1m30s
steps: ~
`, c)
	if msg != "" {
		t.Fatal(msg)
	}
	if c.Temp != 0.5 || c.Inner.Scale != 3 || len(c.Inner.Ws) != 2 || c.Ptr.Scale != 2 || c.Ptr.Ws[0] != 4 ||
		c.Arr != [2]float64{1, 2} || c.ByName["keep"] != 1 || c.ByName["new"] != 2 || c.Wait != 90*time.Second {
		t.Errorf("decoded %+v (ptr %+v)", c, c.Ptr)
	}
	if shared.Ws != nil {
		t.Error("decoding wrote through the defaults' pointer")
	}
	k := c.Any.(map[string]any)["k"].([]any)
	if k[0] != 1 || k[1] != "two" || k[2].(map[string]any)["x"] != 3 {
		t.Errorf("any = %#v", c.Any)
	}
}

func TestWalkerRefuses(t *testing.T) {
	for src, want := range map[string]string{
		"by_name: {a: 1, a: 2}":            "c.yaml:1: by_name.a: duplicate key (first at line 1)",
		"rate: 1\nrate: 2":                 "c.yaml:2: rate: duplicate field (first at line 1)",
		"b: &b {rate: 1}\n<<: *b":          "c.yaml:1: b: unknown field (known: any, arr, by_name, floor, inner, ptr, rate, steps, temp, wait)\nc.yaml:2: <<: merge keys (<<) are not supported; write the fields out",
		"[rate]: 1":                        "c.yaml:1: expected a scalar key, got a list",
		"any: &a [*a]":                     "c.yaml:1: any[0][0]: alias *a contains itself",
		"arr: [1]":                         "c.yaml:1: arr: expected a list of 2 elements, got 1",
		"wait: 5.5":                        "c.yaml:1: wait: expected a duration (e.g. 1m30s), got number 5.5",
		"wait: 5":                          "c.yaml:1: wait: expected a duration (e.g. 1m30s), got integer 5",
		"steps: 1.5":                       "c.yaml:1: steps: expected an integer, got number 1.5",
		"rate: .nan\nsteps: 2":             "c.yaml:1: rate: must be a finite number, got NaN",
		"inner: {ws: [1, -.inf]}":          "c.yaml:1: inner.ws[1]: must be a finite number, got -Inf",
		"ptr: {scale: [1]}":                "c.yaml:1: ptr.scale: expected a number, got a list",
		"any: {[1]: 2}":                    "c.yaml:1: any: expected a scalar key, got a list",
		"by_name: {a: x, b: 1}":            `c.yaml:1: by_name.a: expected a number, got string "x"`,
		"inner: {ws: [1, x, 2]}\nrate: -1": `c.yaml:1: inner.ws[1]: expected a number, got string "x"`,
		// A null entry has no default to keep: yaml.v3 drops it, or zeroes it.
		"inner: {ws: [1, ~, 2]}":       `c.yaml:1: inner.ws[1]: expected a number, got null`,
		"any: &n ~\ninner: {ws: [*n]}": `c.yaml:2: inner.ws[0]: expected a number, got null`,
		"by_name: {a: ~}":              `c.yaml:1: by_name.a: expected a number, got null`,
		"by_name: {~: 1}":              `c.yaml:1: by_name.~: expected a string, got null`,
		"arr: [1, null]":               `c.yaml:1: arr[1]: expected a number, got null`,
	} {
		if got := decodeWalk(t, src, &walkConfig{}); got != want {
			t.Errorf("%q:\n got %s\nwant %s", src, got, want)
		}
	}
}

// Nested aliases ("billion laughs") expand to too many values and stop.
func TestWalkerBoundsAliasExpansion(t *testing.T) {
	var b strings.Builder
	b.WriteString("any:\n  a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n")
	for i := 1; i < 9; i++ {
		b.WriteString("  a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [")
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	start := time.Now()
	msg := decodeWalk(t, b.String(), &walkConfig{})
	if !strings.Contains(msg, "expands to more than 1048576 values") {
		t.Errorf("errors: %.300s", msg)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
}

// A list element that is not decoded keeps its index (zero) and is
// recorded as unset, so that later messages name the entries after it as
// written; null decodes into the entries that can be nil.
func TestWalkerKeepsIndices(t *testing.T) {
	var v struct {
		Xs   []int          `yaml:"xs"`
		Ps   []*innerConfig `yaml:"ps"`
		Anys []any          `yaml:"anys"`
		M    map[string]any `yaml:"m"`
	}
	w := newWalker("c.yaml")
	doc := w.parse([]byte("xs: [1, x, ~, 4]\nps: [~, {scale: 2}]\nanys: [~, 1]\nm: {a: ~}\n"))
	w.decode(doc, reflect.ValueOf(&v).Elem(), "")
	want := "c.yaml:1: xs[1]: expected an integer, got string \"x\"\nc.yaml:1: xs[2]: expected an integer, got null"
	if got := w.sorted().Error(); got != want {
		t.Errorf("errors:\n%s\nwant:\n%s", got, want)
	}
	if !slices.Equal(v.Xs, []int{1, 0, 0, 4}) || !w.unset["xs[1]"] || !w.unset["xs[2]"] || w.unset["xs[3]"] {
		t.Errorf("xs = %v, unset %v", v.Xs, w.unset)
	}
	if len(v.Ps) != 2 || v.Ps[0] != nil || v.Ps[1].Scale != 2 || len(v.Anys) != 2 || v.Anys[0] != nil {
		t.Errorf("ps = %v, anys = %v", v.Ps, v.Anys)
	}
	if a, ok := v.M["a"]; !ok || a != nil {
		t.Errorf("m = %v", v.M)
	}
}
