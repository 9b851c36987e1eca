package formats

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"strconv"
	"strings"
	"time"

	"github.com/assayhq/assay/daemon/report"
)

// Format names, as `assay report -o NAME` and the API's ?format= take them.
const (
	// Table is the CLI's human-readable rendering; this package does not
	// write it.
	Table     = "table"
	JSON      = "json"
	SARIF     = "sarif"
	CycloneDX = "cyclonedx"
	SPDX      = "spdx"
)

// Format is one machine format assayd writes: the one table the API's
// ?format= and Accept negotiation, its Content-Type and 406 text, the
// CLI's -o values and help, and the OpenAPI document's enums come from
// (a test keeps the last equal).
type Format struct {
	// Name is what ?format= and -o take.
	Name string
	// Title says what it is, for help texts ("SARIF 2.1.0").
	Title string
	// MediaType selects it in an Accept header; Version, if set, is the
	// only value of a version parameter it answers (and is sent with).
	MediaType, Version string
	what               string // for errors: "SARIF log"
	encode             func(w io.Writer, r *report.Report, opts Options) error
}

// ContentType is what the format is sent with.
func (f Format) ContentType() string {
	if f.Version != "" {
		return f.MediaType + "; version=" + f.Version
	}
	return f.MediaType
}

// All are the machine formats, JSON (the default) first.
var All = []Format{
	{Name: JSON, Title: "the report as JSON", MediaType: "application/json", what: "report as JSON", encode: func(w io.Writer, r *report.Report, _ Options) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}},
	{Name: SARIF, Title: "SARIF 2.1.0", MediaType: "application/sarif+json", what: "SARIF log", encode: encodeSARIF},
	{Name: CycloneDX, Title: "CycloneDX 1.6 JSON, with the vulnerabilities", MediaType: "application/vnd.cyclonedx+json", Version: "1.6", what: "CycloneDX BOM", encode: encodeCycloneDX},
	{Name: SPDX, Title: "SPDX 2.3 JSON, which has no place for vulnerabilities", MediaType: "application/spdx+json", what: "SPDX document", encode: encodeSPDX},
}

const mediaText = "text/plain; charset=utf-8"

// Lookup finds a machine format by name (case and blanks ignored).
func Lookup(name string) (Format, bool) {
	name = normalize(name)
	for _, f := range All {
		if f.Name == name {
			return f, true
		}
	}
	return Format{}, false
}

// Names lists the machine formats that Write produces, JSON first (the
// default).
func Names() []string {
	out := make([]string, len(All))
	for i, f := range All {
		out[i] = f.Name
	}
	return out
}

// ContentType is the media type to send a format with, or "" for a name
// this package does not know.
func ContentType(format string) string {
	if f, ok := Lookup(format); ok {
		return f.ContentType()
	}
	if normalize(format) == Table {
		return mediaText
	}
	return ""
}

// FromAccept picks the format to answer an HTTP request with from its
// Accept header: the acceptable media type with the highest q-value among
// those of All (one with a Version only without a version parameter or
// with that version); */* and application/* mean JSON. On equal q-values
// an exact media type beats a wildcard, then the earlier one wins. An
// empty header accepts anything: JSON. It reports false when nothing in
// the header is acceptable (the caller answers 406).
func FromAccept(accept string) (string, bool) {
	if strings.TrimSpace(accept) == "" {
		return JSON, true
	}
	best, bestQ, bestExact := "", 0.0, false
	for _, part := range strings.Split(accept, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		mt, params, err := mime.ParseMediaType(part)
		if err != nil {
			continue // a malformed entry accepts nothing
		}
		q := 1.0
		if s, ok := params["q"]; ok {
			if q, err = strconv.ParseFloat(s, 64); err != nil || q < 0 || q > 1 {
				continue
			}
		}
		format, exact := formatOfMediaType(mt, params)
		if format == "" || q == 0 {
			continue
		}
		if q > bestQ || (q == bestQ && exact && !bestExact) {
			best, bestQ, bestExact = format, q, exact
		}
	}
	return best, best != ""
}

// AcceptText lists the media types FromAccept takes, for a 406 answer.
func AcceptText() string {
	var out []string
	for _, f := range All {
		out = append(out, f.ContentType())
	}
	return strings.Join(out, ", ")
}

// formatOfMediaType maps one Accept media range to a format; exact is false
// for wildcards.
func formatOfMediaType(mt string, params map[string]string) (format string, exact bool) {
	for _, f := range All {
		if mt != f.MediaType {
			continue
		}
		if v, ok := params["version"]; ok && f.Version != "" && v != f.Version {
			return "", false // a version this package does not write
		}
		return f.Name, true
	}
	if mt == "*/*" || mt == "application/*" {
		return JSON, false
	}
	return "", false
}

// Options are what a document needs beyond the report.
type Options struct {
	// Tool is the producing tool's name (SARIF driver, CycloneDX tool,
	// SPDX creator); "assay" when empty.
	Tool string
	// ToolVersion is its version; left out when empty.
	ToolVersion string
	// Now gives the creation time of SBOM documents; time.Now when nil.
	Now func() time.Time
}

func (o Options) tool() string {
	if o.Tool == "" {
		return "assay"
	}
	return o.Tool
}

func (o Options) now() time.Time {
	if o.Now == nil {
		return time.Now().UTC()
	}
	return o.Now().UTC()
}

// Write writes r to w in format (one of Names). JSON is the report itself,
// indented. The document is encoded in memory before anything is written,
// so an error from building it leaves w untouched.
func Write(w io.Writer, format string, r *report.Report, opts Options) error {
	if r == nil {
		return errors.New("formats: there is no report to write")
	}
	if normalize(format) == Table {
		return errors.New(`formats: "table" is rendered by the assay CLI, not written by the daemon; ask for one of ` + strings.Join(Names(), ", "))
	}
	f, ok := Lookup(format)
	if !ok {
		return fmt.Errorf("formats: unknown output format %q (want one of %s)", format, strings.Join(Names(), ", "))
	}
	var buf bytes.Buffer
	err := f.encode(&buf, r, opts)
	what := f.what
	if err != nil {
		return fmt.Errorf("formats: encoding the %s failed: %w", what, err)
	}
	if _, err := buf.WriteTo(w); err != nil {
		return fmt.Errorf("formats: writing the %s failed: %w", what, err)
	}
	return nil
}

func normalize(format string) string { return strings.ToLower(strings.TrimSpace(format)) }
