package reports

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"

	"arbench/harness"
)

type htmlCell struct {
	Lines []string
	Num   bool
	// Best marks the best value of its column (bold).
	Best bool
}

type htmlRow struct {
	// Ref marks a reference row (not a model).
	Ref   bool
	Cells []htmlCell
}

type htmlTable struct {
	Class string
	// Head says the header row is shown.
	Head   bool
	Header []htmlCell
	Rows   []htmlRow
}

func toHTMLTable(t simpleTable) *htmlTable {
	ht := &htmlTable{}
	for i, h := range t.header {
		ht.Head = ht.Head || h != ""
		ht.Header = append(ht.Header, htmlCell{Lines: strings.Split(h, "\n"), Num: t.right(i)})
	}
	for i, r := range t.rows {
		row := htmlRow{Ref: t.reference[i]}
		for j, c := range r {
			row.Cells = append(row.Cells, htmlCell{Lines: strings.Split(c, "\n"), Num: t.right(j), Best: t.best[[2]int{i, j}]})
		}
		ht.Rows = append(ht.Rows, row)
	}
	return ht
}

type htmlFigure struct {
	ID, Title, Caption, Err, SVG string
	PNG                          template.URL
	// Width and Height are the displayed size; Pixelated keeps a raster's
	// pixels sharp.
	Width, Height int
	Pixelated     bool
}

type htmlSection struct {
	ID, Title, Caption string
	Table              *htmlTable
	Notes              []string
	// Speed is the speed table (nil when none).
	Speed   *htmlTable
	Extra   []htmlExtra
	Figures []htmlFigure
}

// htmlExtra is a titled table after a section's results table.
type htmlExtra struct {
	Title, Caption string
	Table          *htmlTable
}

type htmlPage struct {
	Title      string
	Incomplete string
	Manifest   *htmlTable
	Config     string
	Claims     *htmlClaims
	Sections   []htmlSection
	Loss       *htmlTable
	Datasets   *htmlTable
	Runs       *htmlTable
	// Sweeps is the learning-rate sweeps table (nil without sweeps).
	Sweeps                    *htmlTable
	SweepCaption, RunsCaption string
	PlotsDir                  string
	// SpeedCaption explains every speed table.
	SpeedCaption string
}

const pageTemplate = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="arbench">
<title>{{.Title}}</title>
<style>
body { font-family: "Liberation Sans", "DejaVu Sans", Arial, Helvetica, sans-serif; color: #1a1a1a; background: #fff;
       max-width: 1180px; margin: 2em auto; padding: 0 1.5em; line-height: 1.45; }
h1 { font-size: 1.8em; margin-bottom: 0.3em; }
h2 { font-size: 1.35em; margin-top: 2em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; }
.table-wrap { overflow-x: auto; max-width: 100%; margin: 0.8em 0; }
table { border-collapse: collapse; font-size: 0.92em; }
th, td { border: 1px solid #c8c8c8; padding: 0.3em 0.6em; vertical-align: top; }
th { background: #f0f3f7; font-weight: 600; text-align: center; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody tr:nth-child(even) { background: #fafafa; }
tr.ref td { font-style: italic; color: #555; background: #f4f4f4; }
tr:not(.ref) + tr.ref td { border-top: 2px solid #999; }
td strong { font-weight: 700; }
table.manifest td:first-child { font-weight: 600; background: #f6f6f6; }
code, pre { font-family: "Liberation Mono", "DejaVu Sans Mono", monospace; font-size: 0.9em; }
pre { background: #f6f8fa; padding: 0.8em; overflow-x: auto; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e4e4e4; }
figure img.pixelated { image-rendering: pixelated; border: none; }
figcaption { font-size: 0.92em; color: #333; max-width: 960px; }
.warn { background: #fff4e5; border-left: 4px solid #e69f00; padding: 0.6em 1em; }
.error { background: #fdecea; border-left: 4px solid #d55e00; padding: 0.6em 1em; }
nav ul { columns: 2; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
{{with .Incomplete}}<p class="warn"><strong>Incomplete:</strong> {{.}}</p>{{end}}
{{template "table" .Manifest}}
{{with .Config}}<details><summary>Resolved configuration (manifest.config)</summary><pre>{{.}}</pre></details>{{end}}
{{with .Claims}}<section id="claims"><h2>Claims</h2><p>{{.Caption}}</p>{{with .Err}}<p class="error">Claims not judged: {{.}}</p>{{end}}{{with .Table}}{{template "table" .}}{{end}}</section>{{end}}
<nav><ul>
{{range .Sections}}<li><a href="#{{.ID}}">{{.Title}}</a></li>
{{end}}{{if .Loss}}<li><a href="#loss-curves">Loss curves</a></li>{{end}}
{{if .Datasets}}<li><a href="#datasets">Datasets</a></li>{{end}}
<li><a href="#runs">Runs</a></li>
</ul></nav>
{{range .Sections}}
<section id="{{.ID}}">
<h2>{{.Title}}</h2>
{{with .Caption}}<p>{{.}}</p>{{end}}
{{with .Table}}{{template "table" .}}{{end}}
{{with .Notes}}<ul class="notes">{{range .}}<li>Note: {{.}}</li>{{end}}</ul>{{end}}
{{with .Speed}}<h3>Speed</h3>
<p>{{$.SpeedCaption}}</p>
{{template "table" .}}{{end}}
{{range .Extra}}<h3>{{.Title}}</h3>
<p>{{.Caption}}</p>
{{template "table" .Table}}
{{end}}{{range .Figures}}
<figure id="{{.ID}}">
{{if .Err}}<p class="error"><strong>{{.Title}}: not drawn:</strong> {{.Err}}</p>
{{else}}<img src="{{.PNG}}" alt="{{.Title}}" width="{{.Width}}" height="{{.Height}}"{{if .Pixelated}} class="pixelated"{{end}}>
<figcaption><strong>{{.Title}}.</strong> {{.Caption}} {{with .SVG}}(Vector version: <code>{{.}}</code>){{end}}</figcaption>
{{end}}</figure>
{{end}}
</section>
{{end}}
{{with .Loss}}<section id="loss-curves"><h2>Loss curves</h2>
<p>Final training loss (mean over the last logging window) and validation loss, in nats/token.</p>
{{template "table" .}}</section>{{end}}
{{with .Datasets}}<section id="datasets"><h2>Datasets</h2>{{template "table" .}}</section>{{end}}
{{with .Sweeps}}<section id="lr-sweeps"><h2>Learning-rate sweeps</h2><p>{{$.SweepCaption}}</p>{{template "table" .}}</section>{{end}}
<section id="runs"><h2>Runs</h2><p>{{.RunsCaption}}</p>{{template "table" .Runs}}</section>
</body>
</html>
{{define "table"}}<div class="table-wrap"><table{{with .Class}} class="{{.}}"{{end}}>
{{if .Head}}<thead><tr>{{range .Header}}<th>{{range $i, $l := .Lines}}{{if $i}}<br>{{end}}{{$l}}{{end}}</th>{{end}}</tr></thead>{{end}}
<tbody>
{{range .Rows}}<tr{{if .Ref}} class="ref"{{end}}>{{range .Cells}}<td{{if .Num}} class="num"{{end}}>{{if .Best}}<strong>{{end}}{{range $i, $l := .Lines}}{{if $i}}<br>{{end}}{{$l}}{{end}}{{if .Best}}</strong>{{end}}</td>{{end}}</tr>
{{end}}</tbody>
</table></div>{{end}}
`

// htmlClaims is the Claims section of report.html.
type htmlClaims struct {
	Caption, Err string
	Table        *htmlTable
}

// HTML writes the report as one self-contained HTML page: the manifest, its
// resolved configuration, every table and every figure (PNG embedded as a
// data URI; figures must have been rendered, see Figure.Render). plotsDir
// names where the SVG versions were written, for the captions ("" omits
// the mention).
func HTML(w io.Writer, rf *harness.ResultsFile, figs []Figure, plotsDir string) error {
	tmpl, err := template.New("page").Parse(pageTemplate)
	if err != nil {
		return fmt.Errorf("html report: %w", err)
	}
	m := rf.Manifest
	page := htmlPage{Title: "arbench report: " + orDash(m.Name), Manifest: toHTMLTable(manifestTable(m)), Runs: toHTMLTable(runTable(rf)),
		SpeedCaption: speedCaption, SweepCaption: sweepCaption, RunsCaption: runsCaption}
	if st, ok := sweepTable(rf); ok {
		page.Sweeps = toHTMLTable(st)
	}
	page.Manifest.Class = "manifest"
	if !m.Complete {
		page.Incomplete = fmt.Sprintf("%d run(s) finished; the experiment was interrupted, is still running, or some of its runs failed (arbench run lists them; -resume runs them again).", len(rf.Runs))
	}
	if st, err, ok := claimsSection(rf); ok {
		page.Claims = &htmlClaims{Caption: claimsCaption}
		if err != nil {
			page.Claims.Err = err.Error()
		} else {
			page.Claims.Table = toHTMLTable(st)
		}
	}
	if len(m.Config) > 0 {
		var buf bytes.Buffer
		if json.Indent(&buf, m.Config, "", "  ") == nil {
			page.Config = buf.String()
		}
	}
	figures := func(task string) []htmlFigure {
		var out []htmlFigure
		for _, f := range figs {
			if f.Task != task {
				continue
			}
			hf := htmlFigure{ID: "fig-" + f.Name, Title: f.Title, Caption: f.Caption, Width: 960, Height: 600}
			if f.Raster != nil {
				b := f.Raster.Bounds()
				hf.Width, hf.Height, hf.Pixelated = b.Dx(), b.Dy(), true
			}
			switch {
			case f.Err != nil:
				hf.Err = f.Err.Error()
			case len(f.PNG) == 0:
				hf.Err = "not rendered"
			default:
				hf.PNG = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(f.PNG))
				if plotsDir != "" {
					hf.SVG = plotsDir + "/" + f.Name + ".svg"
				}
			}
			out = append(out, hf)
		}
		return out
	}
	seen := map[string]bool{}
	for _, t := range aggregate(rf) {
		seen[t.task] = true
		sec := htmlSection{
			ID: "task-" + slug(t.task), Title: t.task,
			Caption: fmt.Sprintf("Headline metric: %s. %s", t.headlineText(), t.caption(TableOptions{}, "bold")),
			Table:   toHTMLTable(t.qualityTable(TableOptions{})), Notes: t.notes(), Figures: figures(t.task),
		}
		if st, ok := t.speedTable(TableOptions{}); ok {
			sec.Speed = toHTMLTable(st)
		}
		for _, x := range extraTables(rf, t.task) {
			sec.Extra = append(sec.Extra, htmlExtra{x.title, x.caption, toHTMLTable(x.table)})
		}
		page.Sections = append(page.Sections, sec)
	}
	for _, task := range taskOrder(rf) {
		if !seen[task] && hasFigures(figs, task) {
			page.Sections = append(page.Sections, htmlSection{ID: "task-" + slug(task), Title: task, Figures: figures(task)})
		}
	}
	if lt, ok := lossTable(rf); ok {
		page.Loss = toHTMLTable(lt)
	}
	if dt, ok := datasetTable(m); ok {
		page.Datasets = toHTMLTable(dt)
	}
	ew := &errWriter{w: w}
	if err := tmpl.Execute(ew, page); err != nil {
		return fmt.Errorf("html report: %w", err)
	}
	return ew.err
}
