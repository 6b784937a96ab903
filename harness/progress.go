package harness

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress reports one (task, model, seed) run. Work is counted in units of
// one training step; evaluations count as the number of steps they take as
// long (re-estimated once one has been timed), so the ETA covers training
// and evaluation.
type progress interface {
	// begin starts a run of total units.
	begin(desc string, total int)
	// add records finished units.
	add(n int)
	// setTotal changes the expected total.
	setTotal(total int)
	// status is a one-line progress message (eval points).
	status(format string, args ...any)
	// end finishes the run with a one-line summary.
	end(summary string)
}

// newProgress returns a bar on w when bars is set, plain log lines on w
// otherwise, and nothing when w is nil.
func newProgress(w io.Writer, bars bool) progress {
	switch {
	case w == nil:
		return nopProgress{}
	case bars:
		return &barProgress{w: w}
	}
	return &lineProgress{w: w}
}

type nopProgress struct{}

func (nopProgress) begin(string, int)     {}
func (nopProgress) add(int)               {}
func (nopProgress) setTotal(int)          {}
func (nopProgress) status(string, ...any) {}
func (nopProgress) end(string)            {}

// lineProgress writes one line per event.
type lineProgress struct {
	w    io.Writer
	desc string
}

func (p *lineProgress) begin(desc string, total int) {
	p.desc = desc
	fmt.Fprintf(p.w, "%s: started\n", desc)
}
func (p *lineProgress) add(int)      {}
func (p *lineProgress) setTotal(int) {}
func (p *lineProgress) status(format string, args ...any) {
	fmt.Fprintf(p.w, "%s: %s\n", p.desc, fmt.Sprintf(format, args...))
}
func (p *lineProgress) end(summary string) { fmt.Fprintf(p.w, "%s: %s\n", p.desc, summary) }

// barProgress draws a terminal progress bar with an ETA.
type barProgress struct {
	w    io.Writer
	desc string
	bar  *progressbar.ProgressBar
}

func (p *barProgress) begin(desc string, total int) {
	p.desc = desc
	p.bar = progressbar.NewOptions(total,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetRenderBlankState(true),
	)
}

func (p *barProgress) add(n int)          { _ = p.bar.Add(n) }
func (p *barProgress) setTotal(total int) { p.bar.ChangeMax(total) }
func (p *barProgress) status(format string, args ...any) {
	p.bar.Describe(p.desc + " " + fmt.Sprintf(format, args...))
}
func (p *barProgress) end(summary string) {
	_ = p.bar.Finish()
	_ = p.bar.Clear()
	fmt.Fprintf(p.w, "\r%s: %s\n", p.desc, summary)
}
