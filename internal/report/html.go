package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strconv"
	"time"
)

//go:embed report.html.tmpl
var htmlSource string

// The page is one file with inline CSS and no script: it reads the same in a browser, an email
// client or a CI artifact viewer without network access. Failing cases are open; passing ones and
// all evidence are collapsed in <details>.
var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"offset": offset,
	"dur":    func(d time.Duration) string { return d.Round(time.Millisecond).String() },
	"rundur": func(r *Record) string { return r.Duration().Round(time.Millisecond).String() },
	"ts":     func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000 UTC") },
	"seed":   func(p *uint64) string { return strconv.FormatUint(*p, 10) },
	"value":  formatValue,
	"limits": limitsText,
	"failed": func(o Outcome) bool { return o.Failed() },
	"count":  func(r *Record) Counts { return r.Count() },
	"anchor": func(i int, s string) string { return fmt.Sprintf("r%d-%s", i, Slug(s)) },
	"caseid": func(i, j int) string { return fmt.Sprintf("r%d-c%d", i, j) },
}).Parse(htmlSource))

type htmlPage struct {
	Title   string
	Records []*Record
	Outcome Outcome
}

// WriteHTML writes the records as one self-contained HTML page: a summary of every run, then for
// each run its facts (seed, versions), its cases with measurements and evidence, its timeline and
// its extra sections.
func WriteHTML(w io.Writer, title string, recs ...*Record) error {
	p := htmlPage{Title: title, Records: recs}
	for _, r := range recs {
		p.Outcome = Worst(p.Outcome, r.Outcome)
	}
	if err := htmlTemplate.Execute(w, p); err != nil {
		return fmt.Errorf("write html report: %w", err)
	}
	return nil
}
