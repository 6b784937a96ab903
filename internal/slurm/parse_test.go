package slurm

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseConfig(t *testing.T) {
	conf := parseConfig(readTestdata(t, "scontrol-show-config.txt"))
	for k, want := range map[string]string{
		"MaxArraySize":          "1001",
		"AccountingStorageType": "accounting_storage/none",
		"MinJobAge":             "300 sec",
		"SLURM_VERSION":         "22.05.8",
		"SelectType":            "select/cons_tres",
	} {
		if conf[k] != want {
			t.Errorf("%s = %q, want %q", k, conf[k], want)
		}
	}
	if n, err := maxArraySize(conf); err != nil || n != 1001 {
		t.Errorf("maxArraySize = %d, %v; want 1001", n, err)
	}
	if _, err := maxArraySize(map[string]string{}); err == nil {
		t.Error("maxArraySize without the key: no error")
	}
	if _, err := maxArraySize(map[string]string{"MaxArraySize": "lots"}); err == nil {
		t.Error("maxArraySize of a non-number: no error")
	}
}

func TestParseSqueue(t *testing.T) {
	tasks, err := parseSqueue(readTestdata(t, "squeue-pending.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range tasks {
		got = append(got, x.JobID+" "+string(x.State)+" "+x.Reason)
	}
	want := []string{
		"1 COMPLETED None",
		"2_0 COMPLETED None", "2_1 COMPLETED None", "2_2 COMPLETED None",
		"5_0 RUNNING None",
		"5_1 PENDING JobArrayTaskLimit", "5_2 PENDING JobArrayTaskLimit", "5_3 PENDING JobArrayTaskLimit",
		"6 RUNNING None", "7 PENDING Dependency", "8 PENDING Resources", "9 FAILED BadConstraints",
	}
	if !slices.Equal(got, want) {
		t.Errorf("tasks (ordered by job, task):\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	five := tasks[5]
	if five.ArrayJobID != "5" || five.ArrayTaskID != 1 || five.Nodes != "" {
		t.Errorf("5_1 = %+v", five)
	}
	if tasks[0].ArrayTaskID != -1 || tasks[0].ArrayJobID != "1" {
		t.Errorf("plain job 1 = %+v, want ArrayTaskID -1", tasks[0])
	}
	if tasks[4].Elapsed != 2*time.Second || tasks[4].Nodes != "localhost" {
		t.Errorf("5_0 = %+v, want 2s on localhost", tasks[4])
	}

	fin, err := parseSqueue(readTestdata(t, "squeue-finished.txt"))
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]State{}
	for _, x := range fin {
		states[x.JobID] = x.State
		if !x.State.Finished() {
			t.Errorf("%s: %s is not Finished", x.JobID, x.State)
		}
	}
	for id, want := range map[string]State{"5_1": Failed, "6": Cancelled, "8": Timeout, "2_0": Completed} {
		if states[id] != want {
			t.Errorf("%s = %s, want %s", id, states[id], want)
		}
	}

	if _, err := parseSqueue([]byte("1|1|N/A|RUNNING\n")); err == nil {
		t.Error("short line: no error")
	}
	if _, err := parseSqueue([]byte("1_x|1|x|RUNNING|0:00||None\n")); err == nil {
		t.Error("bad array task ID: no error")
	}
	if got, err := parseSqueue(nil); err != nil || len(got) != 0 {
		t.Errorf("empty output: %v, %v", got, err)
	}
}

func TestParseSacct(t *testing.T) {
	recs, err := parseSacct(readTestdata(t, "sacct.txt"), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 8 {
		t.Fatalf("%d records, want 8", len(recs))
	}
	byID := map[string]Record{}
	for _, r := range recs {
		byID[r.JobID] = r
	}
	r := byID["13_1"]
	if r.ArrayJobID != "13" || r.ArrayTaskID != 1 || r.JobIDRaw != "15" || r.State != Failed || r.ExitCode != 3 || r.Nodes != "node02" {
		t.Errorf("13_1 = %+v", r)
	}
	r = byID["13_2"]
	if r.State != Cancelled || r.Signal != 15 || r.Elapsed != 26*time.Hour+3*time.Minute+4*time.Second {
		t.Errorf("13_2 = %+v, want CANCELLED, signal 15, 1-02:03:04", r)
	}
	if want := time.Date(2026, 12, 1, 1, 27, 3, 0, time.UTC); !r.Start.Equal(want) {
		t.Errorf("13_2 start %v, want %v", r.Start, want)
	}
	r = byID["13_5"]
	if r.State != Running || !r.End.IsZero() || r.State.Finished() {
		t.Errorf("13_5 = %+v, want RUNNING with no end", r)
	}
	r = byID["13_[6-9%2]"]
	if r.ArrayTaskID != -1 || !slices.Equal(r.ArrayTasks, []int{6, 7, 8, 9}) || r.State != Pending {
		t.Errorf("folded pending line = %+v, want tasks 6-9", r)
	}
	if byID["12"].ArrayTaskID != -1 || byID["12"].ArrayJobID != "12" {
		t.Errorf("plain job 12 = %+v", byID["12"])
	}
	if byID["13_4"].State != OutOfMemory || !byID["13_4"].State.Finished() {
		t.Errorf("13_4 = %+v", byID["13_4"])
	}
	if _, err := parseSacct([]byte("1|1|COMPLETED\n"), time.UTC); err == nil {
		t.Error("short line: no error")
	}
	if _, err := parseSacct([]byte("1|1|COMPLETED|x|00:00:01|n|Unknown|Unknown\n"), time.UTC); err == nil {
		t.Error("bad ExitCode: no error")
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"0:00":       0,
		"0:03":       3 * time.Second,
		"12:34":      12*time.Minute + 34*time.Second,
		"1:02:03":    time.Hour + 2*time.Minute + 3*time.Second,
		"2-03:04:05": 51*time.Hour + 4*time.Minute + 5*time.Second,
		"00:01.500":  1500 * time.Millisecond,
	} {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "INVALID", "1:2:3:4", "x-01:00:00", "2-03:04", "-1:00"} {
		if _, err := parseDuration(bad); err == nil {
			t.Errorf("parseDuration(%q): no error", bad)
		}
	}
}

func TestExpandArray(t *testing.T) {
	for in, want := range map[string][]int{
		"0":        {0},
		"0-3":      {0, 1, 2, 3},
		"1,4-5":    {1, 4, 5},
		"6-9%2":    {6, 7, 8, 9},
		"1-9:4":    {1, 5, 9},
		"0-2,7%10": {0, 1, 2, 7},
	} {
		if got, err := expandArray(in); err != nil || !slices.Equal(got, want) {
			t.Errorf("expandArray(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "a", "3-1", "1-4:0", "0-99999999"} {
		if _, err := expandArray(bad); err == nil {
			t.Errorf("expandArray(%q): no error", bad)
		}
	}
}

func TestParseSbatch(t *testing.T) {
	for in, want := range map[string]string{
		"42\n":                             "42",
		"42;arbench\n":                     "42",
		"sbatch: warning: something\n43\n": "43",
	} {
		if got, err := parseSbatch([]byte(in)); err != nil || got != want {
			t.Errorf("parseSbatch(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "Submitted batch job 42\n", "x;y"} {
		if _, err := parseSbatch([]byte(bad)); err == nil {
			t.Errorf("parseSbatch(%q): no error", bad)
		}
	}
}

// call is one command a fake runner was asked to run.
type call struct {
	name  string
	args  []string
	stdin string
}

// fakeRunner replaces runner for one test with reply, recording the calls.
func fakeRunner(t *testing.T, reply func(c call) ([]byte, error)) *[]call {
	t.Helper()
	var calls []call
	old := runner
	runner = func(_ context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
		c := call{name, args, string(stdin)}
		calls = append(calls, c)
		return reply(c)
	}
	t.Cleanup(func() { runner = old })
	return &calls
}

// failWith is what runner returns for a command that exited 1 saying stderr.
func failWith(c call, stderr string) error {
	return newCmdError(c.name, c.args, []byte(stderr+"\n"), errors.New("exit status 1"))
}

func TestSubmitSendsTheScript(t *testing.T) {
	calls := fakeRunner(t, func(call) ([]byte, error) { return []byte("42;arbench\n"), nil })
	s := sweep()
	s.Tasks = Range(8)
	id, err := Submit(context.Background(), s)
	if err != nil || id != "42" {
		t.Fatalf("Submit = %q, %v", id, err)
	}
	var want strings.Builder
	if err := s.Render(&want); err != nil {
		t.Fatal(err)
	}
	c := (*calls)[0]
	if c.name != "sbatch" || !slices.Equal(c.args, []string{"--parsable"}) || c.stdin != want.String() {
		t.Errorf("ran %s %v with stdin\n%s\nwant sbatch --parsable with the rendered script", c.name, c.args, c.stdin)
	}
	// An invalid script is never submitted.
	s.Time = "never"
	if _, err := Submit(context.Background(), s); err == nil || len(*calls) != 1 {
		t.Errorf("invalid script: %v, %d calls", err, len(*calls))
	}
}

func TestSubmitErrorCarriesStderr(t *testing.T) {
	fakeRunner(t, func(c call) ([]byte, error) {
		return nil, failWith(c, "sbatch: error: invalid partition specified: nosuch\nsbatch: error: Batch job submission failed: Invalid partition name specified")
	})
	s := Script{JobName: "x", Tasks: Range(1), Partition: "nosuch", Command: "true"}
	_, err := Submit(context.Background(), s)
	var ce *CmdError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "invalid partition specified: nosuch") ||
		!strings.HasPrefix(err.Error(), "sbatch --parsable: exit status 1: ") {
		t.Errorf("error %q (%T), want a *CmdError naming sbatch --parsable with its stderr", err, err)
	}
}

func TestSubmitAllChains(t *testing.T) {
	next := 100
	calls := fakeRunner(t, func(c call) ([]byte, error) {
		next++
		if next == 103 {
			return nil, failWith(c, "sbatch: error: Slurm temporarily unable to accept job")
		}
		return []byte(strconv.Itoa(next) + "\n"), nil
	})
	parts, err := Plan(sweep(), Range(3000), 1001)
	if err != nil {
		t.Fatal(err)
	}
	subs, err := SubmitAll(context.Background(), parts, true)
	if err == nil || !strings.Contains(err.Error(), "submission 3 of 3") || !strings.Contains(err.Error(), "temporarily unable") {
		t.Errorf("third submission failing: %v", err)
	}
	if len(subs) != 2 || subs[0].JobID != "101" || subs[1].JobID != "102" {
		t.Fatalf("submissions made: %+v, want jobs 101 and 102", subs)
	}
	if strings.Contains((*calls)[0].stdin, "--dependency") {
		t.Error("first submission has a dependency")
	}
	for i, want := range []string{"", "#SBATCH --dependency=afterany:101\n", "#SBATCH --dependency=afterany:102\n"} {
		if want != "" && !strings.Contains((*calls)[i].stdin, want) {
			t.Errorf("submission %d lacks %q:\n%s", i+1, want, (*calls)[i].stdin)
		}
	}
	if got := subs[1].Task(5); got != 1006 {
		t.Errorf("second submission's array index 5 is task %d, want 1006", got)
	}
	if parts[1].After != nil {
		t.Error("SubmitAll changed the caller's scripts")
	}

	// Unchained, no dependencies.
	*calls = nil
	next = 200
	if _, err := SubmitAll(context.Background(), parts[:2], false); err != nil {
		t.Fatal(err)
	}
	for _, c := range *calls {
		if strings.Contains(c.stdin, "--dependency") {
			t.Error("unchained submission has a dependency")
		}
	}
}

func TestQueueCommand(t *testing.T) {
	calls := fakeRunner(t, func(c call) ([]byte, error) {
		if slices.Contains(c.args, "--jobs=99") {
			return nil, failWith(c, "slurm_load_jobs error: Invalid job id specified")
		}
		return readTestdata(t, "squeue-pending.txt"), nil
	})
	tasks, err := Queue(context.Background(), []string{"5", "6"})
	if err != nil || len(tasks) != 12 {
		t.Fatalf("Queue = %d tasks, %v", len(tasks), err)
	}
	want := []string{"--noheader", "--array", "--states=all", "--jobs=5,6", "--format=" + squeueFormat}
	if c := (*calls)[0]; c.name != "squeue" || !slices.Equal(c.args, want) {
		t.Errorf("ran %s %v, want squeue %v", c.name, c.args, want)
	}
	// A single job squeue has forgotten is not an error: it has ended.
	if tasks, err := Queue(context.Background(), []string{"99"}); err != nil || tasks != nil {
		t.Errorf("forgotten job: %v, %v; want no tasks, no error", tasks, err)
	}
	if _, err := Queue(context.Background(), []string{"5; rm -rf /"}); err == nil {
		t.Error("bad job ID: no error")
	}
	if tasks, err := Queue(context.Background(), nil); err != nil || tasks != nil || len(*calls) != 2 {
		t.Errorf("no jobs: %v, %v, %d calls", tasks, err, len(*calls))
	}
}

func TestAccountingDisabled(t *testing.T) {
	// What sacct says on the cluster of `make slurm-up` (exit status 1,
	// nothing on stdout).
	fakeRunner(t, func(c call) ([]byte, error) { return nil, failWith(c, "Slurm accounting storage is disabled") })
	_, err := Accounting(context.Background(), []string{"5"})
	var ce *CmdError
	if !errors.Is(err, ErrNoAccounting) || !errors.As(err, &ce) || !strings.Contains(err.Error(), "sacct --noheader") {
		t.Errorf("Accounting = %v, want ErrNoAccounting wrapping sacct's *CmdError", err)
	}
}

func TestAccountingCommand(t *testing.T) {
	calls := fakeRunner(t, func(c call) ([]byte, error) {
		if slices.Contains(c.args, "--jobs=1") {
			return nil, failWith(c, "sacct: error: slurm_persist_conn_open_without_init: failed to open persistent connection to host:localhost:6819: Connection refused")
		}
		return readTestdata(t, "sacct.txt"), nil
	})
	recs, err := Accounting(context.Background(), []string{"12", "13"})
	if err != nil || len(recs) != 8 {
		t.Fatalf("Accounting = %d records, %v", len(recs), err)
	}
	want := []string{"--noheader", "--parsable2", "--allocations", "--jobs=12,13", "--format=" + sacctFields}
	if c := (*calls)[0]; c.name != "sacct" || !slices.Equal(c.args, want) {
		t.Errorf("ran %s %v, want sacct %v", c.name, c.args, want)
	}
	// slurmdbd down is a failure, not "no accounting".
	_, err = Accounting(context.Background(), []string{"1"})
	if err == nil || errors.Is(err, ErrNoAccounting) || !strings.Contains(err.Error(), "Connection refused") {
		t.Errorf("slurmdbd down: %v", err)
	}
}

func TestCancelCommand(t *testing.T) {
	calls := fakeRunner(t, func(call) ([]byte, error) { return nil, nil })
	if err := Cancel(context.Background()); err != nil || len(*calls) != 0 {
		t.Errorf("Cancel of nothing: %v, %d calls", err, len(*calls))
	}
	if err := Cancel(context.Background(), "5", "6_2"); err != nil {
		t.Fatal(err)
	}
	if c := (*calls)[0]; c.name != "scancel" || !slices.Equal(c.args, []string{"5", "6_2"}) {
		t.Errorf("ran %s %v", c.name, c.args)
	}
	if err := Cancel(context.Background(), "-u root"); err == nil {
		t.Error("Cancel of an option: no error")
	}
}

// Without Slurm's clients, Ping says so in a way callers can test for.
func TestPingWithoutSlurm(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := Ping(context.Background())
	var ce *CmdError
	if !errors.Is(err, exec.ErrNotFound) || !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), "sinfo ") {
		t.Errorf("Ping without sinfo = %v, want a *CmdError wrapping exec.ErrNotFound", err)
	}
}
