package bench

import (
	"context"
	"slices"
	"strings"
	"testing"

	"arbench/harness"
	nngorgonia "arbench/nn/gorgonia"
)

// TestPeersInterleaved runs a model and its peer (the same RNN under two
// labels, listed apart with a third model between them): every point both
// measure alternates their repeats, model first, the report keeps the
// models' order, and the peers table gives the paired ratios.
func TestPeersInterleaved(t *testing.T) {
	c := tinyConfig()
	c.Repeats = 3
	c.Peers = []harness.BenchPeer{{Model: "rnn", Peer: "rnn-b"}}
	b := spec(t, "rnn", "{embed: 4, hidden: 5}")
	b.Label = "rnn-b"
	opt := Options{
		Name: "pairs", Backend: nngorgonia.New(), Config: c, Seed: 1,
		Models: []harness.ModelSpec{spec(t, "rnn", "{embed: 4, hidden: 5}"), spec(t, "lstm", "{embed: 4, hidden: 5}"), b},
	}
	var log []string
	testHookRepeat = func(p Point) { log = append(log, p.Model+" "+describe(p)) }
	defer func() { testHookRepeat = nil }()
	rep, err := Run(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	// Each rnn point: rnn, rnn-b, three times, before the lstm's points.
	seen := map[string]bool{}
	for i := 0; i < len(log); {
		p := strings.TrimPrefix(log[i], "rnn ")
		if strings.HasPrefix(log[i], "lstm ") {
			break
		}
		want := slices.Repeat([]string{"rnn " + p, "rnn-b " + p}, 3)
		if i+6 > len(log) || !slices.Equal(log[i:i+6], want) {
			t.Fatalf("repeats from %d: %q, want %q", i, log[i:min(i+6, len(log))], want)
		}
		seen[p] = true
		i += 6
	}
	if n := len(rep.Points) / 3; len(seen) != n || n == 0 {
		t.Errorf("%d points interleaved, want every one of the %d per model (log %q)", len(seen), n, log)
	}
	for i, p := range rep.Points {
		if want := opt.Models[i/len(seen)].Label; p.Model != want {
			t.Errorf("point %d is %s's, want %s's (the models' order)", i, p.Model, want)
		}
		if want := map[string]string{"rnn": "rnn-b", "rnn-b": "rnn"}[p.Model]; p.InterleavedWith != want {
			t.Errorf("%s %s interleaved with %q, want %q", p.Model, describe(p), p.InterleavedWith, want)
		}
	}
	var buf strings.Builder
	if err := WriteMarkdown(&buf, rep); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	if !strings.Contains(md, "| rnn | rnn-b | train b=2 T=6 | train b=2 T=6 |") {
		t.Fatalf("no peers row for train b=2 T=6:\n%s", md)
	}
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, "| rnn | rnn-b |") && !strings.Contains(line, "× (") {
			t.Errorf("peers row without its paired ratios: %s", line)
		}
	}
}

// TestPairedRatios: round by round, only for two points interleaved with
// each other.
func TestPairedRatios(t *testing.T) {
	p := Point{Model: "a", InterleavedWith: "b", TokensPerSec: Summarize([]float64{2, 6, 3})}
	q := Point{Model: "b", InterleavedWith: "a", TokensPerSec: Summarize([]float64{1, 2, 3})}
	if got := pairedRatios(p, q); !slices.Equal(got, []float64{2, 3, 1}) {
		t.Errorf("paired ratios %v, want [2 3 1]", got)
	}
	if got := pairedCell(p, q); got != "2.00× (1.50–2.50)" {
		t.Errorf("paired cell %q", got)
	}
	q.InterleavedWith = ""
	if got := pairedCell(p, q); got != "—" {
		t.Errorf("measured apart: %q, want —", got)
	}
}
