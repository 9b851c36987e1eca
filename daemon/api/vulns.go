package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/assayhq/assay/daemon/formats"
	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/store"
	"github.com/assayhq/assay/daemon/vulndb"
)

// VulnService is the vulnerability side of the API: the database and the
// cross-image queries. Without it those routes answer 503.
type VulnService interface {
	DBInfo(ctx context.Context) (vulndb.Info, error)
	// ImportDB applies an uploaded OSV zip archive, merged into source.
	ImportDB(ctx context.Context, source string, archive io.Reader) (vulndb.ImportResult, error)
	Vulnerability(ctx context.Context, id string) (Vulnerability, error)
	Packages(ctx context.Context, ecosystem, name string) ([]store.PackageHit, error)
}

// Vulnerability is the body of GET /v1/vulnerabilities/{id}.
type Vulnerability struct {
	// ID is the id or alias asked for.
	ID string `json:"id"`
	// Records are the OSV records with that id or alias.
	Records []json.RawMessage `json:"records"`
	// Affected are the packages of scanned images (their latest reports)
	// with a finding of it.
	Affected []store.VulnHit `json:"affected"`
}

// packagesResponse is the body of GET /v1/packages.
type packagesResponse struct {
	Packages []store.PackageHit `json:"packages"`
}

func (h *handler) vulns(w http.ResponseWriter) (VulnService, bool) {
	if h.o.Vulns == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the vulnerability database is not available")
		return nil, false
	}
	return h.o.Vulns, true
}

func (h *handler) serveDB(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	v, ok := h.vulns(w)
	if !ok {
		return
	}
	info, err := v.DBInfo(r.Context())
	if err != nil {
		h.serviceError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

func (h *handler) serveDBImport(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r, "source")
	if !ok {
		return
	}
	v, ok := h.vulns(w)
	if !ok {
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/zip" {
			writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type",
				fmt.Sprintf("content type %q not supported: send an OSV zip archive as application/zip", ct))
			return
		}
	}
	source := q["source"]
	if source != "" && !sourceNameOK(source) {
		badRequest(w, "source %q: want 1-64 letters, digits, '.', '_', '-' or ':'", source)
		return
	}
	max := h.o.MaxImportBytes
	if max <= 0 {
		max = DefaultMaxImportBytes
	}
	res, err := v.ImportDB(r.Context(), source, http.MaxBytesReader(w, r.Body, max))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large",
			fmt.Sprintf("the archive is larger than %d bytes (vulndb.max_archive_bytes)", max))
		return
	}
	if err != nil {
		h.serviceError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func sourceNameOK(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("._-:", c)) {
			return false
		}
	}
	return true
}

func (h *handler) serveVulnerability(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	v, ok := h.vulns(w)
	if !ok {
		return
	}
	id := r.PathValue("id")
	if id == "" || len(id) > 256 || strings.ContainsAny(id, " \t\r\n\x00") {
		badRequest(w, "vulnerability id %q: want an OSV id or alias like CVE-2023-1234 or GHSA-xxxx-xxxx-xxxx", id)
		return
	}
	out, err := v.Vulnerability(r.Context(), id)
	if err != nil {
		h.serviceError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) servePackages(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r, "ecosystem", "name")
	if !ok {
		return
	}
	v, ok := h.vulns(w)
	if !ok {
		return
	}
	if strings.TrimSpace(q["name"]) == "" {
		badRequest(w, "name is required: GET /v1/packages?name=NAME[&ecosystem=ECOSYSTEM]")
		return
	}
	hits, err := v.Packages(r.Context(), q["ecosystem"], q["name"])
	if err != nil {
		h.serviceError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, packagesResponse{Packages: hits})
}

// reportFormat picks the format of a report answer: ?format= first, else
// the Accept header, else JSON. ok is false when it wrote a 400/406.
func reportFormat(w http.ResponseWriter, r *http.Request, q map[string]string) (string, bool) {
	if f, given := q["format"]; given {
		if ft, ok := formats.Lookup(f); ok && ft.Name == f {
			return f, true
		}
		badRequest(w, "format %q: want one of %s", f, strings.Join(formats.Names(), ", "))
		return "", false
	}
	accept := r.Header.Get("Accept")
	if accept == "" {
		return formats.JSON, true
	}
	f, ok := formats.FromAccept(accept)
	if !ok {
		writeError(w, http.StatusNotAcceptable, "not_acceptable",
			fmt.Sprintf("cannot answer %q: reports are %s", accept, formats.AcceptText()))
		return "", false
	}
	return f, true
}

// writeReport answers with rep in format.
func (h *handler) writeReport(w http.ResponseWriter, r *http.Request, rep *report.Report, format string) {
	if format == formats.JSON {
		writeJSON(w, http.StatusOK, rep)
		return
	}
	var buf strings.Builder
	if err := formats.Write(&buf, format, rep, formats.Options{Tool: "assay", ToolVersion: h.o.Version}); err != nil {
		h.serviceError(w, r, fmt.Errorf("writing the report as %s: %w", format, err))
		return
	}
	w.Header().Set("Content-Type", formats.ContentType(format))
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, buf.String())
}
