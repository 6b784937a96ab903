package experiments_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"arbench/reports/claims"
)

var update = flag.Bool("update", false, "rewrite the README's Claims tables from results/*.claims.json")

// readmeClaims matches a quoted Claims table in the README.
var readmeClaims = regexp.MustCompile(`(?s)<!-- claims: ([a-z0-9.-]+) -->\n(.*?)<!-- /claims -->`)

// TestREADMEClaims: every Claims table the README quotes is the table of a
// committed run's claims.json (results/NAME.claims.json, copied from
// results/NAME/claims.json by `make claims-readme`), rendered by the
// report's own code, so no sentence of the README's experiment section can
// disagree with the data; -update rewrites the README's tables.
func TestREADMEClaims(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join("results", "*.claims.json"))
	if err != nil {
		t.Fatal(err)
	}
	tables := map[string]string{}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".claims.json")
		tables[name] = renderClaims(t, f)
	}
	quoted := map[string]bool{}
	out := readmeClaims.ReplaceAllFunc(readme, func(m []byte) []byte {
		sub := readmeClaims.FindSubmatch(m)
		name, have := string(sub[1]), string(sub[2])
		quoted[name] = true
		want, ok := tables[name]
		switch {
		case !ok:
			t.Errorf("README quotes the claims of %s, but experiments/results/%s.claims.json does not exist", name, name)
		case have != want && !*update:
			t.Errorf("README's Claims table of %s differs from experiments/results/%s.claims.json (go test ./experiments -run TestREADMEClaims -update rewrites it):\n--- README\n%s--- results\n%s", name, name, have, want)
		}
		if !ok {
			return m
		}
		return []byte(fmt.Sprintf("<!-- claims: %s -->\n%s<!-- /claims -->", name, want))
	})
	for name := range tables {
		if !quoted[name] {
			t.Errorf("experiments/results/%s.claims.json is not quoted in the README (add <!-- claims: %s --><!-- /claims --> and run with -update)", name, name)
		}
	}
	if *update && !bytes.Equal(out, readme) {
		if err := os.WriteFile(filepath.Join("..", "README.md"), out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func renderClaims(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	run, js, err := claims.ReadJSON(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "Run: %s.\n\n", run)
	if err := claims.Markdown(&b, js); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
