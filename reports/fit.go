package reports

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/olekukonko/tablewriter/pkg/twwidth"
	"golang.org/x/term"
)

// Terminal tables are drawn by tablewriter: every column is its widest
// cell plus a space of padding on either side, and a border character
// separates columns and closes both edges.
const (
	cellPadding = 2
	borderWidth = 1
)

// tableWidth is the width in terminal columns of a table whose columns
// have the given content widths.
func tableWidth(widths []int) int {
	w := borderWidth
	for _, c := range widths {
		w += c + cellPadding + borderWidth
	}
	return w
}

// splitColumns splits the columns of a table into parts that fit limit
// terminal columns when printed one under the other: every part starts
// with column 0 (the model, repeated so each part can be read alone)
// followed by the next columns in order, as many as fit. Every column is
// in exactly one part. A column too wide to fit beside column 0 gets a
// part of its own, which is then wider than limit (nothing narrower shows
// it whole). limit <= 0 means no limit: one part with every column.
//
// widths are the content widths of the columns (columnWidths).
func splitColumns(widths []int, limit int) [][]int {
	all := make([]int, len(widths))
	for i := range all {
		all[i] = i
	}
	if limit <= 0 || len(widths) <= 1 || tableWidth(widths) <= limit {
		return [][]int{all}
	}
	var parts [][]int
	cur, curWidth := []int{0}, tableWidth(widths[:1])
	for i := 1; i < len(widths); i++ {
		add := widths[i] + cellPadding + borderWidth
		if len(cur) > 1 && curWidth+add > limit {
			parts = append(parts, cur)
			cur, curWidth = []int{0}, tableWidth(widths[:1])
		}
		cur, curWidth = append(cur, i), curWidth+add
	}
	return append(parts, cur)
}

// displayWidth is the width of s in terminal columns (its widest line),
// as tablewriter measures it.
func displayWidth(s string) int {
	w := 0
	for _, line := range strings.Split(s, "\n") {
		w = max(w, twwidth.Width(line))
	}
	return w
}

// columnWidths returns the content width of every column of header and
// rows.
func columnWidths(header []string, rows [][]string) []int {
	widths := make([]int, len(header))
	for i, h := range header {
		widths[i] = displayWidth(h)
	}
	for _, r := range rows {
		for i, c := range r {
			if i < len(widths) {
				widths[i] = max(widths[i], displayWidth(c))
			}
		}
	}
	return widths
}

// WidthFlag is a flag.Value choosing the width terminal tables fit:
// "auto" (the zero value: TerminalWidth), "full" (no limit: never split) or
// a positive number of columns.
type WidthFlag struct {
	set bool
	n   int // with set: columns, 0 for full
}

// String implements flag.Value.
func (w *WidthFlag) String() string {
	switch {
	case w == nil || !w.set:
		return "auto"
	case w.n == 0:
		return "full"
	}
	return strconv.Itoa(w.n)
}

// Set implements flag.Value.
func (w *WidthFlag) Set(s string) error {
	switch s = strings.TrimSpace(s); s {
	case "auto":
		*w = WidthFlag{}
		return nil
	case "full":
		*w = WidthFlag{set: true}
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return fmt.Errorf("width: want auto, full or a positive number of columns, not %q", s)
	}
	*w = WidthFlag{set: true, n: n}
	return nil
}

// Columns is the width tables printed on out fit (TableOptions.Width):
// the chosen number, 0 for full, TerminalWidth(out) for auto.
func (w *WidthFlag) Columns(out io.Writer) int {
	if !w.set {
		return TerminalWidth(out)
	}
	return w.n
}

// TerminalWidth is the width tables printed on w should fit: $COLUMNS when
// it is set to a positive number (the user's explicit width), else the
// width of the terminal when w is one, else 0 (no limit: a file or a pipe
// gets the full tables).
func TerminalWidth(w io.Writer) int {
	return terminalWidth(w, os.Getenv)
}

func terminalWidth(w io.Writer, getenv func(string) string) int {
	if n, err := strconv.Atoi(strings.TrimSpace(getenv("COLUMNS"))); err == nil && n > 0 {
		return n
	}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 0 {
			return cols
		}
	}
	return 0
}

// wrapText breaks s at spaces into lines of at most width terminal
// columns (a longer word stays whole); width <= 0 leaves s as it is.
func wrapText(s string, width int) string {
	if width <= 0 {
		return s
	}
	var b strings.Builder
	line := 0
	for i, word := range strings.Fields(s) {
		w := twwidth.Width(word)
		switch {
		case i == 0:
		case line+1+w > width:
			b.WriteByte('\n')
			line = 0
		default:
			b.WriteByte(' ')
			line++
		}
		b.WriteString(word)
		line += w
	}
	return b.String()
}
