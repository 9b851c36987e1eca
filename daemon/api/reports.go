package api

import (
	"net/http"
	"strings"

	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
)

// historyResponse is the body of GET /v1/reports/{digest}/history.
type historyResponse struct {
	Reports []*report.Report `json:"reports"`
}

func (h *handler) serveReport(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r, "format", "scan")
	if !ok {
		return
	}
	format, ok := reportFormat(w, r, q)
	if !ok {
		return
	}
	d, ok := pathDigest(w, r)
	if !ok {
		return
	}
	var rep *report.Report
	var err error
	if id := q["scan"]; id != "" {
		rep, err = h.o.Service.ReportOfScan(r.Context(), d, id)
	} else {
		rep, err = h.o.Service.Report(r.Context(), d)
	}
	if err != nil {
		h.serviceError(w, r, err)
		return
	}
	h.writeReport(w, r, rep, format)
}

func (h *handler) serveReportHistory(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	d, ok := pathDigest(w, r)
	if !ok {
		return
	}
	list, err := h.o.Service.ReportHistory(r.Context(), d)
	if err != nil {
		h.serviceError(w, r, err)
		return
	}
	if list == nil {
		list = []*report.Report{}
	}
	writeJSON(w, http.StatusOK, historyResponse{Reports: list})
}

func (h *handler) serveReportForImage(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r, "image", "format")
	if !ok {
		return
	}
	format, ok := reportFormat(w, r, q)
	if !ok {
		return
	}
	image := q["image"]
	if strings.TrimSpace(image) == "" {
		badRequest(w, "image is required: GET /v1/reports?image=REF, or GET /v1/reports/{digest}")
		return
	}
	rep, err := h.o.Service.ReportForImage(r.Context(), image)
	if err != nil {
		h.serviceError(w, r, err)
		return
	}
	h.writeReport(w, r, rep, format)
}

// pathDigest returns the {digest} path value, or writes 400 unless it is a
// manifest digest: sha256 with 64 or sha512 with 128 lower-case hex digits.
func pathDigest(w http.ResponseWriter, r *http.Request) (string, bool) {
	d := r.PathValue("digest")
	if err := scans.CheckDigest(d); err != nil {
		badRequest(w, "%v", err)
		return "", false
	}
	return d, true
}
