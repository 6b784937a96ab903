package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"arbench/harness"
)

// Case 1: a transformer whose context is shorter than the needle task's
// rows gets the plugin's own message before any work, not a SIGSEGV.
func TestRunContextMismatchBeforeWork(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	_, _, err := arbench(t, "run", "-model", "transformer", "-task", "synthetic/needle", "-steps", "1", "-out", out, "-quiet")
	var ce harness.ConfigErrors
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "context") || !strings.Contains(err.Error(), "set context: >=") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("output directory created: %v", err)
	}
}

// Case 6: one diverging model does not stop the others; the exit status
// says some runs diverged.
func TestRunDivergenceExitStatus(t *testing.T) {
	data := corpusFile(t, "corpus.txt")
	out := filepath.Join(t.TempDir(), "out")
	cfg := writeConfig(t, `name: diverge
out: `+out+`
train: {steps: 3, batch: 2, lr: 1e30, clip: 0, eval_every: 0}
tasks:
  - name: text
    data: `+data+`
    config: {seq_len: 8, eval_batch: 8, valid_tokens: 64, max_eval_tokens: 128}
models:
  - name: rnn
    config: {embed: 4, hidden: 4}
  - name: lstm
    config: {embed: 4, hidden: 4}
`)
	_, _, err := arbench(t, "run", "-config", cfg, "-quiet")
	var rp *harness.RunProblems
	if !errors.As(err, &rp) || len(rp.Diverged) == 0 || exitCode(err) != exitDiverged {
		t.Fatalf("err = %v (exit %d), want diverged runs and exit %d", err, exitCode(err), exitDiverged)
	}
	rf, lerr := harness.LoadResults(out)
	if lerr != nil || len(rf.Runs) != 2 {
		t.Fatalf("both runs must be recorded: %v", lerr)
	}
	curves := map[string]int{}
	for _, c := range rf.Curves {
		if c.Name == harness.CurveTrainLoss {
			curves[c.Model] = len(c.Steps)
		}
	}
	for _, r := range rf.Runs {
		if strings.Contains(r.Note, "diverged") && r.Steps > 1 && curves[r.Model] == 0 {
			t.Errorf("diverged run %s (%d steps) has no training curve", r.Key(), r.Steps)
		}
	}
	// The experiment reproduces: the runs diverge again, at the same step.
	if _, stderr, err := arbench(t, "reproduce", "-quiet", out); err != nil {
		t.Errorf("reproduce a diverged experiment: %v\n%s", err, stderr)
	}
	// Reproducing into a directory with results needs -overwrite.
	rerun := filepath.Join(t.TempDir(), "rerun")
	if _, _, err := arbench(t, "reproduce", "-quiet", "-out", rerun, out); err != nil {
		t.Fatal(err)
	}
	if _, _, err := arbench(t, "reproduce", "-quiet", "-out", rerun, out); err == nil || !strings.Contains(err.Error(), "already holds results") {
		t.Errorf("second reproduce into %s: %v", rerun, err)
	}
	if _, _, err := arbench(t, "reproduce", "-quiet", "-overwrite", "-out", rerun, out); err != nil {
		t.Errorf("reproduce -overwrite: %v", err)
	}
}

func TestExitCodes(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("x"), 1},
		{errUsage, exitUsage},
		{&harness.RunProblems{Total: 2, Diverged: []string{"a"}}, exitDiverged},
		{&harness.RunProblems{Total: 2, Problems: []string{"weights not saved"}}, 1},
	} {
		if got := exitCode(c.err); got != c.want {
			t.Errorf("exitCode(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

// Case 5: a plain run into a results directory is refused, -overwrite
// replaces, and -resume with -overwrite is a usage mistake.
func TestRunOverwriteFlag(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	args := []string{"run", "-model", "fake-lm", "-task", "fake/count", "-steps", "2", "-backend", "fake", "-out", out, "-quiet"}
	if _, _, err := arbench(t, args...); err != nil {
		t.Fatal(err)
	}
	_, _, err := arbench(t, args...)
	if err == nil || !strings.Contains(err.Error(), "already holds results") {
		t.Fatalf("second plain run: %v", err)
	}
	if _, _, err := arbench(t, append(args, "-overwrite")...); err != nil {
		t.Fatalf("-overwrite: %v", err)
	}
	if _, _, err := arbench(t, append(args, "-overwrite", "-resume")...); err == nil || !strings.Contains(err.Error(), "mutually exclusive") ||
		exitCode(err) != exitUsage {
		t.Errorf("-overwrite -resume: %v (exit %d)", err, exitCode(err))
	}
	// The report command waits for no one but refuses while a run writes.
	release, err := harness.LockOutput(out)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = arbench(t, "report", out)
	release()
	if !errors.Is(err, harness.ErrOutputInUse) {
		t.Errorf("report during a run: %v", err)
	}
	if _, _, err := arbench(t, "report", out); err != nil {
		t.Errorf("report after the run: %v", err)
	}
}

// Case 8: a text task on a local file is named after the file, so runs on
// two files do not collide.
func TestRunDataNamesTask(t *testing.T) {
	for _, task := range []string{"text", "text/jargon"} {
		data := corpusFile(t, "notes.txt")
		out := filepath.Join(t.TempDir(), "out")
		_, stderr, err := arbench(t, "run", "-model", "rnn", "-task", task, "-data", data, "-steps", "1", "-out", out, "-quiet")
		if err != nil {
			t.Fatalf("%s: %v\n%s", task, err, stderr)
		}
		rf, err := harness.LoadResults(out)
		if err != nil {
			t.Fatal(err)
		}
		if rf.Runs[0].Task != "text/notes" || rf.Results[0].Task != "text/notes" {
			t.Errorf("-task %s -data notes.txt: results name %q", task, rf.Runs[0].Task)
		}
		found := false
		for _, d := range rf.Manifest.Datasets {
			found = found || d.Path == data
		}
		if !found {
			t.Errorf("manifest datasets %+v lack %s", rf.Manifest.Datasets, data)
		}
	}
}

// Case 12: an unknown variant of the second task is reported before the
// first task trains, together with the other problems.
func TestRunUnknownVariantBeforeWork(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	_, _, err := arbench(t, "run", "-model", "rnn", "-task", "text/jargon,text/nope", "-steps", "1", "-out", out, "-quiet")
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("output directory created: %v", err)
	}
	_, _, err = arbench(t, "run", "-model", "lstn", "-task", "text/jargn", "-steps", "1", "-out", out, "-quiet")
	if err == nil || !strings.Contains(err.Error(), "lstn") || !strings.Contains(err.Error(), "jargn") {
		t.Errorf("both typos must be reported: %v", err)
	}
}

// corpusFile writes a small text corpus named name.
func corpusFile(t *testing.T, name string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	text := strings.Repeat("the quick brown fox jumps over the lazy dog; ", 200)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "exp.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
