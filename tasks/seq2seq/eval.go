package seq2seq

import (
	"context"
	"fmt"
	"maps"

	"arbench/harness"
)

// namer names and annotates the metrics of one decoding setting: the
// default decoding's metrics have plain names, a setting's are named
// "<metric>@<setting>" and carry its Params and name ("setting").
type namer struct {
	setting harness.DecodeSetting
}

func (nm namer) name(base string) string {
	if nm.setting.Name == "" {
		return base
	}
	return base + "@" + nm.setting.Name
}

func (nm namer) params(extra map[string]any) map[string]any {
	out := map[string]any{}
	if nm.setting.Name != "" {
		maps.Copy(out, nm.setting.Params)
		out["setting"] = nm.setting.Name
	}
	maps.Copy(out, extra)
	return out
}

func (nm namer) metric(base string, v float64, unit string, extra map[string]any) harness.Metric {
	return harness.Metric{Name: nm.name(base), Value: v, Unit: unit, Split: "test", Params: nm.params(extra)}
}

// decoded is one decoding's measurements on the test set: the large-batch
// pass over every test row (whose outputs the quality metrics score) and
// the batch-1 pass over the latency rows.
type decoded struct {
	setting   harness.DecodeSetting
	large, b1 *pass
	quality   quality
}

// Evaluate measures the model on the test set, decoding through
// harness.Translate (BOS to start, EOS to end, max_out tokens at most):
// with the model's default decoding and, for a harness.DecodeSweeper, with
// each of its DecodeSettings. For each decoding it reports (a setting's
// metrics named "<metric>@<setting>", with the setting's Params):
//
//   - quality, from the large-batch pass: exact_match (fraction of rows
//     equal to a valid target, Example.Match), token_accuracy (positions
//     equal to the closest valid target over max(len(output),
//     len(target)) positions, pooled), each with a 95% interval over rows
//     in Metric.CI (Wilson; for token_accuracy a ratio estimator's normal
//     interval); length_accuracy when the model
//     predicts lengths (Translation.Lengths = len(target)+1); repetition_rate
//     (adjacent equal output tokens, a symptom of non-autoregressive
//     decoding; repetition_rate_target is the targets' own rate, once);
//     multimodal adds mixed_modes (outputs equal to neither valid target),
//     mode_0 and mode_1 (equal to the source, to its reverse);
//   - speed (see speedMetrics): latency_ms_b1 and its _p50/_p90,
//     passes_b1, latency_ms_large, sequences_per_s_large, passes_large;
//     a speculative decoder's acceptance_rate, acceptance_alpha,
//     tokens_per_verify and draft_verify_cost (each also _b1, from the
//     batch-1 pass);
//   - for a setting other than the Baseline one, speedup_b1 and
//     speedup_large: the baseline's time per sequence over this one's,
//     and same_as_baseline: the fraction of outputs equal to the
//     baseline's.
//
// The default decoding also gives target_nll (teacher-forced nats per
// target token, EOS included) for a harness.Scorer, the series
// latency_vs_target_length (labels "batch 1" and "large batch"), and the
// samples. Across decodings come, when every setting has one numeric
// parameter K, exact_match_vs_K, latency_vs_K, acceptance_vs_K and
// speedup_vs_K (see sweepSeries). The speed–quality charts are drawn by
// the report from the metrics (reports.speedQualityFigures).
func (t *Task) Evaluate(ctx context.Context, m harness.Model) (*harness.Evaluation, error) {
	if t.gen == nil {
		panic("seq2seq: Evaluate before a successful Prepare")
	}
	ev := &harness.Evaluation{}
	def, err := t.decode(ctx, m, harness.DecodeSetting{})
	if err != nil {
		return nil, err
	}
	if err := t.defaultOnly(ctx, m, def, ev); err != nil {
		return nil, err
	}
	var swept []*decoded
	if sw, ok := m.(harness.DecodeSweeper); ok {
		if swept, err = t.sweep(ctx, m, sw.DecodeSettings()); err != nil {
			return nil, err
		}
	}
	t.settingMetrics(def, swept, ev)
	ev.Series = append(ev.Series, sweepSeries(swept)...)
	return ev, nil
}

// sweep runs every decode setting.
func (t *Task) sweep(ctx context.Context, m harness.Model, settings []harness.DecodeSetting) ([]*decoded, error) {
	if err := checkSettings(settings); err != nil {
		return nil, fmt.Errorf("seq2seq: model %s: %w", m.Info().Family, err)
	}
	out := make([]*decoded, 0, len(settings))
	for _, s := range settings {
		d, err := t.decode(ctx, m, s)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// checkSettings refuses settings an evaluation cannot name apart.
func checkSettings(settings []harness.DecodeSetting) error {
	seen := map[string]bool{}
	baselines := 0
	for _, s := range settings {
		switch {
		case s.Name == "":
			return fmt.Errorf("a decode setting has no name")
		case seen[s.Name]:
			return fmt.Errorf("decode setting %q listed twice", s.Name)
		}
		seen[s.Name] = true
		if s.Baseline {
			baselines++
		}
	}
	if baselines > 1 {
		return fmt.Errorf("%d decode settings are marked Baseline, at most one may be", baselines)
	}
	return nil
}

// settingMetrics appends the default decoding's metrics and each swept
// setting's, with the speed-ups of the settings against the Baseline one.
func (t *Task) settingMetrics(def *decoded, swept []*decoded, ev *harness.Evaluation) {
	multimodal := t.gen.Variant() == "multimodal"
	base := baseline(swept)
	for _, d := range append([]*decoded{def}, swept...) {
		nm := namer{d.setting}
		ev.Metrics = append(ev.Metrics, d.quality.metrics(nm, multimodal)...)
		ev.Metrics = append(ev.Metrics, t.speedMetrics(nm, d)...)
		if base != nil && d != base && d != def {
			ev.Metrics = append(ev.Metrics, speedups(nm, base, d)...)
		}
	}
}

// decode runs one decoding on the test set: the large-batch pass and the
// batch-1 pass over the first latency_rows rows.
func (t *Task) decode(ctx context.Context, m harness.Model, s harness.DecodeSetting) (*decoded, error) {
	tr := t.translator(m, s)
	what := "default decoding"
	if s.Name != "" {
		what = "decoding " + s.Name
	}
	large, err := tr.run(ctx, t.test, t.largeBatch())
	if err != nil {
		return nil, fmt.Errorf("seq2seq: evaluate (%s, batch %d): %w", what, t.largeBatch(), err)
	}
	b1, err := tr.run(ctx, t.test[:t.latencyRows()], 1)
	if err != nil {
		return nil, fmt.Errorf("seq2seq: evaluate (%s, batch 1): %w", what, err)
	}
	return &decoded{setting: s, large: large, b1: b1, quality: score(t.test, large.outputs, large.lengths)}, nil
}

// translator decodes with m and setting s as the task does: BOS to
// start, EOS to end, max_out tokens at most.
func (t *Task) translator(m harness.Model, s harness.DecodeSetting) translator {
	_, _, maxOut := t.lens()
	return translator{m: m, opt: harness.TranslateOptions{Start: BOS, End: EOS, MaxLen: maxOut, Setting: s.Name}}
}

// latencyRows is the number of test rows timed at batch 1.
func (t *Task) latencyRows() int { return min(t.cfg.LatencyRows, len(t.test)) }

// defaultOnly appends what only the default decoding measures:
// target_nll, repetition_rate_target, latency_vs_target_length and the
// samples.
func (t *Task) defaultOnly(ctx context.Context, m harness.Model, def *decoded, ev *harness.Evaluation) error {
	if _, ok := harness.ScorerOf(m); ok {
		nll, tokens, err := t.scoreTest(ctx, m)
		if err != nil {
			return fmt.Errorf("seq2seq: evaluate (target_nll): %w", err)
		}
		ev.Metrics = append(ev.Metrics, harness.Metric{Name: "target_nll", Value: nll, Unit: "nats/token", Split: "test",
			Params: map[string]any{"tokens": tokens, "rows": len(t.test)}})
	}
	rate, pairs := targetRepetition(t.test)
	ev.Metrics = append(ev.Metrics, harness.Metric{Name: "repetition_rate_target", Value: rate, Unit: "fraction", Split: "test",
		Params: map[string]any{"pairs": pairs}})
	series, err := t.latencyByLength(ctx, m, def)
	if err != nil {
		return err
	}
	ev.Series = append(ev.Series, series...)
	ev.Samples = t.samples(def)
	return nil
}

// scoreTest returns the test set's mean teacher-forced nats per target
// token and the number of tokens.
func (t *Task) scoreTest(ctx context.Context, m harness.Model) (float64, int, error) {
	nll, err := t.meanNLL(ctx, m, t.test)
	tokens := 0
	for _, e := range t.test {
		tokens += len(e.Target) + 1
	}
	return nll, tokens, err
}

// samples returns the first sample_rows test rows with the default
// decoding's output.
func (t *Task) samples(def *decoded) []harness.Sample {
	var out []harness.Sample
	for i, e := range t.test[:min(t.cfg.SampleRows, len(t.test))] {
		s := harness.Sample{"row": i, "source": e.Source, "target": e.Target, "output": def.large.outputs[i], "match": e.Match(def.large.outputs[i])}
		if e.Valid != nil {
			s["valid"] = e.Valid
		}
		if def.large.lengths != nil {
			s["length"] = def.large.lengths[i]
		}
		out = append(out, s)
	}
	return out
}
