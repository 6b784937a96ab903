package synthetic

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"arbench/harness"
	"arbench/internal/fsum"
)

// oracleUniforms returns the T uniforms that drive the sampling of test row
// i of oracle, both from the oracle (the test sequences) and from the model
// (free-running): common random numbers, so that a model equal to the
// oracle generates exactly the test sequences, and the two measurements
// differ only through the model.
func (t *Task) oracleUniforms(i, T int) []float64 {
	rng := rand.New(rand.NewPCG(t.seed^testStream, uint64(i)))
	u := make([]float64, T)
	for s := range u {
		u[s] = rng.Float64()
	}
	return u
}

// oracleTest generates oracle's test rows by inverse-CDF sampling from the
// forward algorithm's next-symbol distributions (equivalent in law to
// HMM.Sample).
func (t *Task) oracleTest(T, n int) group {
	g := group{sweep: T, width: T}
	K := t.hmm.Symbols()
	p := make([]float64, K)
	for i := range n {
		e := newExample(T + 1)
		e.seq = append(e.seq, BOS)
		b := t.hmm.Start()
		for _, u := range t.oracleUniforms(i, T) {
			x := draw(t.hmm.Next(b, p), u)
			e.seq = append(e.seq, FirstSymbol+x)
			b = t.hmm.Observe(b, x)
		}
		for k := range e.loss {
			e.loss[k], e.answer[k] = true, true
		}
		g.exs = append(g.exs, e)
	}
	return g
}

// oracleStep holds per-position sums over rows.
type oracleStep struct {
	kl, xent, entropy, special []float64
}

func newOracleStep(T int) oracleStep {
	return oracleStep{kl: make([]float64, T), xent: make([]float64, T), entropy: make([]float64, T), special: make([]float64, T)}
}

// compare compares the oracle's next-symbol distribution po (over the K
// symbols) with the model's log-probabilities logp (over the vocabulary)
// at position s, adding to the sums: KL(po ‖ pm) = Σ_v po(v)·log(po(v)/pm(v)),
// the oracle NLL of the model's next token Σ_v p̃m(v)·(−log po(v)) with p̃m
// the model's distribution restricted to the symbols and renormalised, the
// oracle's entropy and the model's mass on non-symbol tokens. It returns
// p̃m in q.
func (o *oracleStep) compare(s int, po []float64, logp []float32, q []float64) {
	var kl, h, z float64
	for v, p := range po {
		lm := float64(logp[FirstSymbol+v])
		q[v] = math.Exp(lm)
		z += q[v]
		if p > 0 {
			kl += p * (math.Log(p) - lm)
			h -= p * math.Log(p)
		}
	}
	special := 1 - z
	if !(z > 0) { // no mass on the symbols at all: sample uniformly
		for v := range q {
			q[v] = 1
		}
		z = float64(len(q))
	}
	var xent float64
	for v := range q {
		q[v] /= z
		if q[v] > 0 {
			xent -= q[v] * math.Log(po[v])
		}
	}
	o.kl[s] += kl
	o.xent[s] += xent
	o.entropy[s] += h
	o.special[s] += special
}

// evaluateOracle measures the model against the oracle HMM, after Arora et
// al. 2022 ("Why exposure bias matters: an imitation learning perspective
// of error accumulation in language generation").
//
// Teacher-forced, along the oracle's test sequences, and free-running,
// along sequences the model samples itself (temperature 1, restricted to
// the oracle's symbols, driven by the same uniforms as the test sequences),
// it computes at every position t exactly: the per-step error
// KL(oracle(·|x<t) ‖ model(·|x<t)), the oracle NLL of the model's next token
// E_{v~model}[−log oracle(v|x<t)], and the oracle's entropy. The series
// kl_vs_position and oracle_nll_vs_position (labels teacher_forced and
// free_running; oracle_nll also "oracle_entropy", its floor) and
// accumulated_kl_vs_length (Σ_{t≤l} of the per-position mean KL) show
// them. The accumulated KL along teacher-forced prefixes is Arora et al.'s
// l·ε_{≤l}, along free-running ones their regret R_{≤l}; the excess
// attributable to exposure bias is exposure_excess_kl = R_{≤T} − T·ε_{≤T}
// and exposure_excess_fraction = that / (T·ε_{≤T}) (their %ExAccErr / 100).
// Also: nats_per_token (the model's NLL of the test sequences),
// oracle_nats_per_token (the oracle's, an estimate of its entropy rate) and
// kl_per_token (the mean teacher-forced KL).
func (t *Task) evaluateOracle(ctx context.Context, m harness.Model, d harness.Distributioner) (*harness.Evaluation, error) {
	g := t.test[0]
	T := g.sweep
	K := t.hmm.Symbols()
	po := make([]float64, K)
	q := make([]float64, K)
	tf := newOracleStep(T)
	var nllModel, nllOracle float64
	err := t.forEachBatch(ctx, d, g, func(e *example, logp [][]float32) {
		b := t.hmm.Start()
		for s := range T {
			x := e.seq[s+1] - FirstSymbol
			t.hmm.Next(b, po)
			tf.compare(s, po, logp[s], q)
			nllModel -= float64(logp[s][e.seq[s+1]])
			nllOracle -= math.Log(po[x])
			b = t.hmm.Observe(b, x)
		}
	})
	if err != nil {
		return nil, err
	}
	n := float64(len(g.exs))
	tokens := n * float64(T)
	params := map[string]any{"length": T, "rows": len(g.exs), "states": t.cfg.States, "symbols": K}
	ev := &harness.Evaluation{}
	ev.Metrics = append(ev.Metrics,
		harness.Metric{Name: "nats_per_token", Value: nllModel / tokens, Unit: "nats/token", Split: "test", Params: params},
		harness.Metric{Name: "oracle_nats_per_token", Value: nllOracle / tokens, Unit: "nats/token", Split: "test", Params: params},
		harness.Metric{Name: "kl_per_token", Value: fsum.Sum(tf.kl) / tokens, Unit: "nats/token", Split: "test", Params: params},
	)
	series := func(name, label, unit string, ys []float64, cumulative bool) harness.Series {
		s := harness.Series{Name: name, Label: label, XName: "position", Unit: unit, Split: "test", Params: params}
		if cumulative {
			s.XName = "length"
		}
		s.XUnit = "tokens"
		var acc float64
		for k, y := range ys {
			v := y / n
			if cumulative {
				acc += v
				v = acc
			}
			s.X = append(s.X, float64(k+1))
			s.Y = append(s.Y, v)
			s.N = append(s.N, len(g.exs))
		}
		return s
	}
	ev.Series = append(ev.Series,
		series("kl_vs_position", "teacher_forced", "nats", tf.kl, false),
		series("accumulated_kl_vs_length", "teacher_forced", "nats", tf.kl, true),
		series("oracle_nll_vs_position", "teacher_forced", "nats", tf.xent, false),
		series("oracle_nll_vs_position", "oracle_entropy", "nats", tf.entropy, false),
	)
	if !t.runsFreeRunning() {
		return ev, nil
	}

	fr := newOracleStep(T)
	for lo := 0; lo < len(g.exs); lo += t.cfg.EvalBatch {
		rows := min(t.cfg.EvalBatch, len(g.exs)-lo)
		prompts := make([][]int, rows)
		beliefs := make([]Belief, rows)
		us := make([][]float64, rows)
		for r := range rows {
			prompts[r] = []int{BOS}
			beliefs[r] = t.hmm.Start()
			us[r] = t.oracleUniforms(lo+r, T)
		}
		seqs, err := rollout(ctx, m, prompts, T, func(i, s int, logp []float32) int {
			t.hmm.Next(beliefs[i], po)
			fr.compare(s, po, logp, q)
			x := draw(q, us[i][s])
			beliefs[i] = t.hmm.Observe(beliefs[i], x)
			return FirstSymbol + x
		})
		if err != nil {
			return nil, fmt.Errorf("synthetic: free-running: %w", err)
		}
		if lo == 0 {
			for r := range min(3, rows) {
				ev.Samples = append(ev.Samples, harness.Sample{"mode": "free_running", "row": r,
					"oracle": g.exs[r].seq[1:], "model": seqs[r][1:]})
			}
		}
	}
	accTF, accFR := fsum.Sum(tf.kl)/n, fsum.Sum(fr.kl)/n
	ev.Series = append(ev.Series,
		series("kl_vs_position", "free_running", "nats", fr.kl, false),
		series("accumulated_kl_vs_length", "free_running", "nats", fr.kl, true),
		series("oracle_nll_vs_position", "free_running", "nats", fr.xent, false),
	)
	ev.Metrics = append(ev.Metrics,
		harness.Metric{Name: "kl_per_token_free_running", Value: accFR / float64(T), Unit: "nats/token", Split: "test", Params: params},
		harness.Metric{Name: "oracle_nll_teacher_forced", Value: fsum.Sum(tf.xent) / tokens, Unit: "nats/token", Split: "test", Params: params},
		harness.Metric{Name: "oracle_nll_free_running", Value: fsum.Sum(fr.xent) / tokens, Unit: "nats/token", Split: "test", Params: params},
		harness.Metric{Name: "special_token_mass_free_running", Value: fsum.Sum(fr.special) / tokens, Unit: "probability", Split: "test", Params: params},
		harness.Metric{Name: "accumulated_kl_teacher_forced", Value: accTF, Unit: "nats", Split: "test", Params: params},
		harness.Metric{Name: "accumulated_kl_free_running", Value: accFR, Unit: "nats", Split: "test", Params: params},
		harness.Metric{Name: "exposure_excess_kl", Value: accFR - accTF, Unit: "nats", Split: "test", Params: params},
	)
	if accTF > 0 {
		ev.Metrics = append(ev.Metrics, harness.Metric{Name: "exposure_excess_fraction", Value: (accFR - accTF) / accTF,
			Unit: "fraction", Split: "test", Params: params})
	}
	return ev, nil
}
