package slurm

import (
	"bytes"
	"flag"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// sweep is a Script as `arbench slurm` would write one for an 8-shard
// experiment.
func sweep() Script {
	return Script{
		JobName:     "arbench-quick",
		Parallel:    3,
		Partition:   "debug",
		Time:        "1:00:00",
		CPUsPerTask: 2,
		Mem:         "4G",
		Output:      "/shared/sweep/slurm/%A_%a.out",
		Workdir:     "/shared/sweep",
		LogDir:      "/shared/sweep/logs",
		Extra:       []string{"--account=proj"},
		Command: QuoteArgs("/shared/bin/arbench", "run", "-config", "experiments/quick.yaml", "-shard") +
			` "$ARBENCH_TASK_ID/8" -out /shared/sweep/shard-"$ARBENCH_TASK_ID"`,
	}
}

// goldenScripts are the renderings kept under testdata/.
func goldenScripts(t *testing.T) map[string]Script {
	full := sweep()
	full.Tasks = Range(8)

	minimal := Script{JobName: "x", Tasks: []int{0}, Command: "true"}

	// A resubmission of the shards that failed, one of them after a
	// dependency.
	resubmit := sweep()
	resubmit.Tasks = []int{9, 2, 7, 8}
	resubmit.After = []string{"4242"}

	// Paths with a space, quotes, a # and a $ must survive sbatch's and
	// bash's word splitting.
	quoting := Script{
		JobName: `it's "arbench" #1`,
		Tasks:   Range(2),
		Output:  `/tmp/a dir/#1/"q"/%A_%a.out`,
		LogDir:  `/tmp/a dir/it's $HOME`,
		Command: "echo " + Quote(`it's $HOME`),
	}

	// 2500 shards on a cluster with the default MaxArraySize: three
	// submissions, the later ones chained as SubmitAll would.
	parts, err := Plan(sweep(), Range(2500), 1001)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 3 {
		t.Fatalf("Plan(2500 tasks, max 1001) gave %d parts, want 3", len(parts))
	}
	parts[1].After = []string{"100"}
	parts[2].After = []string{"101"}
	return map[string]Script{
		"full": full, "minimal": minimal, "resubmit": resubmit, "quoting": quoting,
		"split-1": parts[0], "split-2": parts[1], "split-3": parts[2],
	}
}

func TestRenderGolden(t *testing.T) {
	for name, s := range goldenScripts(t) {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := s.Render(&b); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", name+".sbatch")
			if *update {
				if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (create it with -update)", err)
			}
			if !bytes.Equal(b.Bytes(), want) {
				t.Errorf("Render differs from %s (rerun with -update if the change is meant):\n--- got\n%s--- want\n%s", path, b.Bytes(), want)
			}
		})
	}
}

// Every golden script is valid bash.
func TestRenderBashSyntax(t *testing.T) {
	bash := needBash(t)
	files, _ := filepath.Glob(filepath.Join("testdata", "*.sbatch"))
	if len(files) == 0 {
		t.Fatal("no testdata/*.sbatch")
	}
	for _, f := range files {
		if out, err := exec.Command(bash, "-n", f).CombinedOutput(); err != nil {
			t.Errorf("bash -n %s: %v\n%s", f, err, out)
		}
	}
}

func needBash(t *testing.T) string {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash to run the rendered scripts")
	}
	return bash
}

// The body of a rendered script, run by bash as a Slurm array task would
// run it: the task index is SLURM_ARRAY_TASK_ID plus the offset, output goes
// to LogDir/task-<index>.log (in a directory with a space and a quote in
// its name), and the command's exit status is the task's.
func TestRenderRunsUnderBash(t *testing.T) {
	bash := needBash(t)
	dir := filepath.Join(t.TempDir(), "it's a dir")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := Script{
		JobName: "t",
		Tasks:   []int{1001, 1002, 1003},
		Offset:  1001,
		LogDir:  dir,
		Command: "echo hello from \"$ARBENCH_TASK_ID\"\necho \"$ARBENCH_TASK_ID\" > " + Quote(dir) + "/out\nexit 7",
	}
	var b bytes.Buffer
	if err := s.Render(&b); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "job.sbatch")
	if err := os.WriteFile(script, b.Bytes(), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bash, script)
	cmd.Env = append(os.Environ(), "SLURM_ARRAY_TASK_ID=2", "SLURM_ARRAY_JOB_ID=77")
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
		t.Fatalf("script exited with %v, want exit status 7 (the command's)", err)
	}
	out, err := os.ReadFile(filepath.Join(dir, "out"))
	if err != nil || string(out) != "1003\n" {
		t.Fatalf("out = %q, %v; want ARBENCH_TASK_ID 1003 (array index 2 + offset 1001)", out, err)
	}
	log, err := os.ReadFile(filepath.Join(dir, "task-1003.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"arbench-slurm: task 1003: job 77_2 on ", "hello from 1003\n"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("task-1003.log lacks %q:\n%s", want, log)
		}
	}

	// Run outside Slurm, it says so instead of running the command.
	cmd = exec.Command(bash, script)
	cmd.Env = slices.DeleteFunc(os.Environ(), func(e string) bool { return strings.HasPrefix(e, "SLURM_") })
	msg, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "submit this script with sbatch") {
		t.Errorf("without SLURM_ARRAY_TASK_ID: %v, %q; want a failure naming sbatch", err, msg)
	}
}

func TestValidate(t *testing.T) {
	good := sweep()
	good.Tasks = Range(3)
	if err := good.Validate(); err != nil {
		t.Fatalf("valid script: %v", err)
	}
	for _, tc := range []struct {
		edit func(*Script)
		want []string // substrings of the error, all of them
	}{
		{func(s *Script) { s.JobName = "" }, []string{"JobName: empty"}},
		{func(s *Script) { s.JobName = "a\nb" }, []string{"JobName", "newline"}},
		{func(s *Script) { s.Tasks = nil }, []string{"Tasks: no tasks"}},
		{func(s *Script) { s.Tasks = []int{1, 1} }, []string{"task 1 listed twice"}},
		{func(s *Script) { s.Tasks, s.Offset = []int{3}, 5 }, []string{"task 3 is below Offset 5"}},
		{func(s *Script) { s.Parallel = -1 }, []string{"Parallel"}},
		{func(s *Script) { s.Partition = "a b" }, []string{"Partition"}},
		{func(s *Script) { s.Time = "1h" }, []string{"Time", "1h"}},
		{func(s *Script) { s.Mem = "4GB" }, []string{"Mem", "4GB"}},
		{func(s *Script) { s.CPUsPerTask = -2 }, []string{"CPUsPerTask"}},
		{func(s *Script) { s.Output = "x\n#SBATCH --uid=0" }, []string{"Output", "newline"}},
		{func(s *Script) { s.LogDir = "a\rb" }, []string{"LogDir"}},
		{func(s *Script) { s.After = []string{"12;34"} }, []string{"After", "not a job ID"}},
		{func(s *Script) { s.Extra = []string{"-A proj"} }, []string{"Extra", "long sbatch option"}},
		{func(s *Script) { s.Command = " \n" }, []string{"Command: empty"}},
		// Every problem at once.
		{func(s *Script) { s.JobName, s.Time, s.Mem = "", "x", "y" }, []string{"JobName", "Time", "Mem"}},
	} {
		s := good
		s.Tasks = slices.Clone(good.Tasks)
		tc.edit(&s)
		err := s.Validate()
		if err == nil {
			t.Errorf("%+v: no error, want %q", s, tc.want)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q lacks %q", err, w)
			}
		}
		if err := s.Render(&bytes.Buffer{}); err == nil {
			t.Errorf("Render of an invalid script (%v) succeeded", tc.want)
		}
	}
	for _, ok := range []string{"30", "5:00", "1:00:00", "2-0", "2-12:30", "2-12:30:00", "UNLIMITED", "infinite"} {
		s := good
		s.Time = ok
		if err := s.Validate(); err != nil {
			t.Errorf("Time %q: %v", ok, err)
		}
	}
}

func TestArraySpec(t *testing.T) {
	for _, tc := range []struct {
		tasks    []int
		offset   int
		parallel int
		want     string
	}{
		{Range(3), 0, 2, "0-2%2"},
		{Range(1), 0, 0, "0"},
		{[]int{9, 2, 7, 8}, 0, 0, "2,7-9"},
		{[]int{1001, 1002, 1500}, 1001, 4, "0-1,499%4"},
		{[]int{0, 2, 4}, 0, 1, "0,2,4%1"},
	} {
		s := Script{Tasks: tc.tasks, Offset: tc.offset, Parallel: tc.parallel}
		if got := s.ArraySpec(); got != tc.want {
			t.Errorf("ArraySpec(%v, offset %d, %%%d) = %q, want %q", tc.tasks, tc.offset, tc.parallel, got, tc.want)
		}
	}
}

func TestSplit(t *testing.T) {
	type chunk struct{ off, n, first, last int }
	for _, tc := range []struct {
		name  string
		tasks []int
		max   int
		want  []chunk
	}{
		{"fits", Range(3), 1001, []chunk{{0, 3, 0, 2}}},
		{"exactly max", Range(1001), 1001, []chunk{{0, 1001, 0, 1000}}},
		{"one over", Range(1002), 1001, []chunk{{0, 1001, 0, 1000}, {1001, 1, 1001, 1001}}},
		{"2500 shards", Range(2500), 1001, []chunk{{0, 1001, 0, 1000}, {1001, 1001, 1001, 2001}, {2002, 498, 2002, 2499}}},
		// A resubmission: chunks start at their first task, so sparse
		// high indices need no more submissions than they must.
		{"sparse", []int{3000, 5, 1005, 1000}, 1001, []chunk{{5, 3, 5, 1005}, {3000, 1, 3000, 3000}}},
		{"max 1", []int{4, 2}, 1, []chunk{{2, 1, 2, 2}, {4, 1, 4, 4}}},
	} {
		got, err := Split(tc.tasks, tc.max)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		var g []chunk
		for _, c := range got {
			g = append(g, chunk{c.Offset, len(c.Tasks), c.Tasks[0], c.Tasks[len(c.Tasks)-1]})
		}
		if !slices.Equal(g, tc.want) {
			t.Errorf("%s: Split = %v, want %v (offset, count, first, last)", tc.name, g, tc.want)
		}
	}
	for _, tc := range []struct {
		tasks []int
		max   int
		want  string
	}{
		{Range(3), 0, "job arrays are disabled"},
		{nil, 10, "no tasks"},
		{[]int{1, -1}, 10, "negative"},
		{[]int{3, 1, 3}, 10, "listed twice"},
	} {
		if _, err := Split(tc.tasks, tc.max); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Split(%v, %d) = %v, want an error with %q", tc.tasks, tc.max, err, tc.want)
		}
	}
}

// Split, on random task sets: a partition of the tasks, every array index
// within 0..max-1, and no two neighbouring chunks that could have been one.
func TestSplitProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 500; iter++ {
		max := 1 + r.IntN(20)
		set := map[int]bool{}
		for n := 1 + r.IntN(60); len(set) < n; {
			set[r.IntN(200)] = true
		}
		var tasks []int
		for k := range set {
			tasks = append(tasks, k)
		}
		chunks, err := Split(tasks, max)
		if err != nil {
			t.Fatal(err)
		}
		var all []int
		for i, c := range chunks {
			if c.Tasks[0] != c.Offset {
				t.Fatalf("chunk %d starts at %d, offset %d", i, c.Tasks[0], c.Offset)
			}
			for _, x := range c.Tasks {
				if idx := x - c.Offset; idx < 0 || idx >= max {
					t.Fatalf("max %d: task %d has array index %d", max, x, idx)
				}
			}
			if i > 0 && c.Offset-chunks[i-1].Offset < max {
				t.Fatalf("max %d: chunk %d (offset %d) fits in chunk %d (offset %d)", max, i, c.Offset, i-1, chunks[i-1].Offset)
			}
			all = append(all, c.Tasks...)
		}
		slices.Sort(tasks)
		if !slices.Equal(all, tasks) {
			t.Fatalf("chunks hold %v, want %v", all, tasks)
		}
	}
}

func TestPlan(t *testing.T) {
	tmpl := sweep()
	tmpl.After = []string{"7"}
	parts, err := Plan(tmpl, Range(2500), 1001)
	if err != nil {
		t.Fatal(err)
	}
	var specs []string
	for _, p := range parts {
		specs = append(specs, p.ArraySpec())
	}
	if want := []string{"0-1000%3", "0-1000%3", "0-497%3"}; !slices.Equal(specs, want) {
		t.Errorf("array specs %v, want %v", specs, want)
	}
	if parts[2].Offset != 2002 || parts[2].Tasks[0] != 2002 {
		t.Errorf("third part: offset %d, first task %d; want 2002", parts[2].Offset, parts[2].Tasks[0])
	}
	// The parts do not share slices with each other or the template.
	parts[0].After[0] = "changed"
	if parts[1].After[0] != "7" || tmpl.After[0] != "7" {
		t.Error("Plan's parts share their After slice")
	}

	// One submission: %a alone is fine; split, it would collide.
	tmpl.Output = "/shared/logs/%a.out"
	if _, err := Plan(tmpl, Range(10), 1001); err != nil {
		t.Errorf("Output %%a with one part: %v", err)
	}
	if _, err := Plan(tmpl, Range(2000), 1001); err == nil || !strings.Contains(err.Error(), "collide") {
		t.Errorf("Output %%a with two parts: %v, want a collision error", err)
	}
	tmpl.Output = "/shared/logs/%A_%a.out"
	if _, err := Plan(tmpl, Range(2000), 1001); err != nil {
		t.Errorf("Output %%A_%%a with two parts: %v", err)
	}
	// The template is validated.
	tmpl.Time = "soon"
	if _, err := Plan(tmpl, Range(3), 1001); err == nil || !strings.Contains(err.Error(), "Time") {
		t.Errorf("bad Time: %v", err)
	}
}

func TestQuote(t *testing.T) {
	bash := needBash(t)
	for _, s := range []string{"plain", "", "a b", "it's", `$HOME`, "`x`", `"q"`, "a\nb", "ü"} {
		out, err := exec.Command(bash, "-c", "printf %s "+Quote(s)).Output()
		if err != nil || string(out) != s {
			t.Errorf("bash printf %%s %s = %q, %v; want %q", Quote(s), out, err, s)
		}
	}
	if got := QuoteArgs("arbench", "-config", "my file.yaml"); got != "arbench -config 'my file.yaml'" {
		t.Errorf("QuoteArgs = %q", got)
	}
}

// The option checkers that Validate uses, which `arbench slurm` applies to
// its flags.
func TestCheckOptions(t *testing.T) {
	for _, tc := range []struct {
		check   func(string) error
		ok, bad []string
	}{
		{CheckPartition, []string{"debug", "gpu,cpu", "a.b_c-1"}, []string{"", "a b", "a,", "x;y"}},
		{CheckTime, []string{"30", "1:00:00", "2-12", "UNLIMITED"}, []string{"", "1h", "-1", "1:2:3:4"}},
		{CheckMem, []string{"512", "4G", "100m"}, []string{"", "4GB", "1.5G", "-1"}},
		{CheckOption, []string{"--account=proj", "--exclusive", "--gres=gpu:1"}, []string{"", "--", "-A proj", "--a\nb"}},
	} {
		for _, v := range tc.ok {
			if err := tc.check(v); err != nil {
				t.Errorf("%q: %v", v, err)
			}
		}
		for _, v := range tc.bad {
			if err := tc.check(v); err == nil || !strings.Contains(err.Error(), strconv.Quote(v)) {
				t.Errorf("%q: err = %v, want one quoting the value", v, err)
			}
		}
	}
}
