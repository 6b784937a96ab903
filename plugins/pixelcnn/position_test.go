package pixelcnn

import (
	"context"
	"errors"
	"math"
	"testing"

	"arbench/harness"
	"arbench/plugins/internal/lm"
	"arbench/plugins/internal/plugintest"
)

// TestPixelCNNPositionCache decodes whole images through NextLogProbsAt
// at two batch sizes, for both families, and requires every position's
// distribution to be NextLogProbs's (the image is taller than the
// receptive field, so the network runs on the field's rows only, and a
// field one row too short would change the values), at most FieldRows+1
// executables per batch compiled, and the cache to hold at most 2·B·H
// image rows of the batch B in use.
func TestPixelCNNPositionCache(t *testing.T) {
	for _, gated := range []bool{false, true} {
		m := NewPixelCNN().(*Model)
		if gated {
			m = NewGated().(*Model)
		}
		t.Run(m.family, func(t *testing.T) { testPositionCache(t, m) })
	}
}

func testPositionCache(t *testing.T, m *Model) {
	const h, w = 7, 4
	m.cfg.Channels, m.cfg.Layers, m.cfg.Kernel, m.cfg.BlockKernel, m.cfg.Height, m.cfg.Width = 8, 1, 3, 3, h, w
	if rf := m.cfg.FieldRows(); rf != 2 {
		t.Fatalf("FieldRows %d, want 2 (kernel 3 and one block of 3)", rf)
	}
	if _, err := m.NextLogProbsAt(context.Background(), [][]int{{2}}, 0); !errors.Is(err, lm.ErrNotSetup) {
		t.Errorf("NextLogProbsAt before Setup: %v", err)
	}
	if err := m.Setup(context.Background(), harness.Env{Backend: plugintest.Backend(t), Vocab: Vocab, SeqLen: h * w, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, B := range []int{3, 1, 3} {
		rows := make([][]int, B)
		for i := range rows {
			rows[i] = []int{Start}
			for j := 1; j < h*w; j++ {
				rows[i] = append(rows[i], (i+j*j)%3%2)
			}
		}
		full, err := m.NextLogProbs(context.Background(), rows)
		if err != nil {
			t.Fatal(err)
		}
		for at := range h * w {
			// The tokens after the prefix are never read: pad with 1s.
			in := make([][]int, B)
			for i := range in {
				in[i] = append([]int(nil), rows[i][:at+1]...)
				for len(in[i]) < h*w {
					in[i] = append(in[i], 1)
				}
			}
			got, err := m.NextLogProbsAt(context.Background(), in, at)
			if err != nil {
				t.Fatal(err)
			}
			for i := range B {
				for v := range Vocab {
					if d := math.Abs(float64(got[i][v] - full[i][at][v])); d > 1e-5 {
						t.Fatalf("batch %d row %d position %d token %d: %v, NextLogProbs %v", B, i, at, v, got[i][v], full[i][at][v])
					}
				}
			}
			if m.gen.rows > max(2*B*h, B*(at/w+1)) {
				t.Fatalf("batch %d position %d: the cache holds %d batch·rows, want at most %d", B, at, m.gen.rows, 2*B*h)
			}
		}
		for k := range m.gen.execs {
			if k[1] > m.cfg.FieldRows()+1 {
				t.Errorf("an executable of %d rows: the network ran beyond the receptive field's %d rows", k[1], m.cfg.FieldRows()+1)
			}
		}
		if _, ok := m.gen.execs[[2]int{B, m.cfg.FieldRows() + 1}]; !ok {
			t.Errorf("batch %d: no executable for the field's %d rows cached", B, m.cfg.FieldRows()+1)
		}
	}
	for _, bad := range []int{-1, h * w} {
		if _, err := m.NextLogProbsAt(context.Background(), [][]int{make([]int, h*w)}, bad); err == nil {
			t.Errorf("NextLogProbsAt(%d) of a %d-pixel image succeeded", bad, h*w)
		}
	}
	if _, err := m.NextLogProbsAt(context.Background(), [][]int{{2, 5}}, 1); err == nil {
		t.Error("NextLogProbsAt of token 5 succeeded")
	}
	if err := m.Close(); err != nil || len(m.gen.execs) != 0 {
		t.Errorf("Close: %v, %d executables left", err, len(m.gen.execs))
	}
}
