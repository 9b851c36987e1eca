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

// Media types of the machine formats. CycloneDX registered a version
// parameter; this package writes 1.6 only.
const (
	mediaJSON      = "application/json"
	mediaSARIF     = "application/sarif+json"
	mediaCycloneDX = "application/vnd.cyclonedx+json"
	mediaSPDX      = "application/spdx+json"
	mediaText      = "text/plain; charset=utf-8"

	cycloneDXVersion = "1.6"
)

// Names lists the machine formats that Write produces, JSON first (the
// default).
func Names() []string { return []string{JSON, SARIF, CycloneDX, SPDX} }

// ContentType is the media type to send a format with, or "" for a name
// this package does not know.
func ContentType(format string) string {
	switch normalize(format) {
	case JSON:
		return mediaJSON
	case SARIF:
		return mediaSARIF
	case CycloneDX:
		return mediaCycloneDX + "; version=" + cycloneDXVersion
	case SPDX:
		return mediaSPDX
	case Table:
		return mediaText
	}
	return ""
}

// FromAccept picks the format to answer an HTTP request with from its
// Accept header: the acceptable media type with the highest q-value among
// application/json, application/sarif+json,
// application/vnd.cyclonedx+json (without a version parameter or with
// version=1.6) and application/spdx+json; */* and application/* mean JSON.
// On equal q-values an exact media type beats a wildcard, then the earlier
// one wins. An empty header accepts anything: JSON. It reports false when
// nothing in the header is acceptable (the caller answers 406).
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

// formatOfMediaType maps one Accept media range to a format; exact is false
// for wildcards.
func formatOfMediaType(mt string, params map[string]string) (format string, exact bool) {
	switch mt {
	case mediaJSON:
		return JSON, true
	case mediaSARIF:
		return SARIF, true
	case mediaCycloneDX:
		if v, ok := params["version"]; ok && v != cycloneDXVersion {
			return "", false // a version this package does not write
		}
		return CycloneDX, true
	case mediaSPDX:
		return SPDX, true
	case "*/*", "application/*":
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
	var (
		buf  bytes.Buffer
		err  error
		what string
	)
	switch normalize(format) {
	case JSON:
		what = "report as JSON"
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		err = enc.Encode(r)
	case SARIF:
		what = "SARIF log"
		err = encodeSARIF(&buf, r, opts)
	case CycloneDX:
		what = "CycloneDX BOM"
		err = encodeCycloneDX(&buf, r, opts)
	case SPDX:
		what = "SPDX document"
		err = encodeSPDX(&buf, r, opts)
	case Table:
		return errors.New(`formats: "table" is rendered by the assay CLI, not written by the daemon; ask for one of ` + strings.Join(Names(), ", "))
	default:
		return fmt.Errorf("formats: unknown output format %q (want one of %s)", format, strings.Join(Names(), ", "))
	}
	if err != nil {
		return fmt.Errorf("formats: encoding the %s failed: %w", what, err)
	}
	if _, err := buf.WriteTo(w); err != nil {
		return fmt.Errorf("formats: writing the %s failed: %w", what, err)
	}
	return nil
}

func normalize(format string) string { return strings.ToLower(strings.TrimSpace(format)) }
