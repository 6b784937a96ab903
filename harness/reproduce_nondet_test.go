package harness

import "testing"

// TestReproduceNondeterministicModel: with the backend's exact default, a
// run whose model was recorded as nondeterministic is compared with
// NondeterministicTolerance, the others exactly; an explicit tolerance
// applies to every run.
func TestReproduceNondeterministicModel(t *testing.T) {
	runs := []RunRecord{
		{Model: "torch", Task: "t/v", Seed: 1, Info: ModelInfo{Family: "ext", Nondeterministic: true}},
		{Model: "rnn", Task: "t/v", Seed: 1, Info: ModelInfo{Family: "rnn"}},
	}
	res := func(model string, v float64) Result {
		return Result{Model: model, Task: "t/v", Seed: 1, Metric: "bits_per_byte", Value: Number(v), Unit: "bits/byte"}
	}
	stored := &ResultsFile{Runs: runs, Results: []Result{res("torch", 2), res("rnn", 2)}}
	rerun := &ResultsFile{Runs: runs, Results: []Result{res("torch", 2.0001), res("rnn", 2.0001)}}
	status := func(r *Reproduction) map[string]string {
		r.compare()
		out := map[string]string{}
		for _, c := range r.Checks {
			out[c.Key.Model] = c.Status
		}
		return out
	}
	got := status(&Reproduction{Stored: stored, Rerun: rerun})
	if got["torch"] != CheckOK || got["rnn"] != CheckDrift {
		t.Errorf("default exact tolerance: %v; want torch ok (nondeterministic, rel 1e-3), rnn drift", got)
	}
	got = status(&Reproduction{Stored: stored, Rerun: rerun, explicit: true})
	if got["torch"] != CheckDrift || got["rnn"] != CheckDrift {
		t.Errorf("explicit exact tolerance: %v; want both drift", got)
	}
}
