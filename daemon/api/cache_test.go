package api

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/assayhq/assay/daemon/store"
)

func TestCacheRoutes(t *testing.T) {
	c, err := store.OpenLayerCache(filepath.Join(t.TempDir(), "layers.db"), 1<<20, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Put("a", []byte("value"))
	c.Get("a")
	c.Get("b")
	h := NewHandler(Options{Service: &fakeService{}, Cache: c})
	w := do(t, h, http.MethodGet, "/v1/cache", nil)
	var got cacheResponse
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &got) != nil {
		t.Fatalf("GET /v1/cache: %d %s", w.Code, w.Body)
	}
	if got.Entries != 1 || got.Hits != 1 || got.Misses != 1 || got.MaxBytes != 1<<20 || got.MaxAgeSec != 3600 || got.Pruned != nil {
		t.Errorf("GET /v1/cache = %+v", got)
	}
	w = do(t, h, http.MethodPost, "/v1/cache/prune", nil)
	got = cacheResponse{}
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &got) != nil || got.Pruned == nil || *got.Pruned != 0 || got.Entries != 1 {
		t.Errorf("POST /v1/cache/prune: %d %s", w.Code, w.Body)
	}
	wantError(t, do(t, h, http.MethodPost, "/v1/cache/prune?all=yes", nil), http.StatusBadRequest, "invalid_argument")
	w = do(t, h, http.MethodPost, "/v1/cache/prune?all=true", nil)
	got = cacheResponse{}
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &got) != nil || got.Pruned == nil || *got.Pruned != 1 || got.Entries != 0 {
		t.Errorf("POST /v1/cache/prune?all=true: %d %s", w.Code, w.Body)
	}
	wantError(t, do(t, h, http.MethodGet, "/v1/cache?x=1", nil), http.StatusBadRequest, "invalid_argument")
	off := NewHandler(Options{Service: &fakeService{}})
	wantError(t, do(t, off, http.MethodGet, "/v1/cache", nil), http.StatusServiceUnavailable, "unavailable", "cache.max_bytes")
}
