package reports

import (
	"fmt"
	"strconv"
	"strings"

	"arbench/harness"
)

// convergenceCell says what the end of a run's validation curve says of
// its budget: the verdict (harness.RunRecord.Convergence) and the slope
// with its interval, "not converged at this budget" when still improving.
func convergenceCell(r harness.RunRecord) string {
	v := r.ValidSlope
	if v == nil {
		return "-"
	}
	c := r.Convergence()
	if c == harness.ConvergenceUnknown {
		return orDash(v.Note)
	}
	s := fmt.Sprintf("%s: %.3g [%.3g, %.3g] %s", c, float64(v.Slope), float64(v.CI.Lo), float64(v.CI.Hi), v.Unit)
	if c == harness.ConvergenceImproving {
		s = "not converged at this budget (" + s + ")"
	}
	return s
}

// lrCell is the learning rate a run trained with ("-" when not recorded).
func lrCell(r harness.RunRecord) string {
	if r.LR == 0 {
		return "-"
	}
	return strconv.FormatFloat(r.LR, 'g', -1, 64)
}

// sweepTable lists the learning-rate sweeps (results.json's lr_sweeps):
// each (task, model)'s candidates with their validation loss, the rate
// chosen and a warning when it is the smallest or largest candidate.
func sweepTable(rf *harness.ResultsFile) (simpleTable, bool) {
	if len(rf.LRSweeps) == 0 {
		return simpleTable{}, false
	}
	st := simpleTable{header: []string{"task", "model", "seed", "steps per trial", "valid loss by lr (nats/token)", "chosen lr", "note"},
		right: func(col int) bool { return col == 2 || col == 3 || col == 5 }}
	for _, s := range rf.LRSweeps {
		parts := make([]string, len(s.Trials))
		for i, t := range s.Trials {
			v := float64(t.ValidLoss)
			if finite(v) {
				parts[i] = fmt.Sprintf("%g: %.4f", t.LR, v)
			} else {
				parts[i] = fmt.Sprintf("%g: diverged", t.LR)
			}
		}
		chosen, note := "-", "every trial diverged"
		if s.Chosen > 0 {
			chosen, note = strconv.FormatFloat(s.Chosen, 'g', -1, 64), "-"
			if e := s.AtEdge(); e != "" {
				note = "the " + e + " candidate: the best rate may lie beyond them"
			}
		}
		st.rows = append(st.rows, []string{s.Task, s.Model, strconv.FormatUint(s.Seed, 10), strconv.Itoa(s.Steps),
			strings.Join(parts, ", "), chosen, note})
	}
	return st, true
}

// sweepCaption explains sweepTable.
const sweepCaption = "Each model's learning rate was chosen before its runs by one short trial per candidate on the validation split " +
	"(train.lr_sweep, with its own seed); every seed then trained with the chosen rate."
