package reports

import (
	"fmt"
	"strconv"
	"strings"

	"arbench/datasets"
)

// publishedCaption says how published figures compare with arbench's.
const publishedCaption = "Published test bits per character on this corpus (datasets.Published), beside which the " +
	"models above stand: on enwik8 a character is a byte and text8 is ASCII, so it is the same quantity as " +
	"bits/byte on the same standard split; the protocols differ (the papers train far longer, on contexts of " +
	"hundreds to thousands of characters, and some use a vocabulary of the symbols present rather than 256 bytes)."

// publishedTable lists the published results on a standard text corpus
// (task "text/enwik8", "text/text8"); ok is false for other tasks.
func publishedTable(task string) (simpleTable, bool) {
	name, ok := strings.CutPrefix(task, "text/")
	if !ok {
		return simpleTable{}, false
	}
	pub := datasets.Published(name)
	if len(pub) == 0 {
		return simpleTable{}, false
	}
	st := simpleTable{
		header: []string{"model", "bits/char ↓ (test)", "params", "paper", "note"},
		right:  func(col int) bool { return col == 1 || col == 2 },
	}
	for _, p := range pub {
		params := "-"
		if p.Params > 0 {
			params = formatCount(int(p.Params))
		}
		st.rows = append(st.rows, []string{p.Model, strconv.FormatFloat(p.BPC, 'f', 2, 64), params,
			fmt.Sprintf("%s (%s)", p.Paper, p.Where), orDash(p.Note)})
	}
	return st, true
}
