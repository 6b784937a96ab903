package claims

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"arbench/harness"
)

// Describe says in words what a test compares, e.g. "accuracy_vs_distance
// at 128 (trained): rnn − transformer < 0 on synthetic/needle".
func Describe(t harness.ClaimTest) string {
	what := t.Metric
	if t.At != nil {
		what += " at " + num(*t.At)
		if t.Label != "" {
			what += " (" + t.Label + ")"
		}
	}
	q := t.Model
	if t.OtherMetric != "" {
		// Two metrics: name each with its model.
		what = ""
		q = t.Metric + " of " + t.Model
	}
	if t.Other != "" || t.OtherMetric != "" {
		other := cmp.Or(t.Other, t.Model)
		if t.OtherMetric != "" {
			other = t.OtherMetric + " of " + other
		}
		sep := " − "
		if t.Ratio {
			sep = " / "
		}
		q += sep + other
	}
	op := "<"
	if t.Expect == harness.ExpectGreater {
		op = ">"
	}
	if what == "" {
		return fmt.Sprintf("%s %s %s on %s", q, op, num(t.Threshold()), t.Task)
	}
	return fmt.Sprintf("%s: %s %s %s on %s", what, q, op, num(t.Threshold()), t.Task)
}

// Format writes q as "estimate [lo, hi] (n=3 seeds)", or the estimate
// alone and why when there is no interval; digits are significant digits.
func Format(q Quantity) string {
	if !finite(q.Estimate) {
		return "–"
	}
	s := sig(q.Estimate)
	if q.HasInterval() {
		s += fmt.Sprintf(" [%s, %s]", sig(q.Lo), sig(q.Hi))
	}
	if q.N > 0 && q.Of != "" {
		of := q.Of
		if q.N == 1 {
			of = strings.TrimSuffix(of, "s")
		}
		s += fmt.Sprintf(" (n=%d %s)", q.N, of)
	}
	return s
}

// sig prints v with 4 significant digits (integers as integers).
func sig(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e9 {
		return fmt.Sprintf("%d", int64(v))
	}
	return num(v)
}

// Table returns the Claims table: one row per test, the claim's id, words
// and verdict on its first row.
func Table(js []Judgement) (header []string, rows [][]string) {
	header = []string{"claim", "verdict", "test", "measured (95% interval)", "test verdict"}
	for _, j := range js {
		for i, t := range j.Tests {
			row := []string{"", "", Describe(t.Test), Format(t.Quantity), testVerdict(t)}
			if i == 0 {
				row[0] = j.ID + ": " + j.Claim
				row[1] = string(j.Verdict)
			}
			rows = append(rows, row)
		}
	}
	return header, rows
}

func testVerdict(t TestResult) string {
	if t.Reason == "" {
		return string(t.Verdict)
	}
	return string(t.Verdict) + " (" + t.Reason + ")"
}

// Markdown writes the Claims table as a Markdown table (nothing when js is
// empty).
func Markdown(w io.Writer, js []Judgement) error {
	if len(js) == 0 {
		return nil
	}
	header, rows := Table(js)
	var b strings.Builder
	b.WriteString("| " + strings.Join(header, " | ") + " |\n")
	b.WriteString(strings.Repeat("|---", len(header)) + "|\n")
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = strings.ReplaceAll(c, "|", `\|`)
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Provenance says which run a claims file judges, so a quoted table can be
// traced to the results it came from.
type Provenance struct {
	Experiment string    `json:"experiment"`
	GitSHA     string    `json:"git_sha"`
	GitDirty   bool      `json:"git_dirty"`
	Seeds      []uint64  `json:"seeds"`
	End        time.Time `json:"end"`
}

// ProvenanceOf is the provenance of results with manifest m.
func ProvenanceOf(m harness.Manifest) Provenance {
	return Provenance{Experiment: m.Name, GitSHA: m.GitSHA, GitDirty: m.GitDirty, Seeds: m.Seeds, End: m.End.UTC()}
}

// String describes the run in one line: "long-range at commit 1a2b3c4d5e6f,
// seeds 1, 2, 3, finished 2026-12-02".
func (p Provenance) String() string {
	sha := p.GitSHA
	if len(sha) > 12 {
		sha = sha[:12]
	}
	if p.GitDirty {
		sha += " (with uncommitted changes)"
	}
	seeds := make([]string, len(p.Seeds))
	for i, s := range p.Seeds {
		seeds[i] = strconv.FormatUint(s, 10)
	}
	return fmt.Sprintf("%s at commit %s, seeds %s, finished %s", p.Experiment, orDash(sha), strings.Join(seeds, ", "), p.End.Format("2006-01-02"))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// WriteJSON writes the judgements as indented JSON (claims.json beside the
// results: {"run": provenance, "claims": [...]}), NaN bounds as null.
func WriteJSON(w io.Writer, p Provenance, js []Judgement) error {
	type quantity struct {
		Estimate *float64 `json:"estimate"`
		Lo       *float64 `json:"lo"`
		Hi       *float64 `json:"hi"`
		N        int      `json:"n"`
		Of       string   `json:"of,omitempty"`
		Method   string   `json:"method,omitempty"`
	}
	ptr := func(v float64) *float64 {
		if !finite(v) {
			return nil
		}
		return &v
	}
	type test struct {
		Describe string            `json:"describe"`
		Test     harness.ClaimTest `json:"test"`
		Quantity quantity          `json:"quantity"`
		Verdict  Verdict           `json:"verdict"`
		Reason   string            `json:"reason,omitempty"`
	}
	type claim struct {
		ID      string  `json:"id"`
		Claim   string  `json:"claim"`
		Verdict Verdict `json:"verdict"`
		Tests   []test  `json:"tests"`
	}
	out := make([]claim, 0, len(js))
	for _, j := range js {
		c := claim{ID: j.ID, Claim: j.Claim, Verdict: j.Verdict}
		for _, t := range j.Tests {
			q := t.Quantity
			c.Tests = append(c.Tests, test{Describe(t.Test), t.Test,
				quantity{ptr(q.Estimate), ptr(q.Lo), ptr(q.Hi), q.N, q.Of, q.Method}, t.Verdict, t.Reason})
		}
		out = append(out, c)
	}
	b, err := json.MarshalIndent(struct {
		Run    Provenance `json:"run"`
		Claims []claim    `json:"claims"`
	}{p, out}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode claims: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// ReadJSON reads what WriteJSON writes (null bounds back to NaN), so a
// committed claims.json can be rendered again (the README quotes it).
func ReadJSON(r io.Reader) (Provenance, []Judgement, error) {
	var file struct {
		Run    Provenance `json:"run"`
		Claims []struct {
			ID      string  `json:"id"`
			Claim   string  `json:"claim"`
			Verdict Verdict `json:"verdict"`
			Tests   []struct {
				Describe string            `json:"describe"`
				Test     harness.ClaimTest `json:"test"`
				Quantity struct {
					Estimate, Lo, Hi *float64
					N                int
					Of, Method       string
				} `json:"quantity"`
				Verdict Verdict `json:"verdict"`
				Reason  string  `json:"reason"`
			} `json:"tests"`
		} `json:"claims"`
	}
	d := json.NewDecoder(r)
	d.DisallowUnknownFields()
	if err := d.Decode(&file); err != nil {
		return Provenance{}, nil, fmt.Errorf("read claims: %w", err)
	}
	in := file.Claims
	val := func(p *float64) float64 {
		if p == nil {
			return math.NaN()
		}
		return *p
	}
	out := make([]Judgement, 0, len(in))
	for _, c := range in {
		j := Judgement{ID: c.ID, Claim: c.Claim, Verdict: c.Verdict}
		for _, t := range c.Tests {
			q := t.Quantity
			j.Tests = append(j.Tests, TestResult{Test: t.Test, Verdict: t.Verdict, Reason: t.Reason,
				Quantity: Quantity{Estimate: val(q.Estimate), Lo: val(q.Lo), Hi: val(q.Hi), N: q.N, Of: q.Of, Method: q.Method}})
		}
		out = append(out, j)
	}
	return file.Run, out, nil
}
