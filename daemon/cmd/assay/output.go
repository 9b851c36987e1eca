package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
)

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// writeRawJSON indents JSON without decoding it, so nothing assayd sent is
// lost or reordered.
func writeRawJSON(w io.Writer, raw json.RawMessage) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return fmt.Errorf("bad JSON from assayd: %w", err)
	}
	buf.WriteByte('\n')
	_, err := buf.WriteTo(w)
	return err
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

// cell makes a value safe for one tabwriter cell: no tabs or line breaks,
// at most max runes (0: no limit), "-" when empty.
func cell(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "-"
	}
	if r := []rune(s); max > 0 && len(r) > max {
		s = string(r[:max-3]) + "..."
	}
	return s
}

// summaryText lists the non-zero counts, most severe first.
func summaryText(s report.Summary) string {
	if s.Total() == 0 {
		return "no findings"
	}
	counts := map[report.Severity]int{
		report.Critical: s.Critical, report.High: s.High, report.Medium: s.Medium,
		report.Low: s.Low, report.Negligible: s.Negligible, report.Unknown: s.Unknown,
	}
	var parts []string
	for _, l := range report.Severities {
		if n := counts[l]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, l))
		}
	}
	return strings.Join(parts, ", ")
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// ago says how long before now t was, coarsely, as people read tables.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < time.Second:
		return "now"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
}

func sortedFindings(fs []report.Finding) []report.Finding {
	fs = append([]report.Finding(nil), fs...)
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if ra, rb := a.Severity.Rank(), b.Severity.Rank(); ra != rb {
			return ra > rb
		}
		if a.ID != b.ID {
			return a.ID < b.ID
		}
		if a.Package.Name != b.Package.Name {
			return a.Package.Name < b.Package.Name
		}
		return a.Package.Version < b.Package.Version
	})
	return fs
}

func sortedAnalyzers(as []report.Analyzer) []report.Analyzer {
	as = append([]report.Analyzer(nil), as...)
	sort.SliceStable(as, func(i, j int) bool { return as[i].Name < as[j].Name })
	return as
}

// writeReport prints a report for people: what was scanned and the
// verdict, the findings, how each analyzer ran, the package count.
func writeReport(w io.Writer, r *report.Report) error {
	tw := newTable(w)
	fmt.Fprintf(tw, "Image:\t%s\n", cell(r.Image, 0))
	fmt.Fprintf(tw, "Digest:\t%s\n", cell(r.Digest, 0))
	fmt.Fprintf(tw, "Platform:\t%s\n", cell(r.Platform, 0))
	fmt.Fprintf(tw, "Scanned at:\t%s\n", timeText(r.ScannedAt))
	fmt.Fprintf(tw, "Scan:\t%s\n", cell(r.ScanID, 0))
	fmt.Fprintf(tw, "Verdict:\t%s\n", cell(string(r.Verdict), 0))
	fmt.Fprintf(tw, "Findings:\t%d (%s)\n", r.Summary.Total(), summaryText(r.Summary))
	if r.VulnDB != nil {
		fmt.Fprintf(tw, "Matched:\t%s against %d advisories (database of %s)\n", timeText(r.MatchedAt), r.VulnDB.Records, timeText(r.VulnDB.UpdatedAt))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	if len(r.Warnings) > 0 {
		fmt.Fprintln(w, "\nWarnings:")
		ws := report.WarningStrings(r.Warnings)
		sort.Strings(ws)
		for _, s := range ws {
			fmt.Fprintf(w, "  %s\n", cell(s, 0))
		}
	}

	var remaining, suppressed []report.Finding
	for _, f := range sortedFindings(r.Findings) {
		if f.Suppressed != nil {
			suppressed = append(suppressed, f)
		} else {
			remaining = append(remaining, f)
		}
	}
	fmt.Fprintln(w)
	if len(remaining) == 0 {
		fmt.Fprintln(w, "No findings.")
	} else {
		tw = newTable(w)
		fmt.Fprintln(tw, "SEVERITY\tID\tPACKAGE\tVERSION\tFIXED\tSUMMARY")
		for _, f := range remaining {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cell(string(f.Severity), 0), cell(f.ID, 0),
				cell(f.Package.Name, 0), cell(f.Package.Version, 0), cell(f.FixedVersion, 0), cell(f.Summary, 60))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(suppressed) > 0 {
		fmt.Fprintf(w, "\nSuppressed by policy: %d\n", len(suppressed))
		tw = newTable(w)
		fmt.Fprintln(tw, "SEVERITY\tID\tPACKAGE\tVERSION\tBY\tWHY")
		for _, f := range suppressed {
			why := f.Suppressed.Reason
			if f.Suppressed.Justification != "" {
				why = f.Suppressed.Justification + ": " + why
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cell(string(f.Severity), 0), cell(f.ID, 0),
				cell(f.Package.Name, 0), cell(f.Package.Version, 0), cell(f.Suppressed.Kind, 0), cell(why, 60))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.Recommendations) > 0 {
		fmt.Fprintln(w, "\nRecommendations:")
		tw = newTable(w)
		fmt.Fprintln(tw, "PACKAGE\tINSTALLED\tUPGRADE TO\tFIXES")
		for _, rec := range r.Recommendations {
			to := rec.FixedVersion
			if to == "" {
				to = "no fix for " + strings.Join(rec.Unfixed, ",")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", cell(rec.Package.Name, 0), cell(rec.Package.Version, 0),
				cell(to, 60), cell(strings.Join(rec.Findings, ","), 60))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	fmt.Fprintln(w)
	if len(r.Analyzers) == 0 {
		fmt.Fprintln(w, "No analyzer ran.")
	} else {
		tw = newTable(w)
		fmt.Fprintln(tw, "NAME\tVERSION\tSTATUS\tERROR")
		for _, an := range sortedAnalyzers(r.Analyzers) {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", cell(an.Name, 0), cell(an.Version, 0), cell(string(an.Status), 0), cell(an.Error, 80))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	_, err := fmt.Fprintf(w, "\nPackages: %d\n", len(r.Packages))
	return err
}

// writeScan prints one scan as a list of fields.
func writeScan(w io.Writer, s scans.Scan) error {
	tw := newTable(w)
	fmt.Fprintf(tw, "ID:\t%s\n", cell(s.ID, 0))
	fmt.Fprintf(tw, "Image:\t%s\n", cell(s.Image, 0))
	fmt.Fprintf(tw, "Platform:\t%s\n", cell(s.Platform, 0))
	fmt.Fprintf(tw, "Digest:\t%s\n", cell(s.Digest, 0))
	fmt.Fprintf(tw, "Status:\t%s\n", cell(string(s.Status), 0))
	fmt.Fprintf(tw, "Trigger:\t%s\n", cell(s.Trigger, 0))
	fmt.Fprintf(tw, "Attempts:\t%d\n", s.Attempts)
	fmt.Fprintf(tw, "Created:\t%s\n", timeText(s.CreatedAt))
	fmt.Fprintf(tw, "Updated:\t%s\n", timeText(s.UpdatedAt))
	fmt.Fprintf(tw, "Started:\t%s\n", timePtrText(s.StartedAt))
	fmt.Fprintf(tw, "Finished:\t%s\n", timePtrText(s.FinishedAt))
	fmt.Fprintf(tw, "Verdict:\t%s\n", cell(string(s.Verdict), 0))
	if s.Summary != nil {
		fmt.Fprintf(tw, "Findings:\t%d (%s)\n", s.Summary.Total(), summaryText(*s.Summary))
	}
	if s.Error != "" {
		fmt.Fprintf(tw, "Error:\t%s\n", cell(s.Error, 0))
	}
	return tw.Flush()
}

func timePtrText(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return timeText(*t)
}

// writeScanList prints scans as a table, in the order given.
func writeScanList(w io.Writer, list []scans.Scan, now time.Time) error {
	if len(list) == 0 {
		_, err := fmt.Fprintln(w, "No scans.")
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "ID\tIMAGE\tSTATUS\tVERDICT\tAGE\tUPDATED\tERROR")
	for _, s := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cell(s.ID, 0), cell(s.Image, 0), cell(string(s.Status), 0),
			cell(string(s.Verdict), 0), ago(now, s.CreatedAt), ago(now, s.UpdatedAt), cell(s.Error, 60))
	}
	return tw.Flush()
}

// eventLine is one event for people: time, type, image, then what
// happened.
func eventLine(ev scans.Event) string {
	at := timeText(ev.Time)
	switch {
	case ev.Type == "scan" && ev.Scan != nil:
		s := ev.Scan
		what := string(s.Status)
		if s.Verdict != "" {
			what += " " + string(s.Verdict)
		}
		if s.Summary != nil {
			what += " (" + summaryText(*s.Summary) + ")"
		}
		if s.Error != "" {
			what += ": " + cell(s.Error, 0)
		}
		return fmt.Sprintf("%s  scan    %s  %s  [scan %s]", at, cell(s.Image, 0), what, s.ID)
	case ev.Type == "report" && ev.Report != nil:
		r := ev.Report
		return fmt.Sprintf("%s  report  %s  %s (%s)  [%s]", at, cell(r.Image, 0), r.Verdict, summaryText(r.Summary), r.Digest)
	}
	return fmt.Sprintf("%s  %s", at, cell(ev.Type, 0))
}
