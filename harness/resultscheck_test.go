package harness_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"arbench/harness"
)

// goldenResults returns the repository's example results file, decoded as
// plain JSON for editing.
func goldenResults(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "reports", "testdata", "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func entries(m map[string]any, key string) []any { return m[key].([]any) }

func entry(m map[string]any, key string, i int) map[string]any {
	return entries(m, key)[i].(map[string]any)
}

func encode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParseResultsRefuses: every file report, compare, reproduce and
// -resume would misread is refused, each problem naming its entry.
func TestParseResultsRefuses(t *testing.T) {
	g := goldenResults(t)
	if _, err := harness.ParseResults("results.json", encode(t, g)); err != nil {
		t.Fatalf("the example results file: %v", err)
	}
	// An entry appended to a list has the list's length as its index.
	n := func(key string) int { return len(entries(g, key)) }
	for _, c := range []struct {
		name string
		edit func(m map[string]any)
		raw  string // used instead of the edited example when set
		want []string
	}{
		{name: "null", raw: "null", want: []string{"results.json: expected a JSON object (a results file), got null"}},
		{name: "array", raw: " [] ", want: []string{"results.json: expected a JSON object (a results file), got an array"}},
		{name: "empty", raw: "", want: []string{"results.json: empty file"}},
		{name: "empty object", raw: "{}", want: []string{"results.json: manifest is missing\n" +
			"results.json: runs is missing or empty: the file records no finished run"}},
		{name: "syntax", raw: "{\n\"manifest\": {\n}}}", want: []string{"results.json:3: invalid character '}' after top-level value"}},
		{name: "type", raw: `{"manifest": {"name": "x"},` + "\n" + `"runs": [{"model": "m", "task": "t", "seed": 1.5}]}`,
			want: []string{"results.json:2: json: cannot unmarshal number 1.5 into Go struct field", "of type uint64"}},
		{name: "seed overflow", raw: `{"manifest": {"name": "x"}, "runs": [{"model": "m", "task": "t", "seed": 18446744073709551616}]}`,
			want: []string{"number 18446744073709551616"}},
		{name: "no name", edit: func(m map[string]any) { delete(m["manifest"].(map[string]any), "name") },
			want: []string{"results.json: manifest.name is missing"}},
		{name: "no runs", edit: func(m map[string]any) { m["runs"] = []any{} },
			want: []string{"runs is missing or empty", "results[0]: belongs to no recorded run (rnn on text/jargon seed 1 is not in runs)"}},
		{name: "missing metric", edit: func(m map[string]any) { delete(entry(m, "results", 3), "metric") },
			want: []string{"results.json: results[3]: metric is missing"}},
		{name: "missing unit", edit: func(m map[string]any) { delete(entry(m, "results", 2), "unit") },
			want: []string{"results.json: results[2]: unit is missing"}},
		{name: "null value", edit: func(m map[string]any) { entry(m, "results", 1)["value"] = nil },
			want: []string{"results.json: results[1]: value is missing"}},
		{name: "empty model", edit: func(m map[string]any) { entry(m, "results", 0)["model"] = "" },
			want: []string{"results.json: results[0]: model is empty"}},
		{name: "missing seed", edit: func(m map[string]any) { delete(entry(m, "runs", 4), "seed") },
			want: []string{"results.json: runs[4]: seed is missing"}},
		{name: "null entry", edit: func(m map[string]any) { entries(m, "results")[5] = nil },
			want: []string{"results.json: results[5] is not an object"}},
		{name: "duplicate run", edit: func(m map[string]any) { m["runs"] = append(entries(m, "runs"), entry(m, "runs", 1)) },
			want: []string{fmt.Sprintf("results.json: runs[%d]: duplicate of runs[1] (lstm on text/jargon seed 1)", n("runs"))}},
		{name: "duplicate result", edit: func(m map[string]any) { m["results"] = append(entries(m, "results"), entry(m, "results", 1)) },
			want: []string{fmt.Sprintf("results.json: results[%d]: duplicate of results[1] (bits_per_byte of rnn on text/jargon seed 1, split test, params {\"window\":64})", n("results"))}},
		{name: "unknown run", edit: func(m map[string]any) { entry(m, "results", 4)["seed"] = 9 },
			want: []string{"results.json: results[4]: belongs to no recorded run (lstm on text/jargon seed 9 is not in runs)"}},
		{name: "curve", edit: func(m map[string]any) {
			c := entry(m, "curves", 0)
			c["steps"] = c["steps"].([]any)[1:]
			delete(entry(m, "curves", 1), "name")
			m["curves"] = append(entries(m, "curves"), entry(m, "curves", 2))
		}, want: []string{"curves[0]: 2 steps but 3 values", "curves[1]: name is missing", fmt.Sprintf("curves[%d]: duplicate of curves[2] (train_loss of lstm on text/jargon seed 1)", n("curves"))}},
		{name: "series", edit: func(m map[string]any) {
			delete(entry(m, "series", 0), "task")
			m["series"] = append(entries(m, "series"), entry(m, "series", 1))
		}, want: []string{"series[0]: task is missing", fmt.Sprintf("series[%d]: duplicate of series[1] (token_error_vs_position of rnn on text/jargon seed 1, label free_running, split test)", n("series"))}},
		{name: "config", edit: func(m map[string]any) { entry(m, "runs", 0)["config"] = "x" },
			want: []string{"results.json: runs[0]: config is not an object"}},
	} {
		b := []byte(c.raw)
		if c.edit != nil {
			m := goldenResults(t)
			c.edit(m)
			b = encode(t, m)
		}
		rf, err := harness.ParseResults("results.json", b)
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		if rf != nil {
			t.Errorf("%s: returned results along with the error", c.name)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error\n%v\nlacks %q", c.name, err, w)
			}
		}
	}
}

// TestParseResultsReportsAll lists every problem, up to a limit.
func TestParseResultsReportsAll(t *testing.T) {
	m := goldenResults(t)
	for i := range entries(m, "results") {
		delete(entry(m, "results", i), "metric")
	}
	for i := range entries(m, "curves") {
		delete(entry(m, "curves", i), "name")
	}
	_, err := harness.ParseResults("r.json", encode(t, m))
	var re *harness.ResultsError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want a *ResultsError", err)
	}
	// One problem per result and per curve: the first 20 listed (results
	// first), the others counted.
	nr, nc := len(entries(m, "results")), len(entries(m, "curves"))
	if nr+nc <= 20 {
		t.Fatalf("the example has %d results and %d curves; the test needs more than 20 problems", nr, nc)
	}
	if re.File != "r.json" || len(re.Problems) != 20 || re.Problems[0] != "results[0]: metric is missing" ||
		(nr < 20 && re.Problems[nr] != "curves[0]: name is missing") || re.More != nr+nc-20 {
		t.Errorf("problems %q, %d more", re.Problems, re.More)
	}
	if !strings.HasSuffix(err.Error(), fmt.Sprintf("\nr.json: ... and %d more problem(s)", re.More)) {
		t.Errorf("error does not end with the count of the others:\n%v", err)
	}
}

// TestLoadResultsChecks: LoadResults, which report, compare, reproduce and
// -resume use, refuses what ParseResults refuses and names the file.
func TestLoadResultsChecks(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, harness.ResultsFileName)
	if err := os.WriteFile(path, []byte(`{"manifest": {"name": "x"}, "runs": [{"model": "m", "task": "t", "seed": 1}], "results": [{"model": "m", "task": "t", "seed": 1, "value": 1, "unit": ""}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := harness.LoadResults(dir)
	if err == nil || err.Error() != path+": results[0]: metric is missing" {
		t.Errorf("err = %v", err)
	}
	if _, err := harness.LoadResults(filepath.Join(dir, "nope")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	// A device is not read (/dev/zero would never end).
	if _, err := os.Stat(os.DevNull); err == nil {
		if _, err := harness.LoadResults(os.DevNull); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("%s: %v", os.DevNull, err)
		}
	}
}
