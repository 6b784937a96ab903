package reports

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Point is one entry of a PointChart: a model's value and its interval.
type Point struct {
	// Label names the entry on the axis (the model); Note is a second line
	// under it ("3 seeds").
	Label, Note string
	// Color indexes the palette (see Color).
	Color int
	Value float64
	// Lo and Hi bound the interval when Interval is set.
	Lo, Hi   float64
	Interval bool
	// Text is printed next to the point ("2.188 ± 0.274"); empty prints
	// nothing.
	Text string
}

// Reference is a reference value of a PointChart (a unigram baseline,
// chance level), drawn as a vertical grey line.
type Reference struct {
	Label string
	Value float64
}

// PointChart is a dot-and-whisker chart (a "forest plot"): one row per
// entry, a dot at its value and a whisker over its confidence interval,
// on a value axis fitted to the intervals rather than starting at zero,
// so that differences much smaller than the values (2.80 against 2.83
// bits/byte) are visible. References are vertical grey dashed lines.
type PointChart struct {
	Title, XLabel string
	Points        []Point
	References    []Reference
	// Bounds, when set, is the range the values can take: intervals are
	// clipped to it and the axis does not extend past it.
	Bounds *Bounds
}

func (c *PointChart) title() string { return c.Title }

// Validate implements Chart.
func (c *PointChart) Validate() error {
	if len(c.Points) == 0 {
		return fmt.Errorf("chart %q: no points to plot", c.Title)
	}
	for _, p := range c.Points {
		if !finite(p.Value) {
			return fmt.Errorf("chart %q: point %q: value is %v", c.Title, p.Label, p.Value)
		}
		if p.Interval && !(finite(p.Lo) && finite(p.Hi) && p.Lo <= p.Hi) {
			return fmt.Errorf("chart %q: point %q: interval [%v, %v] is not finite and ordered", c.Title, p.Label, p.Lo, p.Hi)
		}
	}
	for _, r := range c.References {
		if !finite(r.Value) {
			return fmt.Errorf("chart %q: reference %q: value is %v", c.Title, r.Label, r.Value)
		}
	}
	return nil
}

// interval is p's interval clipped to the chart's bounds (the value
// itself when p has none).
func (c *PointChart) interval(p Point) (lo, hi float64) {
	lo, hi = p.Value, p.Value
	if p.Interval {
		lo, hi = math.Min(p.Lo, p.Value), math.Max(p.Hi, p.Value)
	}
	if c.Bounds != nil {
		lo, hi = c.Bounds.Clip(lo), c.Bounds.Clip(hi)
	}
	return lo, hi
}

// pointMargin is the part of the data span left free on either side of
// the axis.
const pointMargin = 0.08

// axis returns the value axis range of c: every point's clipped interval
// with a margin of pointMargin of their span on either side, extended to
// the references that lie within one span of the data (a reference
// farther away would zoom the models' differences out of sight; it is
// returned in off and drawn as a label at the edge), and never past
// Bounds. A zero span (one point, no interval) gets a range of ±5% of
// the value (±0.5 at 0).
func (c *PointChart) axis() (lo, hi float64, off []Reference) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, p := range c.Points {
		l, h := c.interval(p)
		lo, hi = math.Min(lo, l), math.Max(hi, h)
	}
	span := hi - lo
	if span == 0 {
		span = math.Max(0.1*math.Abs(lo), 1e-9)
		if lo == 0 {
			span = 1
		}
		lo, hi = lo-span/2, hi+span/2
	}
	dataLo, dataHi := lo, hi
	for _, r := range c.References {
		if r.Value < dataLo-span || r.Value > dataHi+span {
			off = append(off, r)
			continue
		}
		lo, hi = math.Min(lo, r.Value), math.Max(hi, r.Value)
	}
	m := pointMargin * (hi - lo)
	lo, hi = lo-m, hi+m
	if c.Bounds != nil {
		lo, hi = math.Max(lo, c.Bounds.Min), math.Min(hi, c.Bounds.Max)
	}
	return lo, hi, off
}

// xErrorBars draws horizontal whiskers.
type xErrorBars struct {
	plotter.XYs
	plotter.XErrors
}

func (c *PointChart) build() (*plot.Plot, *plot.Legend, error) {
	p, grid := newPlot(c.Title, c.XLabel, "")
	grid.Horizontal.Color = nil // entries need no horizontal lines
	n := len(c.Points)
	names := make([]string, n)
	var whiskers xErrorBars
	var labels plotter.XYLabels
	var dots []plot.Plotter
	// The first point at the top.
	y := func(i int) float64 { return float64(n - 1 - i) }
	for i, pt := range c.Points {
		names[n-1-i] = pt.Label
		if pt.Note != "" {
			names[n-1-i] += "\n" + pt.Note
		}
		xy := plotter.XYs{{X: pt.Value, Y: y(i)}}
		if lo, hi := c.interval(pt); pt.Interval && hi > lo {
			whiskers.XYs = append(whiskers.XYs, xy[0])
			whiskers.XErrors = append(whiskers.XErrors, struct{ Low, High float64 }{pt.Value - lo, hi - pt.Value})
		}
		dot, err := plotter.NewScatter(xy)
		if err != nil {
			return nil, nil, fmt.Errorf("chart %q: point %s: %w", c.Title, pt.Label, err)
		}
		dot.GlyphStyle = draw.GlyphStyle{Color: Color(pt.Color), Radius: vg.Points(4.5), Shape: draw.CircleGlyph{}}
		dots = append(dots, dot)
		if pt.Text != "" {
			labels.XYs = append(labels.XYs, xy[0])
			labels.Labels = append(labels.Labels, pt.Text)
		}
	}
	lo, hi, off := c.axis()
	if err := c.addReferences(p, lo, hi, off); err != nil {
		return nil, nil, err
	}
	if len(whiskers.XYs) > 0 {
		bars, err := plotter.NewXErrorBars(whiskers)
		if err != nil {
			return nil, nil, fmt.Errorf("chart %q: intervals: %w", c.Title, err)
		}
		bars.LineStyle.Width = vg.Points(1.6)
		bars.CapWidth = vg.Points(9)
		p.Add(bars)
	}
	p.Add(dots...) // over the whiskers
	if err := addText(p, labels, draw.XCenter, vg.Points(9)); err != nil {
		return nil, nil, fmt.Errorf("chart %q: %w", c.Title, err)
	}
	p.NominalY(names...)
	p.Y.Tick.Label.Font = sans(labelSize)
	p.X.Min, p.X.Max = lo, hi
	// Room above the top entry for its value and the reference labels.
	p.Y.Min, p.Y.Max = -0.6, float64(n)-0.25
	return p, nil, nil
}

// addReferences draws the references within [lo, hi] as labelled vertical
// lines, and names those outside at the edge they lie beyond.
func (c *PointChart) addReferences(p *plot.Plot, lo, hi float64, off []Reference) error {
	top := float64(len(c.Points)) - 0.45
	var in, left, right plotter.XYLabels
	for _, r := range c.References {
		if r.Value < lo || r.Value > hi {
			continue
		}
		ln, err := plotter.NewLine(plotter.XYs{{X: r.Value, Y: -0.6}, {X: r.Value, Y: top}})
		if err != nil {
			return fmt.Errorf("chart %q: reference %s: %w", c.Title, r.Label, err)
		}
		ln.LineStyle = draw.LineStyle{Color: referenceColor(), Width: vg.Points(1.2), Dashes: []vg.Length{vg.Points(4), vg.Points(3)}}
		p.Add(ln)
		in.XYs = append(in.XYs, plotter.XY{X: r.Value, Y: top})
		in.Labels = append(in.Labels, r.Label)
	}
	for _, r := range off {
		text := r.Label + " " + formatValue(r.Value)
		if r.Value > hi {
			right.XYs = append(right.XYs, plotter.XY{X: hi, Y: top - 0.16*float64(len(right.XYs)+1)})
			right.Labels = append(right.Labels, text+" →")
		} else {
			left.XYs = append(left.XYs, plotter.XY{X: lo, Y: top - 0.16*float64(len(left.XYs)+1)})
			left.Labels = append(left.Labels, "← "+text)
		}
	}
	for _, l := range []struct {
		labels plotter.XYLabels
		align  draw.XAlignment
	}{{in, draw.XCenter}, {left, draw.XLeft}, {right, draw.XRight}} {
		if err := addGreyText(p, l.labels, l.align); err != nil {
			return fmt.Errorf("chart %q: references: %w", c.Title, err)
		}
	}
	return nil
}

// formatValue prints v with 4 significant digits.
func formatValue(v float64) string { return fmt.Sprintf("%.*f", valueDecimals(v), v) }

// addText adds labels (if any) above their points, in the annotation font.
func addText(p *plot.Plot, labels plotter.XYLabels, align draw.XAlignment, dy vg.Length) error {
	return addLabels(p, labels, align, dy, nil)
}

// addGreyText adds reference labels in grey above their positions.
func addGreyText(p *plot.Plot, labels plotter.XYLabels, align draw.XAlignment) error {
	return addLabels(p, labels, align, 0, color.Gray{0x55})
}

// addLabels adds labels (if any) above their points, offset by dy, in the
// annotation font and c (nil: the default colour).
func addLabels(p *plot.Plot, labels plotter.XYLabels, align draw.XAlignment, dy vg.Length, c color.Color) error {
	if len(labels.XYs) == 0 {
		return nil
	}
	lbl, err := plotter.NewLabels(labels)
	if err != nil {
		return err
	}
	for i := range lbl.TextStyle {
		lbl.TextStyle[i].Font = sans(annotSize)
		if c != nil {
			lbl.TextStyle[i].Color = c
		}
		lbl.TextStyle[i].XAlign = align
		lbl.TextStyle[i].YAlign = draw.YBottom
	}
	lbl.Offset = vg.Point{Y: dy}
	p.Add(lbl)
	return nil
}
