package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"arbench/harness"
	nngorgonia "arbench/nn/gorgonia"
)

func spec(t testing.TB, name, cfg string) harness.ModelSpec {
	t.Helper()
	m, err := harness.NewModel(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := harness.DecodeConfig(name+".yaml", []byte(cfg), m.Config()); err != nil {
		t.Fatal(err)
	}
	return harness.ModelSpec{Name: name, Label: name, Config: m.Config(), Train: harness.DefaultTrain()}
}

func tinyConfig() *harness.BenchConfig {
	return &harness.BenchConfig{
		Vocab: 13, Warmup: 1, Repeats: 2, MinSeconds: 0, CeilingSize: 32,
		Train: harness.BenchSweep{Batch: 2, SeqLen: 6, SeqLens: []int{4, 6}, Batches: []int{3}},
		Score: harness.BenchSweep{Batch: 2, SeqLen: 6, SeqLens: []int{6}},
		Generate: harness.BenchGenerate{
			Prompt: 3, Batches: []int{1, 2}, Lengths: []int{4, 20},
			RefeedBatches: []int{1}, RefeedLengths: []int{4},
		},
		Translate: harness.BenchTranslate{Source: 3, Batches: []int{1, 2}, Lengths: []int{4}, Repeats: 3},
		Image:     harness.BenchImage{PassBatch: 2, Repeats: 2}, // off: no sizes
	}
}

// TestRunMeasuresAndWrites runs a tiny sweep end to end and checks the
// points, the skipped ones, the FLOP counts and every output file.
func TestRunMeasuresAndWrites(t *testing.T) {
	opt := Options{
		Name: "tiny", Backend: nngorgonia.New(), Config: tinyConfig(), Seed: 1,
		Models: []harness.ModelSpec{
			spec(t, "rnn", "{embed: 4, hidden: 5}"),
			spec(t, "transformer", "{dim: 8, heads: 2, layers: 1, context: 12}"),
		},
	}
	rep, err := Run(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Ceiling.Best <= 0 || rep.Ceiling.GFLOPS.N != 3 {
		t.Errorf("ceiling = %+v", rep.Ceiling)
	}
	if want := "arbench's GEMM with " + nngorgonia.GemmKernels() + " micro-kernels"; rep.BackendInfo != want {
		t.Errorf("backend info %q, want %q", rep.BackendInfo, want)
	}
	// Per model: train (4,6 at b2; b3 at 6) 3, score 1, generate 2×2
	// cached, translate (joined) 2×1 greedy; the transformer also 1
	// re-feeding point.
	count := map[string]int{}
	for _, p := range rep.Points {
		count[p.Model+"/"+p.Kind+"/"+p.Mode]++
		if p.Skipped != "" {
			if p.Model != "transformer" || p.Length != 20 {
				t.Errorf("unexpected skip: %+v", p)
			}
			continue
		}
		repeats := 2
		if p.Kind == KindTranslate {
			repeats = 3
			if p.SeqPerSec.N != 3 || p.Passes != float64(p.Length) || p.FLOPsNote != "" || p.Note != "" {
				t.Errorf("joined translation: %+v", p)
			}
		}
		if p.TokensPerSec.N != repeats || !(p.TokensPerSec.Median > 0) || !(p.FLOPsPerToken > 0) || p.Memory.PeakRSS <= 0 {
			t.Errorf("point not measured: %+v", p)
		}
		if p.Kind == KindGenerate && (p.Latency.N != 2*(p.Length-1) || len(p.LatencyRepeats) != 2 || p.TTFT.N != 2) {
			t.Errorf("generation timings: %+v", p)
		}
		if p.Model == "rnn" && p.Kind == KindTrain {
			want := RecurrentTrainStep(1, 4, 5, 1, 13, p.Batch, p.SeqLen) / float64(p.Batch*p.SeqLen)
			if p.FLOPsPerToken != want {
				t.Errorf("rnn train b=%d T=%d: %v FLOPs/token, formula %v", p.Batch, p.SeqLen, p.FLOPsPerToken, want)
			}
		}
	}
	want := map[string]int{
		"rnn/train/": 3, "rnn/score/": 1, "rnn/generate/cached": 4, "rnn/translate/greedy": 2,
		"transformer/train/": 3, "transformer/score/": 1, "transformer/generate/cached": 4, "transformer/generate/refeed": 1,
		"transformer/translate/greedy": 2,
	}
	for k, n := range want {
		if count[k] != n {
			t.Errorf("%s: %d points, want %d (all: %v)", k, count[k], n, count)
		}
	}

	dir := t.TempDir()
	files, err := Write(dir, rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if st, err := os.Stat(f); err != nil || st.Size() == 0 {
			t.Errorf("%s: empty or missing (%v)", f, err)
		}
	}
	for _, name := range []string{"throughput_vs_seq_len", "latency_vs_length_b1", "latency_vs_length_b2", "memory_vs_length"} {
		for _, ext := range []string{".png", ".svg"} {
			if _, err := os.Stat(filepath.Join(dir, ChartsDir, name+ext)); err != nil {
				t.Errorf("chart %s%s: %v", name, ext, err)
			}
		}
	}
	var back struct {
		Points []Point                `json:"points"`
		Series []harness.SeriesRecord `json:"series"`
	}
	b, err := os.ReadFile(filepath.Join(dir, JSONFileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &back); err != nil || len(back.Points) != len(rep.Points) || len(back.Series) == 0 {
		t.Fatalf("bench.json: %v, %d points, %d series", err, len(back.Points), len(back.Series))
	}
	checkBenchstat(t, filepath.Join(dir, BenchstatFileName), rep)
	md, _ := os.ReadFile(filepath.Join(dir, MarkdownFileName))
	for _, s := range []string{"## Training and scoring", "## Generation", "Cached vs re-feeding", "## Translation", "**rnn greedy** (rnn)", "## Not measured", "Backend gorgonia (arbench's GEMM with "} {
		if !bytes.Contains(md, []byte(s)) {
			t.Errorf("bench.md lacks %q", s)
		}
	}
}

// checkBenchstat parses the Go benchmark format: one line per repeat of
// every measured point, each "Name-P 1 v unit v unit ...".
func checkBenchstat(t *testing.T, path string, rep *Report) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		lines++
		if fields[1] != "1" || len(fields)%2 != 0 {
			t.Fatalf("malformed benchmark line %q", sc.Text())
		}
		for i := 2; i < len(fields); i += 2 {
			if _, err := strconv.ParseFloat(fields[i], 64); err != nil {
				t.Fatalf("line %q: value %q: %v", sc.Text(), fields[i], err)
			}
		}
		if !strings.Contains(sc.Text(), "ns/op") {
			t.Fatalf("line %q lacks ns/op", sc.Text())
		}
	}
	want := rep.Ceiling.GFLOPS.N
	for _, p := range rep.Points {
		want += p.TokensPerSec.N
	}
	if lines != want {
		t.Errorf("%d benchmark lines, want %d", lines, want)
	}
}

// TestRunNoCache: with NoCache every generation point re-feeds, also for
// models without a cache switch (through NextLogProbs); the translate
// points are unchanged.
func TestRunNoCache(t *testing.T) {
	cfg := tinyConfig()
	cfg.Train.SeqLens, cfg.Train.Batches, cfg.Score.SeqLens = nil, nil, nil
	cfg.Generate.Lengths = []int{5}
	rep, err := Run(context.Background(), Options{
		Name: "nc", Backend: nngorgonia.New(), Config: cfg, Seed: 2, NoCache: true,
		Models: []harness.ModelSpec{spec(t, "lstm", "{embed: 4, hidden: 5}"), spec(t, "transformer", "{dim: 8, heads: 2, layers: 1, context: 12}")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Points) != 8 {
		t.Fatalf("%d points, want 8 (2 models × 2 batches, generating and translating)", len(rep.Points))
	}
	for _, p := range rep.Points {
		if p.Kind == KindTranslate {
			if p.Mode != ModeGreedy || p.Skipped != "" || p.TokensPerSec.N != 3 {
				t.Errorf("translate point %+v", p)
			}
			continue
		}
		if p.Mode != ModeRefeed || p.Skipped != "" || p.TokensPerSec.N != 2 {
			t.Errorf("point %+v", p)
		}
	}
}

// TestGenerateModesAgree: the bench's greedy loop picks the tokens
// harness.Generate picks in both modes, each mode through its own path,
// and a model lacking a mode's capability is skipped with the reason.
func TestGenerateModesAgree(t *testing.T) {
	ctx := context.Background()
	r := &runner{opt: Options{Config: tinyConfig(), Seed: 1}}
	s := spec(t, "transformer", "{dim: 8, heads: 2, layers: 1, context: 24}")
	m, err := r.newModel(ctx, &s, r.pointEnv(Point{Kind: KindGenerate, Batch: 2}, nngorgonia.New(), 3))
	if err != nil {
		t.Fatal(err)
	}
	prompts := [][]int{{1, 2, 3}, {4, 5, 6}}
	want, err := harness.Generate(ctx, m, prompts, harness.GenOptions{MaxNew: 15, StopToken: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{ModeCached, ModeRefeed} {
		dec, why, err := decoder(m, Point{Mode: mode, Prompt: 3, Length: 15})
		if err != nil || why != "" {
			t.Fatal(mode, err, why)
		}
		if dec.Mode().String() != mode {
			t.Errorf("%s point decodes by %v", mode, dec.Mode())
		}
		got, err := generate(ctx, dec, prompts, 15, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %v, harness.Generate %v", mode, got, want)
		}
	}
	noStepper := struct {
		harness.Model
		harness.Distributioner
	}{m, m.(harness.Distributioner)}
	if dec, why, err := decoder(noStepper, Point{Mode: ModeCached, Prompt: 3, Length: 4}); dec != nil || err != nil || !strings.Contains(why, "no Stepper") {
		t.Errorf("cached point of a model without Stepper: %v, %q, %v", dec, why, err)
	}
	if _, _, err := decoder(m, Point{Mode: "fast", Prompt: 3, Length: 4}); err == nil {
		t.Error("unknown mode accepted")
	}
}

// TestBenchChecksModels is issue 9's review finding 2: bench set models up
// without the experiment check, so rnn {hidden: 100000000} allocated until
// the process died. Every point's model must be refused before Setup, with
// its memory estimate, allocating nothing of its size.
func TestBenchChecksModels(t *testing.T) {
	if machine, _ := harness.MachineMemory(); machine <= 0 {
		t.Skip("the machine's memory is unknown, so nothing is refused for its size")
	}
	ctx := context.Background()
	for _, name := range []string{"rnn", "lstm"} {
		s := spec(t, name, "{hidden: 100000000}")
		opt := Options{Name: "huge", Backend: nngorgonia.New(), Config: tinyConfig(), Seed: 1, Models: []harness.ModelSpec{s}}
		rep, err := Run(ctx, opt)
		for _, w := range []string{name + " train b=2 T=4", name + ": estimated memory", "exceeds 90% of this machine's"} {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: err = %v, want it to contain %q", name, err, w)
			}
		}
		if rep == nil || len(rep.Points) != 0 {
			t.Errorf("%s: report %+v, want no points", name, rep)
		}
		// Every kind of point is refused, without allocating the model.
		r := &runner{opt: opt}
		for _, p := range []Point{
			{Kind: KindTrain, Batch: 2, SeqLen: 4},
			{Kind: KindScore, Batch: 2, SeqLen: 4},
			{Kind: KindGenerate, Mode: ModeCached, Batch: 1, Prompt: 3, Length: 4},
		} {
			var start, end runtime.MemStats
			runtime.ReadMemStats(&start)
			_, err := r.measure(ctx, &s, p)
			runtime.ReadMemStats(&end)
			if err == nil || !strings.Contains(err.Error(), "estimated memory") {
				t.Errorf("%s %s: err = %v, want the estimated memory refused", name, describe(p), err)
			}
			if alloc := end.TotalAlloc - start.TotalAlloc; alloc > 10<<20 {
				t.Errorf("%s %s: allocated %d bytes before refusing the model", name, describe(p), alloc)
			}
		}
	}
}

// TestBenchPointEnv: a point's model is checked for the rows it is given at
// once, the training batch or the evaluation batch, so the memory estimate
// grows with them.
func TestBenchPointEnv(t *testing.T) {
	r := &runner{opt: Options{Config: tinyConfig(), Seed: 5}}
	b := nngorgonia.New()
	train := r.pointEnv(Point{Kind: KindTrain, Batch: 7, SeqLen: 9}, b, 9)
	score := r.pointEnv(Point{Kind: KindScore, Batch: 300, SeqLen: 9}, b, 9)
	gen := r.pointEnv(Point{Kind: KindGenerate, Batch: 32, Prompt: 4, Length: 64}, b, 4)
	want := harness.Env{Backend: b, Vocab: 13, SeqLen: 9, Seed: 5, Batch: 7}
	if train != want {
		t.Errorf("train env %+v, want %+v", train, want)
	}
	want.Batch, want.EvalBatch = 0, 300
	if score != want {
		t.Errorf("score env %+v, want %+v", score, want)
	}
	want.SeqLen, want.EvalBatch = 4, 32
	if gen != want {
		t.Errorf("generate env %+v, want %+v", gen, want)
	}
	// Points with a source give its length and the decoder rows'.
	trans := r.pointEnv(Point{Kind: KindTranslate, Batch: 4, Source: 5, Length: 7}, b, 7)
	cond := r.pointEnv(Point{Kind: KindTrain, Batch: 7, SeqLen: 9, Source: 9}, b, 9)
	if w := (harness.Env{Backend: b, Vocab: 13, SeqLen: 7, Seed: 5, EvalBatch: 4, SourceLen: 5, TargetLen: 7}); trans != w {
		t.Errorf("translate env %+v, want %+v", trans, w)
	}
	if w := (harness.Env{Backend: b, Vocab: 13, SeqLen: 9, Seed: 5, Batch: 7, SourceLen: 9, TargetLen: 9}); cond != w {
		t.Errorf("conditional training env %+v, want %+v", cond, w)
	}
	m, err := harness.NewModel("rnn")
	if err != nil {
		t.Fatal(err)
	}
	est := m.(harness.MemoryEstimator)
	if small, large := est.EstimateMemory(r.pointEnv(Point{Kind: KindScore, Batch: 1}, b, 64)),
		est.EstimateMemory(r.pointEnv(Point{Kind: KindScore, Batch: 4096}, b, 64)); !(large.Total() > small.Total()) {
		t.Errorf("scoring 4096 rows is estimated at %d bytes, 1 row at %d", large.Total(), small.Total())
	}
}
