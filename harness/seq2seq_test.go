package harness_test

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"arbench/harness"
	"arbench/harness/harnesstest"
	"arbench/nn"
)

// A conditional batch as tasks/seq2seq's PadBatch frames it: sources
// padded with SourcePad, inputs BOS + target, targets target + EOS.
func condBatch() harness.Batch {
	return harness.Batch{
		Source:  [][]int{{6, 7, 8}, {9, 0, 0}},
		Inputs:  [][]int{{1, 8, 7}, {1, 9, 0}},
		Targets: [][]int{{8, 7, 2}, {9, 2, -1}},
	}
}

func TestJoinSource(t *testing.T) {
	j, off := harness.JoinSource(condBatch())
	want := harness.Batch{
		Inputs:  [][]int{{6, 7, 8, 1, 8, 7}, {9, 1, 9, 0, 0, 0}},
		Targets: [][]int{{-1, -1, -1, 8, 7, 2}, {-1, 9, 2, -1, -1, -1}},
	}
	if !reflect.DeepEqual(j, want) || !reflect.DeepEqual(off, []int{3, 1}) {
		t.Fatalf("JoinSource = %v %v, want %v [3 1]", j, off, want)
	}
	if got := harness.SourceLen([]int{5, 5}); got != 2 {
		t.Errorf("SourceLen of an unpadded row = %d", got)
	}
}

// joiner is the fake bigram language model in its joined mode.
type joiner struct{ *harnesstest.LM }

func (joiner) JoinsSource() bool { return true }

// newJoiner returns a set-up joiner over vocab 10 whose greedy chain from
// BOS (1) is 6, 7, then EOS (2).
func newJoiner(t *testing.T) joiner {
	t.Helper()
	m := joiner{harnesstest.NewLM()}
	b, err := nn.OpenBackend("fake", "cpu")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Setup(context.Background(), harness.Env{Backend: b, Vocab: 10, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	w := m.Params().Get("w")
	for prev, next := range map[int]int{1: 6, 6: 7, 7: 2} {
		w.Data[prev*10+next] = 5
	}
	return m
}

func TestBatchForAndScoreBatchJoined(t *testing.T) {
	m := newJoiner(t)
	b := condBatch()
	j, err := harness.BatchFor(m, b)
	if err != nil || j.Source != nil || len(j.Inputs[0]) != 6 {
		t.Fatalf("BatchFor = %v, %v", j, err)
	}
	got, err := harness.ScoreBatch(context.Background(), m, b)
	if err != nil {
		t.Fatal(err)
	}
	full, err := m.LogProbs(context.Background(), j)
	if err != nil {
		t.Fatal(err)
	}
	for i, row := range b.Targets {
		for tt, tok := range row {
			want := 0.0
			if tok >= 0 {
				want = full[i][harness.SourceLen(b.Source[i])+tt]
			}
			if got[i][tt] != want || (tok >= 0 && want == 0) {
				t.Errorf("row %d position %d: %v, want %v", i, tt, got[i][tt], want)
			}
		}
	}
	if _, err := harness.BatchFor(harnesstest.NewLM(), b); err == nil || !strings.Contains(err.Error(), "cannot read a source") {
		t.Errorf("plain language model given a source: %v", err)
	}
}

func TestTranslateJoinedGreedy(t *testing.T) {
	m := newJoiner(t)
	ctx := context.Background()
	srcs := [][]int{{8, 9, 8}, {9}, {8, 8, 8}}
	got, err := harness.Translate(ctx, m, srcs, harness.TranslateOptions{Start: 1, End: 2, MaxLen: 5})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]int{{6, 7}, {6, 7}, {6, 7}}
	if !reflect.DeepEqual(got.Outputs, want) || got.Passes != 3 {
		t.Errorf("Translate = %v in %d passes, want %v in 3", got.Outputs, got.Passes, want)
	}
	cut, err := harness.Translate(ctx, m, srcs, harness.TranslateOptions{Start: 1, End: 2, MaxLen: 1})
	if err != nil || !reflect.DeepEqual(cut.Outputs[1], []int{6}) || cut.Passes != 1 {
		t.Errorf("MaxLen 1: %v, %v", cut, err)
	}
	fixed, err := harness.Translate(ctx, m, srcs, harness.TranslateOptions{Start: 1, End: 2, Length: 4})
	if err != nil || len(fixed.Outputs[0]) != 4 || !reflect.DeepEqual(fixed.Outputs[0][:3], []int{6, 7, 2}) || fixed.Passes != 4 {
		t.Errorf("Length 4: %v, %v", fixed, err)
	}
	if _, err := harness.Translate(ctx, m, srcs, harness.TranslateOptions{Start: 1, End: 2, MaxLen: 5, Setting: "T=2"}); err == nil {
		t.Error("a setting was accepted by a model without DecodeSettings")
	}
	if _, err := harness.Translate(ctx, harnesstest.NewLM(), srcs, harness.TranslateOptions{Start: 1, End: 2, MaxLen: 5}); err == nil {
		t.Error("a plain language model translated")
	}
}

// reverser is a conditional SourceStepper that emits each source reversed,
// then End (2), over a vocabulary of 10.
type reverser struct{ starts int }

type revState struct {
	src [][]int
	n   int
}

func (s *revState) Len() int { return s.n }

func (*reverser) Config() harness.Config                   { return nil }
func (*reverser) Setup(context.Context, harness.Env) error { return nil }
func (*reverser) Params() *nn.ParamSet                     { return nil }
func (*reverser) Info() harness.ModelInfo                  { return harness.ModelInfo{Family: "reverser"} }
func (*reverser) Conditional() bool                        { return true }
func (r *reverser) dists(s *revState) [][]float32 {
	out := make([][]float32, len(s.src))
	for i, src := range s.src {
		next := 2
		if k := s.n - 1; k < len(src) {
			next = src[len(src)-1-k]
		}
		out[i] = make([]float32, 10)
		for v := range out[i] {
			out[i][v] = float32(math.Log(0.01))
		}
		out[i][next] = float32(math.Log(0.91))
	}
	return out
}

func (r *reverser) StartSource(_ context.Context, sources, prompts [][]int) (harness.State, [][]float32, error) {
	if len(sources) != len(prompts) {
		return nil, nil, fmt.Errorf("%d sources, %d prompts", len(sources), len(prompts))
	}
	r.starts++
	s := &revState{src: sources, n: len(prompts[0])}
	return s, r.dists(s), nil
}

func (r *reverser) Step(_ context.Context, st harness.State, tokens []int) ([][]float32, error) {
	s := st.(*revState)
	s.n++
	return r.dists(s), nil
}

func TestTranslateSourceStepper(t *testing.T) {
	r := &reverser{}
	srcs := [][]int{{6, 7, 8}, {9}, {6, 6, 7, 9}}
	got, err := harness.Translate(context.Background(), r, srcs, harness.TranslateOptions{Start: 1, End: 2, MaxLen: 10})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]int{{8, 7, 6}, {9}, {9, 7, 6, 6}}
	if !reflect.DeepEqual(got.Outputs, want) || got.Passes != 5 || r.starts != 1 {
		t.Errorf("Translate = %v in %d passes (%d starts), want %v in 5 passes, 1 start", got.Outputs, got.Passes, r.starts, want)
	}
	if harness.SourceMode(r) != "conditioner" || !harness.NeedSource.Has(r) {
		t.Error("a Conditioner does not meet NeedSource")
	}
}

// An AR language model without a source-aware mode is refused for a task
// that needs a source, before any work, naming model, task and capability;
// the joined-mode fake is not.
func TestRunRefusesLanguageModelWithoutSourceMode(t *testing.T) {
	e := hardExperiment(t, "  - name: fake-needy\n    config: {seq_len: 6, length: 300, needs: ['"+string(harness.NeedSource)+"']}\n",
		"  - name: fake-lm\n")
	_, err := harness.Run(context.Background(), e, runOpts())
	if err == nil || !strings.Contains(err.Error(), "models[0]: model fake-lm cannot run task fake-needy: it lacks a source-aware mode") {
		t.Fatalf("err = %v", err)
	}
	noOutput(t, e.Out)
	if !harness.NeedSource.Has(newJoiner(t)) || harness.NeedSource.Has(harnesstest.NewLM()) {
		t.Error("NeedSource.Has disagrees with SourceMode")
	}
}
