// Package experiments_test loads and checks every experiment file of the
// repository with the real plugins, tasks and backend registered (harness
// tests register fakes, and cannot import the plugins without changing
// what they list).
package experiments_test

import (
	"path/filepath"
	"testing"

	"arbench/harness"
	_ "arbench/nn/gorgonia"
	_ "arbench/plugins/all"
	_ "arbench/tasks/all"
)

func TestExperimentFilesLoad(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no experiment files (%v)", err)
	}
	for _, path := range files {
		t.Run(path, func(t *testing.T) {
			e, err := harness.LoadExperiment(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := e.Check(); err != nil {
				t.Fatalf("Check after loading: %v", err)
			}
			base := filepath.Base(path)
			if want := base[:len(base)-len(filepath.Ext(base))]; e.Name != want {
				t.Errorf("name %q, want the file's name %q", e.Name, want)
			}
			if len(e.Tasks) == 0 || len(e.Models) == 0 {
				t.Errorf("%d tasks, %d models", len(e.Tasks), len(e.Models))
			}
		})
	}
}
