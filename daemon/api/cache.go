package api

import (
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
// now, rather than at the next store.
func (h *handler) serveCachePrune(w http.ResponseWriter, r *http.Request) {
	if !checkQuery(w, r) {
		return
	}
	c, ok := h.cache(w)
	if !ok {
		return
	}
	n, err := c.Prune()
	if err != nil {
		h.serviceError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, cacheResponse{CacheStats: c.Stats(), Pruned: &n})
}
