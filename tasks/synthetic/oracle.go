package synthetic

import (
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"

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

// oracleProps are the oracle's properties that no model changes, computed
// once by Prepare from the HMM and the test rows: what a reader needs to
// judge whether exposure bias can show (a chain that forgets its state in
// about one step leaves little to get wrong), and the references a model's
// loss and KL are drawn against.
type oracleProps struct {
	// lambda2 is |λ₂| of the transition matrix and mixing the relaxation
	// time 1/(1−|λ₂|) in steps (HMM.Mixing).
	lambda2, mixing float64
	// unigram is ū over the rows' length (HMM.Unigram), unigramH = H(ū).
	unigram  []float64
	unigramH float64
	// Per test row, means over its positions of: the oracle's conditional
	// entropy H(X_t | x_<t) (their mean estimates the entropy rate),
	// KL(oracle ‖ uniform over the symbols) and KL(oracle ‖ ū).
	rowEntropy, rowKLUniform, rowKLUnigram []float64
}

// oracleProperties computes oracleProps for the test rows g.
func (t *Task) oracleProperties(g group) (oracleProps, error) {
	var p oracleProps
	var err error
	if p.lambda2, p.mixing, err = t.hmm.Mixing(); err != nil {
		return p, err
	}
	T, K := g.sweep, t.hmm.Symbols()
	p.unigram = t.hmm.Unigram(T)
	p.unigramH = entropy(p.unigram)
	po := make([]float64, K)
	for _, e := range g.exs {
		var h, klu, klg float64
		b := t.hmm.Start()
		for s := range T {
			x := e.seq[s+1] - FirstSymbol
			t.hmm.Next(b, po)
			hs := entropy(po)
			h += hs
			klu += math.Log(float64(K)) - hs
			for v, pv := range po {
				klg += pv * (math.Log(pv) - math.Log(p.unigram[v]))
			}
			b = t.hmm.Observe(b, x)
		}
		p.rowEntropy = append(p.rowEntropy, h/float64(T))
		p.rowKLUniform = append(p.rowKLUniform, klu/float64(T))
		p.rowKLUnigram = append(p.rowKLUnigram, klg/float64(T))
	}
	return p, nil
}

// oracleStep holds per-position sums over rows (in row order, as the
// metrics have always been computed) and the per-row values behind them.
type oracleStep struct {
	kl, xent, entropy, special []float64
	// rowKL, rowXent and rowSpecial hold [row][position].
	rowKL, rowXent, rowSpecial [][]float64
}

func newOracleStep(rows, T int) oracleStep {
	o := oracleStep{kl: make([]float64, T), xent: make([]float64, T), entropy: make([]float64, T), special: make([]float64, T)}
	for range rows {
		o.rowKL = append(o.rowKL, make([]float64, T))
		o.rowXent = append(o.rowXent, make([]float64, T))
		o.rowSpecial = append(o.rowSpecial, make([]float64, T))
	}
	return o
}

// compare compares the oracle's next-symbol distribution po (over the K
// symbols) with the model's log-probabilities logp (over the vocabulary)
// at position s of row r, adding to the sums: KL(po ‖ pm) = Σ_v
// po(v)·log(po(v)/pm(v)), the oracle NLL of the model's next token
// Σ_v p̃m(v)·(−log po(v)) with p̃m the model's distribution restricted to
// the symbols and renormalised, the oracle's entropy and the model's mass
// on non-symbol tokens. It returns p̃m in q.
func (o *oracleStep) compare(r, s int, po []float64, logp []float32, q []float64) {
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
	o.rowKL[r][s], o.rowXent[r][s], o.rowSpecial[r][s] = kl, xent, special
}

// rowMeans returns each row's mean over positions; rowSums its sum.
func rowMeans(m [][]float64) []float64 {
	out := rowSums(m)
	for i := range out {
		out[i] /= float64(len(m[i]))
	}
	return out
}

// mean is the mean of xs.
func mean(xs []float64) float64 { return fsum.Sum(xs) / float64(len(xs)) }

func rowSums(m [][]float64) []float64 {
	out := make([]float64, len(m))
	for i, row := range m {
		for _, x := range row {
			out[i] += x
		}
	}
	return out
}

// column returns m[·][s]; cumulative the per-row sums of m[·][:l] for
// every l = 1..T, as [l−1][row].
func column(m [][]float64, s int) []float64 {
	out := make([]float64, len(m))
	for i, row := range m {
		out[i] = row[s]
	}
	return out
}

func cumulative(m [][]float64) [][]float64 {
	T := len(m[0])
	out := make([][]float64, T)
	acc := make([]float64, len(m))
	for l := range T {
		for i, row := range m {
			acc[i] += row[l]
		}
		out[l] = slices.Clone(acc)
	}
	return out
}

func columns(m [][]float64) [][]float64 {
	out := make([][]float64, len(m[0]))
	for s := range out {
		out[s] = column(m, s)
	}
	return out
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
// and exposure_excess_fraction = that / (T·ε_{≤T}) (their %ExAccErr / 100),
// and the series exposure_excess_kl_vs_length is R_{≤l} − l·ε_{≤l} at
// every length l.
// Also: nats_per_token (the model's NLL of the test sequences),
// oracle_nats_per_token (the oracle's, an estimate of its entropy rate) and
// kl_per_token (the mean teacher-forced KL).
//
// Every metric and series point has a 95% bootstrap interval over the test
// rows; the excess, a difference of two measurements of the same rows, a
// paired one (see freeRunningOracle). The oracle's properties
// (oracle_entropy_rate, oracle_unigram_entropy, oracle_mixing_time,
// oracle_second_eigenvalue) and the reference values of nats_per_token
// ("oracle", "unigram", "chance") and of kl_per_token ("unigram",
// "chance"), named by harness.ReferenceName, come with them
// (oracleReferences).
func (t *Task) evaluateOracle(ctx context.Context, m harness.Model, d harness.Distributioner) (*harness.Evaluation, error) {
	g := t.test[0]
	T := g.sweep
	K := t.hmm.Symbols()
	po := make([]float64, K)
	q := make([]float64, K)
	tf := newOracleStep(len(g.exs), T)
	var nllModel, nllOracle float64
	rowModel := make([]float64, len(g.exs))
	rowOracle := make([]float64, len(g.exs))
	r := 0
	err := t.forEachBatch(ctx, d, g, func(e *example, logp [][]float32) {
		b := t.hmm.Start()
		for s := range T {
			x := e.seq[s+1] - FirstSymbol
			t.hmm.Next(b, po)
			tf.compare(r, s, po, logp[s], q)
			nllModel -= float64(logp[s][e.seq[s+1]])
			nllOracle -= math.Log(po[x])
			rowModel[r] -= float64(logp[s][e.seq[s+1]]) / float64(T)
			rowOracle[r] -= math.Log(po[x]) / float64(T)
			b = t.hmm.Observe(b, x)
		}
		r++
	})
	if err != nil {
		return nil, err
	}
	n := float64(len(g.exs))
	tokens := n * float64(T)
	params := map[string]any{"length": T, "rows": len(g.exs), "states": t.cfg.States, "symbols": K}
	if t.cfg.Stickiness > 0 {
		// Only then, so that the metrics of a configuration written before
		// stickiness existed keep their identity.
		params["stickiness"], params["blocks"] = t.cfg.Stickiness, t.cfg.Blocks
	}
	ev := &harness.Evaluation{}
	ev.Metrics = append(ev.Metrics,
		harness.Metric{Name: "nats_per_token", Value: nllModel / tokens, Unit: "nats/token", Split: "test", Params: params,
			CI: t.meanCI("nats_per_token", rowModel)},
		harness.Metric{Name: "oracle_nats_per_token", Value: nllOracle / tokens, Unit: "nats/token", Split: "test", Params: params,
			CI: t.meanCI("oracle_nats_per_token", rowOracle)},
		harness.Metric{Name: "kl_per_token", Value: fsum.Sum(tf.kl) / tokens, Unit: "nats/token", Split: "test", Params: params,
			CI: t.meanCI("kl_per_token", rowMeans(tf.rowKL))},
	)
	ev.Metrics = append(ev.Metrics, t.oracleReferences(params, nllOracle/tokens, rowOracle)...)
	tfSeries := t.oracleSeries(g, params, "teacher_forced", &tf)
	ev.Series = append(ev.Series, tfSeries...)
	h := t.positionSeries("oracle_nll_vs_position", "oracle_entropy", params, tf.entropy, n, nil)
	t.setMeanBands(&h, t.rowEntropyAt(g))
	ev.Series = append(ev.Series, h)
	if !t.runsFreeRunning() {
		return ev, nil
	}
	return ev, t.freeRunningOracle(ctx, m, g, params, &tf, ev)
}

// rowEntropyAt returns the oracle's conditional entropy at every position
// of every test row, as [position][row].
func (t *Task) rowEntropyAt(g group) [][]float64 {
	out := make([][]float64, g.sweep)
	for _, e := range g.exs {
		x := make([]int, g.sweep)
		for s := range x {
			x[s] = e.seq[s+1] - FirstSymbol
		}
		for s, h := range t.hmm.ConditionalEntropies(x) {
			out[s] = append(out[s], h)
		}
	}
	return out
}

// positionSeries is a per-position series of sums/n over rows (cumulative:
// their running sum against length), with bootstrap bands over the rows'
// values perRow ([point][row]; nil: no bands).
func (t *Task) positionSeries(name, label string, params map[string]any, sums []float64, n float64, perRow [][]float64) harness.Series {
	s := harness.Series{Name: name, Label: label, XName: "position", XUnit: "tokens", Unit: "nats", Split: "test", Params: params}
	cumulative := name == "accumulated_kl_vs_length"
	if cumulative {
		s.XName = "length"
	}
	var acc float64
	for k, y := range sums {
		v := y / n
		if cumulative {
			acc += v
			v = acc
		}
		s.X = append(s.X, float64(k+1))
		s.Y = append(s.Y, v)
		s.N = append(s.N, int(n))
	}
	if perRow != nil {
		t.setMeanBands(&s, perRow)
	}
	return s
}

// oracleSeries returns the per-position series of one mode.
func (t *Task) oracleSeries(g group, params map[string]any, label string, o *oracleStep) []harness.Series {
	n := float64(len(g.exs))
	return []harness.Series{
		t.positionSeries("kl_vs_position", label, params, o.kl, n, columns(o.rowKL)),
		t.positionSeries("accumulated_kl_vs_length", label, params, o.kl, n, cumulative(o.rowKL)),
		t.positionSeries("oracle_nll_vs_position", label, params, o.xent, n, columns(o.rowXent)),
	}
}

// oracleReferences returns the oracle's properties and the reference
// values of the model's loss and KL (see oracleProps): the oracle's own
// loss on the test rows (reference "oracle" of nats_per_token, which a
// model equal to the oracle scores), the best context-free model's H(ū)
// ("unigram") and a uniform guess among the symbols' log K ("chance");
// KL(oracle ‖ ū) and KL(oracle ‖ uniform) on the test prefixes (references
// "unigram" and "chance" of kl_per_token).
func (t *Task) oracleReferences(params map[string]any, oracleNats float64, rowOracle []float64) []harness.Metric {
	p := &t.props
	K := t.hmm.Symbols()
	props := maps.Clone(params)
	props["stickiness"], props["blocks"], props["concentration"] = t.cfg.Stickiness, t.cfg.Blocks, t.cfg.Concentration
	entropyRate := t.bootstrap("oracle_entropy_rate", p.rowEntropy)
	metric := func(name string, v float64, unit string, ci *harness.Interval) harness.Metric {
		return harness.Metric{Name: name, Value: v, Unit: unit, Split: "test", Params: props, CI: ci}
	}
	return []harness.Metric{
		metric("oracle_entropy_rate", entropyRate.Estimate, "nats/token",
			toInterval(entropyRate, harness.CIBootstrap, len(p.rowEntropy))),
		metric("oracle_unigram_entropy", p.unigramH, "nats/token", nil),
		metric("oracle_mixing_time", p.mixing, "steps", nil),
		metric("oracle_second_eigenvalue", p.lambda2, "", nil),
		metric(harness.ReferenceName("nats_per_token", "oracle"), oracleNats, "nats/token",
			t.meanCI("nats_per_token/oracle", rowOracle)),
		metric(harness.ReferenceName("nats_per_token", "unigram"), p.unigramH, "nats/token", nil),
		metric(harness.ReferenceName("nats_per_token", chanceLabel), math.Log(float64(K)), "nats/token", nil),
		metric(harness.ReferenceName("kl_per_token", "unigram"), mean(p.rowKLUnigram), "nats/token",
			t.meanCI("kl_per_token/unigram", p.rowKLUnigram)),
		metric(harness.ReferenceName("kl_per_token", chanceLabel), mean(p.rowKLUniform), "nats/token",
			t.meanCI("kl_per_token/chance", p.rowKLUniform)),
	}
}

// freeRunningOracle samples the model's own sequences and adds the
// free-running series and metrics, and the exposure excess.
//
// The excess is paired by row: free-running row i is driven by the uniforms
// of test row i (oracleUniforms(i, T)), the very numbers that drew the
// oracle's test sequence i. Rows with different i use independent PCG
// streams, so the pairs (teacher-forced KL of row i, free-running KL of
// row i) are independent and identically distributed across i, and the
// paired bootstrap, which resamples whole pairs, is valid; the common
// random numbers make the two members of a pair positively correlated
// (identical for a model equal to the oracle), so pairing removes the
// between-row variance that an unpaired interval of the difference would
// carry.
func (t *Task) freeRunningOracle(ctx context.Context, m harness.Model, g group, params map[string]any, tf *oracleStep, ev *harness.Evaluation) error {
	T, K := g.sweep, t.hmm.Symbols()
	po, q := make([]float64, K), make([]float64, K)
	fr := newOracleStep(len(g.exs), T)
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
			fr.compare(lo+i, s, po, logp, q)
			x := draw(q, us[i][s])
			beliefs[i] = t.hmm.Observe(beliefs[i], x)
			return FirstSymbol + x
		})
		if err != nil {
			return fmt.Errorf("synthetic: free-running: %w", err)
		}
		if lo == 0 {
			for r := range min(3, rows) {
				ev.Samples = append(ev.Samples, harness.Sample{"mode": "free_running", "row": r,
					"oracle": g.exs[r].seq[1:], "model": seqs[r][1:]})
			}
		}
	}
	ev.Series = append(ev.Series, t.oracleSeries(g, params, "free_running", &fr)...)
	ev.Series = append(ev.Series, t.excessSeries(params, tf, &fr))
	ev.Metrics = append(ev.Metrics, t.freeRunningOracleMetrics(params, tf, &fr)...)
	return nil
}

// excessSeries is exposure_excess_kl_vs_length: R_{≤l} − l·ε_{≤l} at every
// length l, with the paired bootstrap interval over rows of the per-row
// accumulated KL difference at that length.
func (t *Task) excessSeries(params map[string]any, tf, fr *oracleStep) harness.Series {
	n := float64(len(tf.rowKL))
	s := harness.Series{Name: "exposure_excess_kl_vs_length", XName: "length", XUnit: "tokens", Unit: "nats", Split: "test",
		Params: params, CIMethod: harness.CIPairedBootstrap}
	a, b := cumulative(tf.rowKL), cumulative(fr.rowKL)
	var accTF, accFR float64
	for l := range tf.kl {
		accTF += tf.kl[l] / n
		accFR += fr.kl[l] / n
		s.X = append(s.X, float64(l+1))
		s.Y = append(s.Y, accFR-accTF)
		s.N = append(s.N, len(tf.rowKL))
		iv := t.pairedCI(pointName(&s, l), a[l], b[l])
		s.Lo = append(s.Lo, float64(iv.Lo))
		s.Hi = append(s.Hi, float64(iv.Hi))
	}
	return s
}

// freeRunningOracleMetrics returns the free-running metrics and the
// exposure excess with their intervals.
func (t *Task) freeRunningOracleMetrics(params map[string]any, tf, fr *oracleStep) []harness.Metric {
	n := float64(len(tf.rowKL))
	T := len(tf.kl)
	tokens := n * float64(T)
	accTF, accFR := fsum.Sum(tf.kl)/n, fsum.Sum(fr.kl)/n
	rowTF, rowFR := rowSums(tf.rowKL), rowSums(fr.rowKL)
	metric := func(name string, v float64, unit string, ci *harness.Interval) harness.Metric {
		return harness.Metric{Name: name, Value: v, Unit: unit, Split: "test", Params: params, CI: ci}
	}
	out := []harness.Metric{
		metric("kl_per_token_free_running", accFR/float64(T), "nats/token", t.meanCI("kl_per_token_free_running", rowMeans(fr.rowKL))),
		metric("oracle_nll_teacher_forced", fsum.Sum(tf.xent)/tokens, "nats/token", t.meanCI("oracle_nll_teacher_forced", rowMeans(tf.rowXent))),
		metric("oracle_nll_free_running", fsum.Sum(fr.xent)/tokens, "nats/token", t.meanCI("oracle_nll_free_running", rowMeans(fr.rowXent))),
		metric("special_token_mass_free_running", fsum.Sum(fr.special)/tokens, "probability",
			t.meanCI("special_token_mass_free_running", rowMeans(fr.rowSpecial))),
		metric("accumulated_kl_teacher_forced", accTF, "nats", t.meanCI("accumulated_kl_teacher_forced", rowTF)),
		metric("accumulated_kl_free_running", accFR, "nats", t.meanCI("accumulated_kl_free_running", rowFR)),
		metric("exposure_excess_kl", accFR-accTF, "nats", t.pairedCI("exposure_excess_kl", rowTF, rowFR)),
	}
	if accTF > 0 {
		// (R − Tε)/Tε = ΣFR/ΣTF − 1, a ratio of sums over the same rows:
		// the paired bootstrap of that ratio (ratioRows), shifted by −1.
		iv := t.bootstrap("exposure_excess_fraction", ratioRows(rowFR, rowTF))
		iv.Lo, iv.Hi = iv.Lo-1, iv.Hi-1
		out = append(out, metric("exposure_excess_fraction", (accFR-accTF)/accTF, "fraction",
			toInterval(iv, harness.CIPairedBootstrap, len(rowTF))))
	}
	return out
}
