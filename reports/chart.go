package reports

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"

	xfont "golang.org/x/image/font"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Figure size and resolution. 6.4×4 in is a full text width in most paper
// templates; PNGs are rendered at 150 dpi (960×600 pixels).
const (
	FigureWidth  = 6.4 * vg.Inch
	FigureHeight = 4 * vg.Inch
	PNGDPI       = 150
)

// Font sizes in points.
const (
	titleSize  = 13
	labelSize  = 12
	tickSize   = 10
	legendSize = 10
	annotSize  = 9
)

// palette is the colour-blind-safe qualitative palette of Okabe & Ito
// (2008, "Color Universal Design"), reordered so the first colours are the
// most distinct on white; yellow, too pale for lines, is left out.
func palette() []color.RGBA {
	return []color.RGBA{
		{0x00, 0x72, 0xB2, 0xFF}, // blue
		{0xD5, 0x5E, 0x00, 0xFF}, // vermillion
		{0x00, 0x9E, 0x73, 0xFF}, // bluish green
		{0xCC, 0x79, 0xA7, 0xFF}, // reddish purple
		{0xE6, 0x9F, 0x00, 0xFF}, // orange
		{0x56, 0xB4, 0xE9, 0xFF}, // sky blue
		{0x00, 0x00, 0x00, 0xFF}, // black
	}
}

// Color returns the i-th colour of the report palette (cycling).
func Color(i int) color.RGBA {
	p := palette()
	return p[((i%len(p))+len(p))%len(p)]
}

// neutral is the colour of legend entries that explain line styles.
func neutral() color.RGBA { return color.RGBA{0x55, 0x55, 0x55, 0xFF} }

// dashes returns the dash pattern of line style i: solid, dashed, dotted,
// dash-dot, long dash (cycling).
func dashes(i int) []vg.Length {
	patterns := [][]vg.Length{
		nil,
		{vg.Points(6), vg.Points(3)},
		{vg.Points(1.5), vg.Points(2.5)},
		{vg.Points(6), vg.Points(2.5), vg.Points(1.5), vg.Points(2.5)},
		{vg.Points(11), vg.Points(3)},
	}
	return patterns[((i%len(patterns))+len(patterns))%len(patterns)]
}

// Glyph returns the marker shape of line style i (cycling with the same
// period as the dash patterns): a filled circle, an open triangle, a filled
// square, an open circle, a cross; filled and open shapes alternate so
// that markers on top of each other stay visible.
func Glyph(i int) draw.GlyphDrawer {
	shapes := []draw.GlyphDrawer{draw.CircleGlyph{}, draw.TriangleGlyph{}, draw.BoxGlyph{}, draw.RingGlyph{}, draw.CrossGlyph{}}
	return shapes[((i%len(shapes))+len(shapes))%len(shapes)]
}

// referenceColor is the colour of reference lines (chance, unigram).
func referenceColor() color.RGBA { return color.RGBA{0x88, 0x88, 0x88, 0xFF} }

// referenceDashes is the dash pattern of reference lines.
func referenceDashes() []vg.Length { return []vg.Length{vg.Points(2), vg.Points(2)} }

// Scale selects a line chart's axis scale.
type Scale int

// Scales: ScaleAuto is logarithmic when every x is positive and they span
// more than LogDecades decades, else linear.
const (
	ScaleAuto Scale = iota
	ScaleLinear
	ScaleLog
)

// LogDecades is the span (max/min of x, in decades) above which ScaleAuto
// picks a logarithmic x axis.
const LogDecades = 1.5

// Line is one line of a LineChart.
type Line struct {
	// Group names the line's colour in the legend (the model).
	Group string
	// Color indexes the palette (see Color).
	Color int
	// Variant names the line style in the legend ("training",
	// "teacher_forced"); empty when the chart has a single style.
	Variant string
	// Style indexes the dash patterns (0 solid).
	Style int
	// X and Y are the points.
	X, Y []float64
	// Lo and Hi, when non-nil, bound a shaded band around the line (a
	// confidence interval); they have the length of X.
	Lo, Hi []float64
	// Width is the line width (0: 1.5 pt); Faint draws the line partly
	// transparent, for noisy lines under the important ones.
	Width vg.Length
	Faint bool
	// Reference draws the line as a baseline, not a model: thin, grey and
	// dotted, without markers or band, its Group in grey in the legend
	// ("chance").
	Reference bool
}

// LineChart is a chart of lines, one colour per Group and one dash pattern
// per Variant, with the legend outside the data area.
type LineChart struct {
	Title, XLabel, YLabel string
	XScale                Scale
	// YScale is ScaleLog for a logarithmic y axis (every y and band value
	// must then be positive); ScaleAuto and ScaleLinear are linear.
	YScale Scale
	Lines  []Line
	// Markers draws a marker at every point of a line of at most
	// MaxMarkers points, its shape set by Style like the dash pattern
	// (Glyph), so that lines that overlap stay distinguishable.
	Markers bool
	// YBounds, when set, is the range the y values can take (an accuracy's
	// [0, 1], a loss's [0, ∞)): bands are clipped to it and the axis does
	// not extend past it.
	YBounds *Bounds
}

// MaxMarkers is the most points a line of a LineChart with Markers gets
// markers on; a denser line is drawn without them.
const MaxMarkers = 40

// Bar is one bar of a BarChart.
type Bar struct {
	Label string
	Color int
	// Value is the bar's height; N the number of observations behind it.
	Value float64
	N     int
	// HalfWidth is the half-width of the confidence interval drawn as an
	// error bar; it is ignored (no error bar) when N < 2.
	HalfWidth float64
}

// BarChart is a bar chart with one bar per entry, error bars for entries
// with N >= 2 and the value (with "± h", or "n=1") printed above each bar.
// Bars start at zero, which hides differences much smaller than the values:
// the report draws headline metrics as a PointChart instead; BarChart is for
// quantities whose size from zero is the point (counts, shares).
type BarChart struct {
	Title, YLabel string
	Bars          []Bar
}

// Chart is a LineChart, a PointChart or a BarChart.
type Chart interface {
	// Validate reports missing, non-finite or inconsistent data.
	Validate() error
	// build makes the plot and its legend (nil when none).
	build() (*plot.Plot, *plot.Legend, error)
	title() string
}

func (c *LineChart) title() string { return c.Title }
func (c *BarChart) title() string  { return c.Title }

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// checkValues returns an error naming the first non-finite value of xs.
func checkValues(what string, xs []float64) error {
	for i, v := range xs {
		if !finite(v) {
			return fmt.Errorf("%s[%d] is %v", what, i, v)
		}
	}
	return nil
}

// Validate implements Chart.
func (c *LineChart) Validate() error {
	if len(c.Lines) == 0 {
		return fmt.Errorf("chart %q: no lines to plot", c.Title)
	}
	for _, l := range c.Lines {
		name := l.Group
		if l.Variant != "" {
			name += " " + l.Variant
		}
		bad := func(format string, args ...any) error {
			return fmt.Errorf("chart %q: line %q: %s", c.Title, name, fmt.Sprintf(format, args...))
		}
		if len(l.X) == 0 {
			return bad("no points (empty series)")
		}
		if len(l.Y) != len(l.X) {
			return bad("%d x values but %d y values", len(l.X), len(l.Y))
		}
		if (l.Lo == nil) != (l.Hi == nil) || (l.Lo != nil && (len(l.Lo) != len(l.X) || len(l.Hi) != len(l.X))) {
			return bad("band bounds do not match the %d points", len(l.X))
		}
		for _, s := range []struct {
			what string
			xs   []float64
		}{{"x", l.X}, {"y", l.Y}, {"band low", l.Lo}, {"band high", l.Hi}} {
			if err := checkValues(s.what, s.xs); err != nil {
				return bad("%v", err)
			}
		}
		if c.XScale == ScaleLog {
			if err := checkPositive("x", l.X); err != nil {
				return bad("%v", err)
			}
		}
		if c.YScale == ScaleLog {
			for _, s := range []struct {
				what string
				xs   []float64
			}{{"y", l.Y}, {"band low", l.Lo}, {"band high", l.Hi}} {
				if err := checkPositive(s.what, s.xs); err != nil {
					return bad("%v", err)
				}
			}
		}
	}
	return nil
}

// checkPositive returns an error naming the first value of xs that a
// logarithmic axis cannot show.
func checkPositive(what string, xs []float64) error {
	for i, v := range xs {
		if v <= 0 {
			return fmt.Errorf("%s[%d] = %v cannot be shown on a logarithmic axis", what, i, v)
		}
	}
	return nil
}

// Validate implements Chart.
func (c *BarChart) Validate() error {
	if len(c.Bars) == 0 {
		return fmt.Errorf("chart %q: no bars to plot", c.Title)
	}
	for _, b := range c.Bars {
		if !finite(b.Value) {
			return fmt.Errorf("chart %q: bar %q: value is %v", c.Title, b.Label, b.Value)
		}
		if b.N >= 2 && !(finite(b.HalfWidth) && b.HalfWidth >= 0) {
			return fmt.Errorf("chart %q: bar %q: confidence half-width is %v", c.Title, b.Label, b.HalfWidth)
		}
	}
	return nil
}

// logX reports whether the chart's x axis is logarithmic.
func (c *LineChart) logX() bool {
	switch c.XScale {
	case ScaleLog:
		return true
	case ScaleLinear:
		return false
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, l := range c.Lines {
		for _, x := range l.X {
			if x <= 0 {
				return false
			}
			lo, hi = math.Min(lo, x), math.Max(hi, x)
		}
	}
	return hi/lo > math.Pow(10, LogDecades)
}

// sans returns the report's sans-serif font at size points.
func sans(size vg.Length) font.Font {
	return font.From(font.Font{Typeface: "Liberation", Variant: "Sans"}, size)
}

// newPlot makes a plot with the report's fonts, grid and labels.
func newPlot(title, xlabel, ylabel string) (*plot.Plot, *plotter.Grid) {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = font.From(font.Font{Typeface: "Liberation", Variant: "Sans", Weight: xfont.WeightBold}, titleSize)
	p.Title.Padding = vg.Points(8)
	for _, ax := range []*plot.Axis{&p.X, &p.Y} {
		ax.Label.TextStyle.Font = sans(labelSize)
		ax.Tick.Label.Font = sans(tickSize)
		ax.Padding = vg.Points(4)
	}
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	p.X.Tick.Marker = niceTicks{n: 6}
	p.Y.Tick.Marker = niceTicks{n: 5}
	grid := plotter.NewGrid()
	grid.Vertical.Color = color.Gray{0xE0}
	grid.Horizontal.Color = color.Gray{0xE0}
	grid.Vertical.Width = vg.Points(0.5)
	grid.Horizontal.Width = vg.Points(0.5)
	p.Add(grid)
	return p, grid
}

func newLegend() *plot.Legend {
	l := plot.NewLegend()
	l.TextStyle.Font = sans(legendSize)
	l.Top, l.Left = true, true
	l.ThumbnailWidth = vg.Points(24)
	l.Padding = vg.Points(3)
	return &l
}

// valueTicks labels the given values (the distinct x of the data) when they
// are few, falling back to fallback otherwise.
type valueTicks struct {
	values   []float64
	fallback plot.Ticker
}

func (t valueTicks) Ticks(lo, hi float64) []plot.Tick {
	if len(t.values) > 10 || len(t.values) < 2 {
		return t.fallback.Ticks(lo, hi)
	}
	ticks := make([]plot.Tick, len(t.values))
	for i, v := range t.values {
		ticks[i] = plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', 6, 64)}
	}
	return ticks
}

// niceTicks labels about n round values (1, 2 or 5 times a power of ten
// apart; Heckbert, "Nice numbers for graph labels", Graphics Gems 1990),
// with an unlabelled minor tick halfway between.
type niceTicks struct{ n int }

func niceStep(x float64) float64 {
	exp := math.Floor(math.Log10(x))
	f := x / math.Pow(10, exp)
	switch {
	case f < 1.5:
		f = 1
	case f < 3:
		f = 2
	case f < 7:
		f = 5
	default:
		f = 10
	}
	return f * math.Pow(10, exp)
}

func (t niceTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) || !finite(lo) || !finite(hi) {
		return plot.DefaultTicks{}.Ticks(lo, hi)
	}
	step := niceStep((hi - lo) / float64(t.n))
	decimals := max(0, -int(math.Floor(math.Log10(step)+1e-9)))
	first := math.Floor(lo / step)
	var ticks []plot.Tick
	for i := 0; ; i++ {
		v := (first + float64(i)/2) * step
		if v > hi+1e-9*step {
			break
		}
		if v < lo-1e-9*step {
			continue
		}
		tk := plot.Tick{Value: v}
		if i%2 == 0 {
			tk.Label = strconv.FormatFloat(v, 'f', decimals, 64)
		}
		ticks = append(ticks, tk)
	}
	return ticks
}

// distinctX returns the sorted distinct x values of the chart.
func (c *LineChart) distinctX() []float64 {
	seen := map[float64]bool{}
	var xs []float64
	for _, l := range c.Lines {
		for _, x := range l.X {
			if !seen[x] {
				seen[x] = true
				xs = append(xs, x)
			}
		}
	}
	sort.Float64s(xs)
	return xs
}

func (c *LineChart) build() (*plot.Plot, *plot.Legend, error) {
	p, _ := newPlot(c.Title, c.XLabel, c.YLabel)
	if c.logX() {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = valueTicks{values: c.distinctX(), fallback: plot.LogTicks{Prec: -1}}
	} else if xs := c.distinctX(); len(xs) <= 10 && allIntegers(xs) {
		p.X.Tick.Marker = valueTicks{values: xs, fallback: niceTicks{n: 6}}
	}
	if c.YScale == ScaleLog {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	// Bands first, so that every line is drawn over them.
	if err := c.addBands(p); err != nil {
		return nil, nil, err
	}
	if err := c.addLines(p); err != nil {
		return nil, nil, err
	}
	c.setYRange(p)
	return p, c.legend(), nil
}

// band returns l's band clipped to the chart's YBounds; nil when l has
// none (or it has no width).
func (c *LineChart) band(l Line) (lo, hi []float64) {
	if l.Lo == nil || l.Reference || !hasWidth(l.Lo, l.Hi) {
		return nil, nil
	}
	lo, hi = append([]float64{}, l.Lo...), append([]float64{}, l.Hi...)
	if c.YBounds != nil {
		for i := range lo {
			lo[i], hi[i] = c.YBounds.Clip(lo[i]), c.YBounds.Clip(hi[i])
		}
	}
	return lo, hi
}

func (c *LineChart) addBands(p *plot.Plot) error {
	for _, l := range c.Lines {
		lo, hi := c.band(l)
		if lo == nil {
			continue
		}
		ring := make(plotter.XYs, 0, 2*len(l.X))
		for i := range l.X {
			ring = append(ring, plotter.XY{X: l.X[i], Y: lo[i]})
		}
		for i := len(l.X) - 1; i >= 0; i-- {
			ring = append(ring, plotter.XY{X: l.X[i], Y: hi[i]})
		}
		poly, err := plotter.NewPolygon(ring)
		if err != nil {
			return fmt.Errorf("chart %q: band of %s: %w", c.Title, l.Group, err)
		}
		col := Color(l.Color)
		poly.Color = color.NRGBA{col.R, col.G, col.B, 0x40}
		poly.LineStyle.Width = 0
		p.Add(poly)
	}
	return nil
}

// lineStyle is how l is drawn.
func (l Line) lineStyle() draw.LineStyle {
	if l.Reference {
		return draw.LineStyle{Color: referenceColor(), Width: vg.Points(1), Dashes: referenceDashes()}
	}
	st := draw.LineStyle{Color: Color(l.Color), Width: vg.Points(1.5), Dashes: dashes(l.Style)}
	if l.Faint {
		col := Color(l.Color)
		st.Color = color.NRGBA{col.R, col.G, col.B, 0xA0}
	}
	if l.Width > 0 {
		st.Width = l.Width
	}
	return st
}

// glyphStyle is the marker of l's points.
func (l Line) glyphStyle() draw.GlyphStyle {
	return draw.GlyphStyle{Color: Color(l.Color), Radius: vg.Points(3), Shape: Glyph(l.Style)}
}

func (c *LineChart) addLines(p *plot.Plot) error {
	// Reference lines under the models' lines.
	ordered := make([]Line, 0, len(c.Lines))
	for _, ref := range []bool{true, false} {
		for _, l := range c.Lines {
			if l.Reference == ref {
				ordered = append(ordered, l)
			}
		}
	}
	for _, l := range ordered {
		xy := make(plotter.XYs, len(l.X))
		for i := range l.X {
			xy[i] = plotter.XY{X: l.X[i], Y: l.Y[i]}
		}
		ln, err := plotter.NewLine(xy)
		if err != nil {
			return fmt.Errorf("chart %q: line %s: %w", c.Title, l.Group, err)
		}
		ln.LineStyle = l.lineStyle()
		p.Add(ln)
		// A single point has no visible line: it always gets a marker.
		if !l.Reference && (len(l.X) == 1 || (c.Markers && len(l.X) <= MaxMarkers)) {
			sc, err := plotter.NewScatter(xy)
			if err != nil {
				return fmt.Errorf("chart %q: line %s: %w", c.Title, l.Group, err)
			}
			sc.GlyphStyle = l.glyphStyle()
			if !c.Markers {
				sc.GlyphStyle.Shape = draw.CircleGlyph{}
			}
			p.Add(sc)
		}
	}
	return nil
}

// setYRange leaves 4% of the span (on a log axis, of its decades) free
// above and below the data, so that lines at the extremes are not drawn on
// the frame, without passing YBounds.
func (c *LineChart) setYRange(p *plot.Plot) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, l := range c.Lines {
		blo, bhi := c.band(l)
		for _, ys := range [][]float64{l.Y, blo, bhi} {
			for _, y := range ys {
				lo, hi = math.Min(lo, y), math.Max(hi, y)
			}
		}
	}
	switch span := hi - lo; {
	case c.YScale == ScaleLog && span > 0: // 4% of the span in decades
		f := math.Pow(hi/lo, 0.04)
		p.Y.Min, p.Y.Max = lo/f, hi*f
	case span > 0:
		p.Y.Min, p.Y.Max = lo-0.04*span, hi+0.04*span
	default:
		return
	}
	if b := c.YBounds; b != nil && c.YScale != ScaleLog {
		p.Y.Min, p.Y.Max = math.Max(p.Y.Min, b.Min), math.Min(p.Y.Max, b.Max)
	}
}

// legend names each model's colour, then each variant's line style (with
// its marker when the chart has markers), then the reference lines.
func (c *LineChart) legend() *plot.Legend {
	leg := newLegend()
	var groups, variants, refs []string
	groupColor := map[string]int{}
	variantStyle := map[string]int{}
	for _, l := range c.Lines {
		if l.Reference {
			if !slices.Contains(refs, l.Group) {
				refs = append(refs, l.Group)
			}
			continue
		}
		if _, ok := groupColor[l.Group]; !ok {
			groupColor[l.Group] = l.Color
			groups = append(groups, l.Group)
		}
		if _, ok := variantStyle[l.Variant]; !ok && l.Variant != "" {
			variantStyle[l.Variant] = l.Style
			variants = append(variants, l.Variant)
		}
	}
	for _, g := range groups {
		thumbs := []plot.Thumbnailer{legendLine(Color(groupColor[g]), 0)}
		if c.Markers && len(variants) == 0 { // one style: the marker is the group's
			thumbs = append(thumbs, legendGlyph(Color(groupColor[g]), 0))
		}
		leg.Add(g, thumbs...)
	}
	for _, v := range variants {
		thumbs := []plot.Thumbnailer{legendLine(neutral(), variantStyle[v])}
		if c.Markers {
			thumbs = append(thumbs, legendGlyph(neutral(), variantStyle[v]))
		}
		leg.Add(v, thumbs...)
	}
	for _, r := range refs {
		l := &plotter.Line{}
		l.LineStyle = Line{Reference: true}.lineStyle()
		leg.Add(r, l)
	}
	return leg
}

// legendGlyph is a legend thumbnail of line style i's marker.
func legendGlyph(c color.Color, style int) plot.Thumbnailer {
	return &plotter.Scatter{GlyphStyle: draw.GlyphStyle{Color: c, Radius: vg.Points(3), Shape: Glyph(style)}}
}

func allIntegers(xs []float64) bool {
	for _, x := range xs {
		if x != math.Trunc(x) {
			return false
		}
	}
	return true
}

func hasWidth(lo, hi []float64) bool {
	for i := range lo {
		if hi[i] > lo[i] {
			return true
		}
	}
	return false
}

func legendLine(c color.Color, style int) plot.Thumbnailer {
	l := &plotter.Line{}
	l.LineStyle = draw.LineStyle{Color: c, Width: vg.Points(1.5), Dashes: dashes(style)}
	return l
}

// errorBars draws asymmetric-capable vertical error bars.
type errorBars struct {
	plotter.XYs
	plotter.YErrors
}

// valueDecimals is the number of decimals that shows v with 4 significant
// digits (at least 0, at most 10).
func valueDecimals(v float64) int {
	if v == 0 || !finite(v) {
		return 3
	}
	return min(10, max(0, 3-int(math.Floor(math.Log10(math.Abs(v))))))
}

func (c *BarChart) build() (*plot.Plot, *plot.Legend, error) {
	p, grid := newPlot(c.Title, "", c.YLabel)
	grid.Vertical.Color = nil // categories need no vertical lines
	names := make([]string, len(c.Bars))
	lo, hi := 0.0, 0.0
	var eb errorBars
	var labels plotter.XYLabels
	for i, b := range c.Bars {
		names[i] = fmt.Sprintf("%s (n=%d)", b.Label, b.N)
		bc, err := plotter.NewBarChart(plotter.Values{b.Value}, vg.Points(36))
		if err != nil {
			return nil, nil, fmt.Errorf("chart %q: bar %s: %w", c.Title, b.Label, err)
		}
		bc.XMin = float64(i)
		bc.Color = Color(b.Color)
		bc.LineStyle.Width = 0
		p.Add(bc)
		top, bottom := b.Value, b.Value
		dec := valueDecimals(b.Value)
		label := strconv.FormatFloat(b.Value, 'f', dec, 64)
		if b.N >= 2 {
			eb.XYs = append(eb.XYs, plotter.XY{X: float64(i), Y: b.Value})
			eb.YErrors = append(eb.YErrors, struct{ Low, High float64 }{b.HalfWidth, b.HalfWidth})
			top, bottom = b.Value+b.HalfWidth, b.Value-b.HalfWidth
			label += " ± " + strconv.FormatFloat(b.HalfWidth, 'f', dec, 64)
		} else {
			label += " (single run)"
		}
		lo, hi = math.Min(lo, bottom), math.Max(hi, top)
		labels.XYs = append(labels.XYs, plotter.XY{X: float64(i), Y: math.Max(top, 0)})
		labels.Labels = append(labels.Labels, label)
	}
	if len(eb.XYs) > 0 {
		bars, err := plotter.NewYErrorBars(eb)
		if err != nil {
			return nil, nil, fmt.Errorf("chart %q: error bars: %w", c.Title, err)
		}
		bars.LineStyle.Width = vg.Points(1.2)
		bars.CapWidth = vg.Points(10)
		p.Add(bars)
	}
	lbl, err := plotter.NewLabels(labels)
	if err != nil {
		return nil, nil, fmt.Errorf("chart %q: labels: %w", c.Title, err)
	}
	for i := range lbl.TextStyle {
		lbl.TextStyle[i].Font = sans(annotSize)
		lbl.TextStyle[i].XAlign = draw.XCenter
		lbl.TextStyle[i].YAlign = draw.YBottom
	}
	lbl.Offset = vg.Point{Y: vg.Points(4)}
	p.Add(lbl)
	p.NominalX(names...)
	p.X.Tick.Label.Font = sans(tickSize)
	// Bars start at zero; leave room above the tallest for its label.
	span := hi - lo
	if span == 0 {
		span = 1
	}
	p.Y.Min = lo
	p.Y.Max = hi + 0.12*span
	if lo < 0 {
		p.Y.Min = lo - 0.05*span
	}
	p.X.Min, p.X.Max = -0.6, float64(len(c.Bars))-0.4
	return p, nil, nil
}

// Formats Render writes.
const (
	FormatPNG = "png"
	FormatSVG = "svg"
)

// Render validates c and writes it to w as a PNG (at PNGDPI) or an SVG, of
// FigureWidth×FigureHeight, with the legend (if any) to the right of the
// data area so that it never covers data. Invalid data (no points, NaN or
// ±Inf, mismatched lengths) is an error naming the chart and line.
func Render(w io.Writer, c Chart, format string) (err error) {
	if err := c.Validate(); err != nil {
		return err
	}
	var cw vg.CanvasWriterTo
	switch format {
	case FormatPNG:
		cw = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(FigureWidth, FigureHeight), vgimg.UseDPI(PNGDPI))}
	case FormatSVG:
		cw = vgsvg.New(FigureWidth, FigureHeight)
	default:
		return fmt.Errorf("chart %q: unknown format %q (want %s or %s)", c.title(), format, FormatPNG, FormatSVG)
	}
	// gonum/plot panics on some degenerate inputs; Validate rules out the
	// known ones, and anything else is reported as an error, not a crash.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("chart %q: plot: %v", c.title(), r)
		}
	}()
	p, leg, err := c.build()
	if err != nil {
		return err
	}
	dc := draw.New(cw)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	margin := vg.Points(6)
	dc = draw.Crop(dc, margin, -margin, margin, -margin)
	if leg != nil {
		width := leg.Rectangle(dc).Size().X
		top := vg.Length(0)
		if p.Title.Text != "" {
			top = p.Title.TextStyle.Rectangle(p.Title.Text).Size().Y + p.Title.Padding
		}
		legC := draw.Crop(dc, dc.Size().X-width, 0, 0, -top)
		p.Draw(draw.Crop(dc, 0, -(width + vg.Points(10)), 0, 0))
		leg.Draw(legC)
	} else {
		p.Draw(dc)
	}
	if _, err := cw.WriteTo(w); err != nil {
		return fmt.Errorf("chart %q: write %s: %w", c.title(), format, err)
	}
	return nil
}
