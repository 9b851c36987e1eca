package api

import (
	"fmt"
	"net/http"

	"github.com/assayhq/assay/daemon/store"
)

// cacheResponse is GET /v1/cache and, with Pruned, POST /v1/cache/prune.
type cacheResponse struct {
	store.CacheStats
	// Pruned is how many entries a prune removed.
	Pruned *int `json:"pruned,omitempty"`
}

func (h *handler) cache(w http.ResponseWriter) (CacheService, bool) {
	if h.o.Cache == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the layer cache is off (cache.max_bytes: 0)")
		return nil, false
	}
	return h.o.Cache, true
}

func (h *handler) serveCache(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	c, ok := h.cache(w)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, cacheResponse{CacheStats: c.Stats()})
}

// serveCachePrune removes expired entries and evicts to the size limit
// now, rather than at the next store; with all=true it removes every
// entry (the next scans read every layer again).
func (h *handler) serveCachePrune(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r, "all")
	if !ok {
		return
	}
	all, err := parseBool(q["all"])
	if err != nil {
		badRequest(w, "all: %v", err)
		return
	}
	c, ok := h.cache(w)
	if !ok {
		return
	}
	prune := c.Prune
	if all {
		prune = c.Clear
	}
	n, err := prune()
	if err != nil {
		h.serviceError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, cacheResponse{CacheStats: c.Stats(), Pruned: &n})
}

// parseBool reads an optional boolean query parameter ("" is false).
func parseBool(v string) (bool, error) {
	switch v {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, fmt.Errorf("%q is neither true nor false", v)
}
