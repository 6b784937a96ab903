package reports

import (
	"bytes"
	"strings"
	"testing"
)

// The Claims section comes after the manifest in both reports, and is
// absent when the experiment tests no claims.
func TestClaimsSection(t *testing.T) {
	rf := load(t)
	var md, page bytes.Buffer
	if err := Markdown(&md, rf); err != nil {
		t.Fatal(err)
	}
	if err := HTML(&page, rf, nil, ""); err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"report.md": md.String(), "report.html": page.String()} {
		claims, task := strings.Index(out, "Claims</h2>"), strings.Index(out, "text/jargon</h2>")
		if name == "report.md" {
			claims, task = strings.Index(out, "\n## Claims\n"), strings.Index(out, "\n## text/jargon\n")
		}
		if claims < 0 || task < claims || !strings.Contains(out, "lstm-beats-rnn") || !strings.Contains(out, "contradicted") {
			t.Errorf("%s: Claims section at %d, first task at %d:\n%s", name, claims, task, out[:min(len(out), 3000)])
		}
	}
	rf.Manifest.Config = []byte(`{"name":"golden"}`)
	md.Reset()
	if err := Markdown(&md, rf); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(md.String(), "## Claims") {
		t.Error("a Claims section without claims")
	}
}
