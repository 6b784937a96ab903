package reports

import (
	"fmt"
	"io"

	"arbench/harness"
	"arbench/reports/claims"
)

// ClaimsFileName is the Claims table as JSON, written beside the report
// (claims.WriteJSON): what the README quotes.
const ClaimsFileName = "claims.json"

// claimsCaption explains the Claims table.
const claimsCaption = "Each claim of the survey this experiment tests, judged from the results (package reports/claims): " +
	"a test is supported when its whole 95% interval lies on the claimed side of its threshold, contradicted when it lies on the other side, " +
	"and not resolved otherwise; a claim is supported when all its tests are and contradicted when any is. " +
	"With several seeds the interval is Student t across seeds (of the per-seed differences when two models are compared); " +
	"with one seed it is the task's interval over rows (two models' combined as independent)."

// claimsSection is the Claims table of rf's experiment; ok is false when
// the experiment tests no claims. A configuration that cannot be read is
// reported in the table's place rather than stopping the report.
func claimsSection(rf *harness.ResultsFile) (st simpleTable, err error, ok bool) {
	js, err := claims.Judge(rf)
	if err != nil {
		return simpleTable{}, err, true
	}
	if len(js) == 0 {
		return simpleTable{}, nil, false
	}
	header, rows := claims.Table(js)
	return simpleTable{header: header, rows: rows, right: func(int) bool { return false }}, nil, true
}

// mdClaims writes the Claims section of report.md.
func mdClaims(w io.Writer, rf *harness.ResultsFile) {
	st, err, ok := claimsSection(rf)
	if !ok {
		return
	}
	fmt.Fprintf(w, "\n## Claims\n\n%s\n\n", claimsCaption)
	if err != nil {
		fmt.Fprintf(w, "**Claims not judged:** %s\n", mdCell(err.Error()))
		return
	}
	mdTable(w, st)
}

// writeClaimsJSON writes claims.json.
func writeClaimsJSON(w io.Writer, rf *harness.ResultsFile) error {
	js, err := claims.Judge(rf)
	if err != nil {
		return err
	}
	return claims.WriteJSON(w, claims.ProvenanceOf(rf.Manifest), js)
}
