package analyze

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/assayhq/assay/daemon/images"
	"github.com/assayhq/assay/daemon/report"

	"github.com/assayhq/assay/plugins/host"
	"github.com/assayhq/assay/plugins/sdk"
)

// mapCache is a LayerCache in a map, counting reads.
type mapCache struct {
	m    map[string][]byte
	gets int
}

func (c *mapCache) Get(k string) ([]byte, bool)  { c.gets++; v, ok := c.m[k]; return v, ok }
func (c *mapCache) Put(k string, v []byte) error { c.m[k] = v; return nil }
func (c *mapCache) PutAll(kv map[string][]byte) error {
	for k, v := range kv {
		c.m[k] = v
	}
	return nil
}

func TestCachedRoundTrip(t *testing.T) {
	in := cached{Version: "0.2.0", Items: []sdk.Item{
		{Layer: 1, Extractor: "dpkg", Package: &sdk.Package{Ecosystem: "Debian", OS: "dpkg", Name: "bash", Version: "5.2", Arch: "amd64", Locations: []string{"/var/lib/dpkg/status"}}},
		{Layer: 1, Entries: &sdk.LayerEntries{Paths: []string{"/a"}, Whiteouts: []string{"/b"}, HardLinks: []sdk.HardLink{{Path: "/c", Target: "/a"}}}},
		{Layer: 1, LayerEnd: &sdk.LayerEnd{Digest: "sha256:x", Entries: 3, Bytes: 1024}},
	}}
	b, err := encodeCached(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := decodeCached(b)
	if err != nil || fmt.Sprintf("%+v", out.Items[0].Package) != fmt.Sprintf("%+v", in.Items[0].Package) ||
		out.Items[1].Entries.HardLinks[0] != in.Items[1].Entries.HardLinks[0] || out.Items[2].LayerEnd.Bytes != 1024 || out.Version != "0.2.0" {
		t.Errorf("round trip: %+v, %v", out, err)
	}
	// Not gzip, or items that are not valid: refused, never trusted.
	if _, err := decodeCached([]byte("garbage")); err == nil {
		t.Error("garbage decoded")
	}
	bad, _ := encodeCached(cached{Items: []sdk.Item{{Layer: 1}}})
	if _, err := decodeCached(bad); err == nil {
		t.Error("an empty item decoded")
	}
}

func TestPlanReadsEachEntryOnceAndNeedsMisses(t *testing.T) {
	m := host.Manifest{Name: "builtin", SHA256: "ab", Input: host.InputLayers, Extractors: []string{"dpkg", "npm"}}
	lp := layerPlugin{m: m, extractors: []string{"dpkg", "npm"}}
	c := &mapCache{m: map[string][]byte{}}
	a := &Analyzers{o: Options{Cache: c, Logger: slog.Default()}, layered: []layerPlugin{lp}}
	put := func(layer, ext string, items ...sdk.Item) {
		b, _ := encodeCached(cached{Version: "1", Items: items})
		c.Put(cacheKey(layer, m, ext), b)
	}
	put("sha256:full", "")
	put("sha256:full", "dpkg")
	put("sha256:full", "npm")
	put("sha256:half", "")
	put("sha256:half", "dpkg")
	p := a.Plan()
	if p.LayerNeeded("sha256:full") || !p.LayerNeeded("sha256:half") || !p.LayerNeeded("sha256:none") {
		t.Error("LayerNeeded: a layer is needed exactly when one of its entries is missing")
	}
	gets := c.gets
	p.LayerNeeded("sha256:full")
	if got := p.lookup("sha256:full", lp); !got.ok || got.versions["npm"] != "1" || c.gets != gets {
		t.Errorf("the plan read the cache again (%d → %d gets) or lost the entry", gets, c.gets)
	}
	// Another plugin binary: other keys, all missed.
	other := layerPlugin{m: host.Manifest{Name: "builtin", SHA256: "cd"}, extractors: lp.extractors}
	if a.Plan().lookup("sha256:full", other).ok {
		t.Error("a changed binary hit the old binary's entries")
	}
}

// The image's limits count cached layers: an image whose cached layers
// already use them up is refused without starting the plugin.
func TestCachedLayersCountTowardsTheImageLimits(t *testing.T) {
	m := host.Manifest{Name: "builtin", SHA256: "ab", Input: host.InputLayers, Extractors: []string{"dpkg"}}
	lp := layerPlugin{m: m, extractors: []string{"dpkg"}}
	c := &mapCache{m: map[string][]byte{}}
	for _, l := range []string{"sha256:a", "sha256:b"} {
		b, _ := encodeCached(cached{Items: []sdk.Item{{Layer: 1, LayerEnd: &sdk.LayerEnd{Digest: l, Entries: 600, Bytes: 10}}}})
		c.Put(cacheKey(l, m, ""), b)
		b, _ = encodeCached(cached{Version: "1"})
		c.Put(cacheKey(l, m, "dpkg"), b)
	}
	a := &Analyzers{o: Options{Cache: c, Logger: slog.Default(), LayerLimits: sdk.LayerLimits{MaxEntries: 1000, MaxBytes: 1 << 20}}, layered: []layerPlugin{lp}}
	img := &images.Image{Layers: []report.Layer{{Digest: "sha256:a"}, {Digest: "sha256:b"}, {Digest: "sha256:new"}}}
	_, _, err := a.runLayers(context.Background(), img, nil, lp, a.Plan())
	if !errors.Is(err, images.ErrLimit) || !strings.Contains(err.Error(), "1200 entries") {
		t.Errorf("cached layers over the image's entry limit: %v, want images.ErrLimit", err)
	}
	// Within the limits, the cached layers alone give the inventory.
	img.Layers = img.Layers[:2]
	a.o.LayerLimits.MaxEntries = 2000
	layers, recs, err := a.runLayers(context.Background(), img, nil, lp, a.Plan())
	if err != nil || len(layers) != 2 || len(recs) != 1 || recs[0].Status != report.AnalyzerOK {
		t.Errorf("all cached: %v %v %v", layers, recs, err)
	}
}
