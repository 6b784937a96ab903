package synthetic

import (
	"context"
	"math"
	"testing"

	"arbench/harness"
	"arbench/internal/stats"
)

// mixedOracleRule is the oracle's distribution mixed with the uniform one
// over the symbols: (1−eps)·oracle + eps/K.
func mixedOracleRule(h *HMM, vocab int, eps float64) func(row []int, t int) []float32 {
	K := h.Symbols()
	return func(row []int, t int) []float32 {
		b := h.Start()
		for _, tok := range row[1 : t+1] {
			if tok < FirstSymbol { // padding of a re-fed row
				return uniformLogp(vocab)
			}
			b = h.Observe(b, tok-FirstSymbol)
		}
		p := h.Next(b, make([]float64, K))
		out := make([]float32, vocab)
		for v := range out {
			out[v] = float32(math.Inf(-1))
		}
		for v, pv := range p {
			out[FirstSymbol+v] = float32(math.Log((1-eps)*pv + eps/float64(K)))
		}
		return out
	}
}

// TestExposureExcessIsPairedByRow recomputes the uniform model's per-row
// accumulated KL along the test rows and along its own samples (driven by
// the same row's uniforms) independently of the task's code, and checks
// that the excess interval is the paired bootstrap of exactly those pairs.
func TestExposureExcessIsPairedByRow(t *testing.T) {
	tk := oracleTask(t)
	K, T := tk.hmm.Symbols(), tk.sweep[0]
	ev, err := tk.Evaluate(context.Background(), &rowModel{baseModel: baseModel{"uniform", tk.vocab}, next: uniformSymbols(tk.vocab, K)})
	if err != nil {
		t.Fatal(err)
	}
	klUniform := func(b Belief) float64 {
		return math.Log(float64(K)) - entropy(tk.hmm.Next(b, make([]float64, K)))
	}
	uniform := make([]float64, K)
	for v := range uniform {
		uniform[v] = 1 / float64(K)
	}
	var a, b []float64
	for i, e := range tk.test[0].exs {
		var tf, fr float64
		bt, bf := tk.hmm.Start(), tk.hmm.Start()
		for s, u := range tk.oracleUniforms(i, T) {
			tf += klUniform(bt)
			bt = tk.hmm.Observe(bt, e.seq[s+1]-FirstSymbol)
			fr += klUniform(bf)
			bf = tk.hmm.Observe(bf, draw(uniform, u))
		}
		a, b = append(a, tf), append(b, fr)
	}
	want := stats.PairedBootstrap(a, b, 0.95, stats.Resamples, tk.bootSeed("exposure_excess_kl"))
	m := metricOf(t, ev, "exposure_excess_kl")
	if m.CI == nil || m.CI.Method != harness.CIPairedBootstrap || m.CI.N != len(a) || m.CI.Of != "rows" {
		t.Fatalf("exposure_excess_kl interval %+v, want a paired bootstrap over %d rows", m.CI, len(a))
	}
	if math.Abs(m.Value-want.Estimate) > 1e-5 || math.Abs(float64(m.CI.Lo)-want.Lo) > 1e-5 || math.Abs(float64(m.CI.Hi)-want.Hi) > 1e-5 {
		t.Errorf("excess %v [%v, %v], recomputed %v [%v, %v]", m.Value, m.CI.Lo, m.CI.Hi, want.Estimate, want.Lo, want.Hi)
	}
	s := series(t, ev, "exposure_excess_kl_vs_length", "")
	if len(s.X) != T || s.CIMethod != harness.CIPairedBootstrap || len(s.Lo) != T {
		t.Fatalf("excess series: %d points, method %q", len(s.X), s.CIMethod)
	}
	if math.Abs(s.Y[T-1]-m.Value) > 1e-12 {
		t.Errorf("excess at length %d = %v, metric %v", T, s.Y[T-1], m.Value)
	}
	tfAcc, frAcc := series(t, ev, "accumulated_kl_vs_length", "teacher_forced"), series(t, ev, "accumulated_kl_vs_length", "free_running")
	for l := range s.Y {
		if math.Abs(s.Y[l]-(frAcc.Y[l]-tfAcc.Y[l])) > 1e-12 || !(s.Lo[l] <= s.Hi[l]) {
			t.Errorf("excess at length %v = %v [%v, %v], want %v", s.X[l], s.Y[l], s.Lo[l], s.Hi[l], frAcc.Y[l]-tfAcc.Y[l])
		}
	}
	frac := metricOf(t, ev, "exposure_excess_fraction")
	if frac.CI == nil || frac.CI.Method != harness.CIPairedBootstrap || !(float64(frac.CI.Lo) <= frac.Value && frac.Value <= float64(frac.CI.Hi)) {
		t.Errorf("exposure_excess_fraction %v with interval %+v", frac.Value, frac.CI)
	}
}

// TestPairingNarrowsTheExcessInterval: for a model close to the oracle the
// free-running samples follow the test rows (common random numbers), so
// the paired interval of the excess is much narrower than an unpaired one
// (whose width follows from the two accumulated KLs' own intervals); for
// the oracle itself it is exactly 0.
func TestPairingNarrowsTheExcessInterval(t *testing.T) {
	tk := oracleTask(t)
	ev, err := tk.Evaluate(context.Background(), &rowModel{baseModel: baseModel{"near", tk.vocab}, next: mixedOracleRule(tk.hmm, tk.vocab, 0.05)})
	if err != nil {
		t.Fatal(err)
	}
	width := func(name string) float64 {
		ci := metricOf(t, ev, name).CI
		return float64(ci.Hi - ci.Lo)
	}
	paired := width("exposure_excess_kl")
	unpaired := math.Hypot(width("accumulated_kl_teacher_forced"), width("accumulated_kl_free_running"))
	if !(paired < 0.3*unpaired) {
		t.Errorf("paired width %v, unpaired about %v: pairing should remove the rows' shared variation", paired, unpaired)
	}
	ev, err = tk.Evaluate(context.Background(), &rowModel{baseModel: baseModel{"oracle", tk.vocab}, next: oracleRule(tk.hmm, tk.vocab)})
	if err != nil {
		t.Fatal(err)
	}
	if ci := metricOf(t, ev, "exposure_excess_kl").CI; math.Abs(float64(ci.Lo)) > 1e-5 || math.Abs(float64(ci.Hi)) > 1e-5 {
		t.Errorf("oracle model: excess interval [%v, %v], want [0, 0]", ci.Lo, ci.Hi)
	}
}

// TestOracleReferences: the reference values are what the models they
// describe score: a uniform model over the symbols scores
// nats_per_token~chance and kl_per_token~chance, the context-free ū model
// kl_per_token~unigram, the oracle nats_per_token~oracle; the properties
// are the HMM's.
func TestOracleReferences(t *testing.T) {
	tk := oracleTask(t)
	K, T := tk.hmm.Symbols(), tk.sweep[0]
	ref := func(ev *harness.Evaluation, metric, reference string) harness.Metric {
		return metricOf(t, ev, harness.ReferenceName(metric, reference))
	}
	eval := func(rule func([]int, int) []float32) *harness.Evaluation {
		ev, err := tk.Evaluate(context.Background(), &rowModel{baseModel: baseModel{"m", tk.vocab}, next: rule})
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	ev := eval(uniformSymbols(tk.vocab, K))
	if got, want := ref(ev, "nats_per_token", "chance").Value, math.Log(float64(K)); got != want {
		t.Errorf("nats_per_token~chance = %v, want log K = %v", got, want)
	}
	if a, b := metric(t, ev, "nats_per_token"), ref(ev, "nats_per_token", "chance").Value; math.Abs(a-b) > 1e-6 {
		t.Errorf("uniform model: nats_per_token %v, chance %v", a, b)
	}
	if a, b := metric(t, ev, "kl_per_token"), ref(ev, "kl_per_token", "chance").Value; math.Abs(a-b) > 1e-6 {
		t.Errorf("uniform model: kl_per_token %v, kl_per_token~chance %v", a, b)
	}
	u := tk.hmm.Unigram(T)
	unigramRule := func([]int, int) []float32 {
		out := make([]float32, tk.vocab)
		for v := range out {
			out[v] = float32(math.Inf(-1))
		}
		for v, p := range u {
			out[FirstSymbol+v] = float32(math.Log(p))
		}
		return out
	}
	ev = eval(unigramRule)
	if a, b := metric(t, ev, "kl_per_token"), ref(ev, "kl_per_token", "unigram").Value; math.Abs(a-b) > 1e-6 {
		t.Errorf("unigram model: kl_per_token %v, kl_per_token~unigram %v", a, b)
	}
	if got, want := ref(ev, "nats_per_token", "unigram").Value, entropy(u); got != want {
		t.Errorf("nats_per_token~unigram = %v, want H(ū) = %v", got, want)
	}
	nats := metricOf(t, ev, "nats_per_token")
	if h := entropy(u); math.Abs(nats.Value-h) > float64(nats.CI.Hi-nats.CI.Lo) {
		t.Errorf("unigram model: nats_per_token %v [%v, %v] far from its expectation H(ū) = %v", nats.Value, nats.CI.Lo, nats.CI.Hi, h)
	}
	ev = eval(oracleRule(tk.hmm, tk.vocab))
	if a, b := metric(t, ev, "nats_per_token"), ref(ev, "nats_per_token", "oracle").Value; math.Abs(a-b) > 1e-5 {
		t.Errorf("oracle model: nats_per_token %v, nats_per_token~oracle %v", a, b)
	}
	rate := metricOf(t, ev, "oracle_entropy_rate")
	if o := ref(ev, "nats_per_token", "oracle"); math.Abs(rate.Value-o.Value) > float64(o.CI.Hi-o.CI.Lo) {
		t.Errorf("entropy rate %v and the oracle's loss %v [%v, %v] estimate the same quantity", rate.Value, o.Value, o.CI.Lo, o.CI.Hi)
	}
	l2, relax, _ := tk.hmm.Mixing()
	if metric(t, ev, "oracle_mixing_time") != relax || metric(t, ev, "oracle_second_eigenvalue") != l2 {
		t.Errorf("mixing time %v, |λ₂| %v; the HMM's are %v, %v",
			metric(t, ev, "oracle_mixing_time"), metric(t, ev, "oracle_second_eigenvalue"), relax, l2)
	}
	if got := metric(t, ev, "oracle_unigram_entropy"); got != entropy(u) {
		t.Errorf("oracle_unigram_entropy %v, want %v", got, entropy(u))
	}
}

// TestOracleIntervalsAndStickiness: every oracle metric measured over rows
// has a bootstrap interval and every per-position series its bands; a
// sticky oracle reports a longer mixing time and records its stickiness in
// the params, which a plain one leaves as they were.
func TestOracleIntervalsAndStickiness(t *testing.T) {
	tk := oracleTask(t)
	ev, err := tk.Evaluate(context.Background(), &rowModel{baseModel: baseModel{"u", tk.vocab}, next: uniformSymbols(tk.vocab, tk.hmm.Symbols())})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"nats_per_token", "oracle_nats_per_token", "kl_per_token", "kl_per_token_free_running",
		"oracle_nll_teacher_forced", "oracle_nll_free_running", "special_token_mass_free_running",
		"accumulated_kl_teacher_forced", "accumulated_kl_free_running", "oracle_entropy_rate"} {
		m := metricOf(t, ev, name)
		if m.CI == nil || m.CI.Method != harness.CIBootstrap || m.CI.N != 50 || !(float64(m.CI.Lo) <= m.Value+1e-12 && m.Value <= float64(m.CI.Hi)+1e-12) {
			t.Errorf("%s = %v with interval %+v", name, m.Value, m.CI)
		}
		if _, ok := m.Params["stickiness"]; ok && name != "oracle_entropy_rate" {
			t.Errorf("%s: a plain oracle records stickiness in its params", name)
		}
	}
	for _, s := range ev.Series {
		if s.Lo == nil || len(s.Lo) != len(s.Y) || s.CIMethod == "" {
			t.Errorf("series %s/%s has no bands", s.Name, s.Label)
		}
	}
	sticky := prepared(t, "oracle", func(c *Config) {
		c.Lengths = []int{20}
		c.States, c.Symbols, c.Concentration = 4, 5, 0.3
		c.EvalRows, c.EvalBatch = 50, 16
		c.Stickiness = 0.9
	})
	ev2, err := sticky.Evaluate(context.Background(), &rowModel{baseModel: baseModel{"u", sticky.vocab}, next: uniformSymbols(sticky.vocab, 5)})
	if err != nil {
		t.Fatal(err)
	}
	plain, slow := metric(t, ev, "oracle_mixing_time"), metric(t, ev2, "oracle_mixing_time")
	if !(slow > 3*plain) {
		t.Errorf("stickiness 0.9: mixing time %v, plain %v", slow, plain)
	}
	if p := metricOf(t, ev2, "kl_per_token").Params; p["stickiness"] != 0.9 {
		t.Errorf("sticky oracle params %v", p)
	}
}
