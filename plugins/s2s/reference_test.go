package s2s_test

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"arbench/harness"
	"arbench/nn"
	"arbench/plugins/internal/plugintest"
	"arbench/plugins/s2s"
)

// TestMatchesPyTorch loads the state_dict of the PyTorch twin
// (testdata/gen_reference.py) and requires every teacher-forced
// next-token distribution of its padded batch (sources of 6, 2 and 4
// tokens; decoder rows padded after their end token) to match PyTorch's
// within 1e-5, through LogProbs and through StartSource + StepN.
func TestMatchesPyTorch(t *testing.T) {
	const dir = "testdata"
	io := filepath.Join(dir, "reference.io.safetensors")
	m := s2s.New().(*s2s.Model)
	c := m.Config().(*s2s.Config)
	c.Dim, c.Heads = plugintest.Meta(t, dir, "dim"), plugintest.Meta(t, dir, "heads")
	c.Layers, c.EncLayers, c.DecLayers = 1, plugintest.Meta(t, dir, "enc_layers"), plugintest.Meta(t, dir, "dec_layers")
	c.FF, c.Context = plugintest.Meta(t, dir, "ff"), plugintest.Meta(t, dir, "context")
	vocab := plugintest.Meta(t, dir, "vocab")
	if vocab != tinyVocab {
		t.Fatalf("fixture vocabulary %d, the test helpers assume %d", vocab, tinyVocab)
	}
	floats, err := nn.ReadSafetensorsFloats(io)
	if err != nil {
		t.Fatal(err)
	}
	want := floats["logp"]
	B, T := want.Shape[0], want.Shape[1]
	src, inputs, targets := readRows(t, io, "src", B), readRows(t, io, "tgt_in", B), readRows(t, io, "targets", B)
	env := harness.Env{Backend: plugintest.Backend(t), Vocab: vocab, SourceLen: len(src[0]), TargetLen: T, Seed: 1}
	if err := m.Setup(t.Context(), env); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := nn.LoadSafetensors(filepath.Join(dir, "reference.weights.safetensors"), m.Params()); err != nil {
		t.Fatal(err)
	}
	wantAt := func(i, p int) []float64 {
		out := make([]float64, vocab)
		for v := range out {
			out[v] = float64(want.Data[(i*T+p)*vocab+v])
		}
		return out
	}

	lp, err := m.LogProbs(t.Context(), harness.Batch{Source: src, Inputs: inputs, Targets: targets})
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for i := range B {
		for p, tok := range targets[i] {
			if tok < 0 {
				if lp[i][p] != 0 {
					t.Errorf("row %d position %d: ignored target scored %g", i, p, lp[i][p])
				}
				continue
			}
			d := math.Abs(lp[i][p] - wantAt(i, p)[tok])
			worst = max(worst, d)
			if !(d <= 1e-5) {
				t.Errorf("row %d position %d: log p(%d) = %.7f, PyTorch %.7f", i, p, tok, lp[i][p], wantAt(i, p)[tok])
			}
		}
	}
	t.Logf("max |Δ log p| of the scored targets vs PyTorch = %.2e", worst)

	full := teacherForced(t, m, cut(src), inputs)
	for i := range B {
		for p := range T {
			got := make([]float32, vocab)
			for v := range got {
				got[v] = float32(full[i][p][v])
			}
			assertDist(t, fmt.Sprintf("teacher-forced row %d position %d vs PyTorch", i, p), got, wantAt(i, p))
		}
	}
	st, _, err := m.StartSource(t.Context(), cut(src), column(inputs, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.StepN(t.Context(), st, column(inputs, 1, T))
	if err != nil {
		t.Fatal(err)
	}
	for i := range B {
		for j := range T - 1 {
			assertDist(t, fmt.Sprintf("StepN row %d position %d vs PyTorch", i, j+1), out[i][j], wantAt(i, j+1))
		}
	}
}

// readRows reads an integer tensor [B, n] of the fixture as rows.
func readRows(t *testing.T, path, name string, B int) [][]int {
	t.Helper()
	flat, err := nn.ReadSafetensorsInts(path, name)
	if err != nil {
		t.Fatal(err)
	}
	n := len(flat) / B
	rows := make([][]int, B)
	for i := range rows {
		rows[i] = flat[i*n : (i+1)*n]
	}
	return rows
}

// cut returns padded sources without their padding.
func cut(src [][]int) [][]int {
	out := make([][]int, len(src))
	for i, row := range src {
		out[i] = row[:harness.SourceLen(row)]
	}
	return out
}

// column returns tokens from..to−1 of every row.
func column(rows [][]int, from, to int) [][]int {
	out := make([][]int, len(rows))
	for i := range out {
		out[i] = rows[i][from:to]
	}
	return out
}
