package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/assayhq/assay/daemon/policy"
	"github.com/assayhq/assay/daemon/scans"
)

// submitRequest is the body of POST /v1/scans. The trigger is not the
// caller's to choose: the API sets it.
type submitRequest struct {
	Image    string `json:"image"`
	Platform string `json:"platform,omitempty"`
	// Policy is added to the configured policy for this scan's report:
	// min_severity, only_fixed and ignore rules. VEX documents are
	// configured (policy.vex), not sent: the daemon does not read files a
	// client names.
	Policy *policy.Policy `json:"policy,omitempty"`
}

// submitResponse is a scan plus whether an existing one was returned.
type submitResponse struct {
	scans.Scan
	Deduplicated bool `json:"deduplicated"`
}

// listResponse is the body of GET /v1/scans.
type listResponse struct {
	Scans []scans.Scan `json:"scans"`
	// Next is the After cursor of the next page; empty on the last page.
	Next string `json:"next"`
}

// maxListLimit caps the page size of GET /v1/scans.
const maxListLimit = 1000

func (h *handler) serveSubmit(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	var req submitRequest
	if !h.decodeBody(w, r, &req) {
		return
	}
	if strings.TrimSpace(req.Image) == "" {
		badRequest(w, "image is required")
		return
	}
	sr := scans.Request{Image: req.Image, Platform: req.Platform, Trigger: "api"}
	if p := req.Policy; p != nil {
		if len(p.VEX) > 0 {
			badRequest(w, "policy.vex: VEX documents are configured on the daemon (policy.vex), not sent with a scan")
			return
		}
		if err := p.Validate(); err != nil {
			badRequest(w, "policy: %v", err)
			return
		}
		b, err := json.Marshal(p)
		if err != nil {
			h.serviceError(w, r, err)
			return
		}
		if string(b) != "{}" {
			// A policy of the scan's own may ignore every finding: an
			// admin's call. (Its report is kept beside the digest's
			// latest, never in its place.)
			if role := roleFrom(r.Context()); role < RoleAdmin {
				writeError(w, http.StatusForbidden, "permission_denied",
					fmt.Sprintf("a scan with a policy of its own needs the admin role; this caller has %s", role))
				return
			}
			sr.Policy = b
		}
	}
	if peer, ok := PeerFrom(r.Context()); ok {
		uid := peer.UID
		sr.SubmittedBy = &uid
	}
	s, created, err := h.o.Service.Submit(r.Context(), sr)
	if err != nil {
		h.serviceError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/scans/"+url.PathEscape(s.ID))
	writeJSON(w, http.StatusAccepted, submitResponse{Scan: s, Deduplicated: !created})
}

func (h *handler) serveScan(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	s, err := h.o.Service.Scan(r.Context(), r.PathValue("id"))
	if err != nil {
		h.serviceError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (h *handler) serveCancel(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	id := r.PathValue("id")
	// Below admin, a caller cancels only the scans it submitted.
	if role := roleFrom(r.Context()); role < RoleAdmin {
		sc, err := h.o.Service.Scan(r.Context(), id)
		if err != nil {
			h.serviceError(w, r, err)
			return
		}
		peer, _ := PeerFrom(r.Context())
		if sc.SubmittedBy == nil || *sc.SubmittedBy != peer.UID {
			writeError(w, http.StatusForbidden, "permission_denied",
				fmt.Sprintf("scan %s was not submitted by uid %d: cancelling it needs the admin role", id, peer.UID))
			return
		}
	}
	s, err := h.o.Service.Cancel(r.Context(), id)
	if err != nil {
		h.serviceError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (h *handler) serveListScans(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r, "status", "image", "digest", "limit", "after")
	if !ok {
		return
	}
	var f scans.Filter
	for _, v := range r.URL.Query()["status"] {
		for name := range strings.SplitSeq(v, ",") {
			if name = strings.TrimSpace(name); name == "" {
				continue
			}
			st, err := scans.ParseStatus(name)
			if err != nil {
				badRequest(w, "status: unknown status %q (want one of %s)", name, statusNames())
				return
			}
			f.Status = append(f.Status, st)
		}
	}
	f.Image = q["image"]
	f.Digest = q["digest"]
	f.After = q["after"]
	if v, ok := q["limit"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			badRequest(w, "limit: want an integer from 1 to %d, got %q", maxListLimit, v)
			return
		}
		f.Limit = n
	}
	list, next, err := h.o.Service.Scans(r.Context(), f)
	if err != nil {
		h.serviceError(w, r, err)
		return
	}
	if list == nil {
		list = []scans.Scan{}
	}
	writeJSON(w, http.StatusOK, listResponse{Scans: list, Next: next})
}

func statusNames() string {
	names := make([]string, len(scans.Statuses))
	for i, s := range scans.Statuses {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// query checks that the request has no parameters but the named ones, each
// at most once, except status which may repeat, and returns their values.
// A typo such as ?stauts=done must not silently select everything.
func query(w http.ResponseWriter, r *http.Request, allowed ...string) (map[string]string, bool) {
	vals, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		badRequest(w, "malformed query: %v", err)
		return nil, false
	}
	out := make(map[string]string, len(vals))
	for k, vs := range vals {
		known := false
		for _, a := range allowed {
			known = known || a == k
		}
		if !known {
			if len(allowed) == 0 {
				badRequest(w, "unknown query parameter %q: this route takes none", k)
			} else {
				badRequest(w, "unknown query parameter %q (want %s)", k, strings.Join(allowed, ", "))
			}
			return nil, false
		}
		if len(vs) > 1 && k != "status" {
			badRequest(w, "query parameter %q given more than once", k)
			return nil, false
		}
		out[k] = vs[0]
	}
	return out, true
}

// checkQuery rejects any query parameter on routes that take none.
func checkQuery(w http.ResponseWriter, r *http.Request) bool {
	_, ok := query(w, r)
	return ok
}
