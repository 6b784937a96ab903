package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"arbench/harness"
)

// pointRun is a point being measured (runner.start): its model set up and
// warmed up, the samples of the timed repeats taken so far. measure runs
// its repeats back to back; measurePair interleaves them with a peer's.
type pointRun struct {
	r       *runner
	p       Point
	m       harness.Model
	op      opFunc
	repeats int
	mon     *memoryMonitor
	// mem is the memory taken before the repeats (takeMemory), nil while
	// the monitor runs.
	mem *Memory

	rates, steps, ttft, lat, seqs, perSeq []float64
	passes, outTokens                     int
	stats                                 map[string]float64
}

// repeat times one repeat of the point's operation: one generation or
// translation, one sampled image batch, or as many training or scoring
// steps as fill Config.MinSeconds.
func (run *pointRun) repeat(ctx context.Context) error {
	if testHookRepeat != nil {
		testHookRepeat(run.p)
	}
	p := &run.p
	switch p.Kind {
	case KindGenerate:
		var t timing
		if _, err := run.op(ctx, &t); err != nil {
			return err
		}
		total := t.first
		for _, s := range t.steps {
			total += s
		}
		run.rates = append(run.rates, float64(p.Batch*p.Length)/total)
		run.ttft = append(run.ttft, t.first)
		run.lat = append(run.lat, t.steps...)
		p.LatencyRepeats = append(p.LatencyRepeats, Latencies(t.steps))
		return nil
	case KindImageSample:
		t, _, err := run.once(ctx)
		if err != nil {
			return err
		}
		p.Mode = t.path
		return nil
	case KindTranslate:
		t, sec, err := run.once(ctx)
		if err != nil {
			return err
		}
		run.seqs = append(run.seqs, float64(p.Batch)/sec)
		run.perSeq = append(run.perSeq, sec/float64(p.Batch))
		run.passes += t.translation.Passes
		for _, o := range t.translation.Outputs {
			run.outTokens += len(o)
		}
		for k, v := range t.translation.Stats {
			run.stats[k] += v
		}
		return nil
	}
	n, tok := 0, 0
	start := time.Now()
	for n == 0 || time.Since(start).Seconds() < run.r.opt.Config.MinSeconds {
		var err error
		if tok, err = run.op(ctx, nil); err != nil {
			return err
		}
		n++
	}
	el := time.Since(start).Seconds()
	run.rates = append(run.rates, float64(n*tok)/el)
	run.steps = append(run.steps, el/float64(n))
	return nil
}

// complete runs the point's repeats back to back and finishes it.
func (run *pointRun) complete(ctx context.Context) (Point, error) {
	for range run.repeats {
		if err := run.repeat(ctx); err != nil {
			return run.p, run.close(err)
		}
	}
	return run.finish()
}

// once runs an operation that times itself as a whole (an image sample,
// a translation), records its rate and seconds, and returns its timing.
func (run *pointRun) once(ctx context.Context) (timing, float64, error) {
	var t timing
	n, err := run.op(ctx, &t)
	if err != nil {
		return t, 0, err
	}
	sec := max(t.first, 1e-9)
	run.rates = append(run.rates, float64(n)/sec)
	run.steps = append(run.steps, sec)
	return t, sec, nil
}

// testHookRepeat, when set (by tests), is called before every timed
// repeat.
var testHookRepeat func(Point)

// takeMemory ends the memory sampling now, before the repeats.
func (run *pointRun) takeMemory() {
	if run.mem == nil {
		m := run.mon.finish()
		run.mem = &m
	}
}

// close ends the memory sampling if it still runs and closes the model,
// joining its error to err.
func (run *pointRun) close(err error) error {
	run.takeMemory()
	return errors.Join(err, closeModel(run.m))
}

// finish summarizes the repeats into the point and closes the model.
func (run *pointRun) finish() (Point, error) {
	run.takeMemory()
	p := run.p
	p.Memory = *run.mem
	p.Memory.PluginPeakRSS = pluginPeakRSS(run.m)
	p.TokensPerSec = Summarize(run.rates)
	s := Summarize(run.steps)
	switch p.Kind {
	case KindGenerate:
		s, l := Summarize(run.ttft), Latencies(run.lat)
		p.TTFT, p.Latency = &s, &l
	case KindTranslate:
		p.StepSeconds = &s
		sp, l := Summarize(run.seqs), Latencies(run.perSeq)
		p.SeqPerSec, p.SeqLatency = &sp, &l
		translationStats(&p, run.repeats, run.passes, run.stats)
		if want := run.repeats * p.Batch * p.Length; run.outTokens != want {
			p.Note = fmt.Sprintf("outputs average %.2f tokens, not the %d asked for (harness.TranslateOptions.Length)",
				float64(run.outTokens)/float64(run.repeats*p.Batch), p.Length)
		}
	case KindImageSample, KindImageTrain, KindImageScore:
		p.StepSeconds, p.MsPerImage = &s, msPerImage(run.steps, p.Batch)
	default:
		p.StepSeconds = &s
	}
	p.GFLOPS = p.FLOPsPerToken * p.TokensPerSec.Median / 1e9
	if run.r.ceiling > 0 {
		p.CeilingFraction = p.GFLOPS / run.r.ceiling
	}
	return p, run.close(nil)
}
