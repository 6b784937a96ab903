package reports

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"arbench/harness"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./reports -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./reports -update rewrites it)\n--- got ---\n%s\n--- want ---\n%s", name, got, want)
	}
}

func load(t *testing.T) *harness.ResultsFile {
	t.Helper()
	rf, err := harness.LoadResults(filepath.Join("testdata", "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	return rf
}

func TestTableGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := Table(&buf, load(t), TableOptions{}); err != nil {
		t.Fatal(err)
	}
	golden(t, "table.golden", buf.Bytes())
}

func TestTableSelectedMetricsGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := Table(&buf, load(t), TableOptions{Precision: 2, Metrics: []string{"bits_per_byte", "bits_per_token"}}); err != nil {
		t.Fatal(err)
	}
	golden(t, "table_selected.golden", buf.Bytes())
}

func TestMarkdownGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := Markdown(&buf, load(t)); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.md.golden", buf.Bytes())
}

func TestEmptyTable(t *testing.T) {
	var buf bytes.Buffer
	if err := Table(&buf, &harness.ResultsFile{}, TableOptions{}); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "no results\n" {
		t.Errorf("got %q", buf.String())
	}
}

func TestFormatting(t *testing.T) {
	// n=2: t_{0.975,1} = 12.7062047361747, s = 0.0707107, h = t·s/√2 = 0.6353.
	for _, c := range []struct {
		xs   []float64
		runs int
		want string
	}{
		{[]float64{1.5, 1.6}, 2, "1.550 ± 0.635"},
		{[]float64{1.5}, 1, "1.500"},
		{[]float64{1.5}, 3, "1.500 (n=1)"},
		{[]float64{1, 2, 3, 4}, 5, "2.500 ± 2.054 (n=4)"},
		{nil, 1, "-"},
	} {
		if got := formatValues(c.xs, c.runs, 3); got != c.want {
			t.Errorf("formatValues(%v, %d) = %q, want %q", c.xs, c.runs, got, c.want)
		}
	}
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -12345: "-12,345"} {
		if got := formatCount(n); got != want {
			t.Errorf("formatCount(%d) = %q, want %q", n, got, want)
		}
	}
}
