package analyze

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/assayhq/assay/analyzers/inventory"
	"github.com/assayhq/assay/daemon/images"
	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/plugins/host"
	"github.com/assayhq/assay/plugins/sdk"
)

// LayerCache keeps what extractors found per layer (daemon/store's
// LayerCache is the embedded one; a shared one can serve several
// workers). A miss of a corrupt entry is the cache's to decide: Get
// returns only values it can vouch for.
type LayerCache interface {
	Get(key string) ([]byte, bool)
	// PutAll stores entries at once: after a crash all or none are there.
	PutAll(entries map[string][]byte) error
}

// errLayers marks a layer that could not be opened or whose download was
// not verified: the scan fails, nothing read is used or cached.
var errLayers = errors.New("analyze: layer blobs")

// LayerSource opens an image's layer blobs (images.Image). A layer may
// still be downloading when opened: WaitLayers says whether everything
// opened was the blob its digest names, and nothing is trusted before.
type LayerSource interface {
	OpenLayer(ctx context.Context, layerDigest string) (*os.File, error)
	WaitLayers(ctx context.Context) error
}

// layerPlugin is an enabled plugin that reads layers, with the
// extractors selected (all of the manifest's when plugins.enabled names
// the plugin).
type layerPlugin struct {
	m          host.Manifest
	extractors []string
}

// entriesKey is the cache key part of a layer's own items (entries,
// framework warnings, the layer end), which no extractor produced.
const entriesKey = "~layer"

// cacheKey is one cache entry's key: the layer, the plugin binary, the
// extractor. A new binary misses every entry it made before.
func cacheKey(layerDigest string, m host.Manifest, extractor string) string {
	if extractor == "" {
		extractor = entriesKey
	}
	return layerDigest + "\x00" + m.Name + "\x00" + m.SHA256 + "\x00" + extractor
}

// cached is one cache entry's value.
type cached struct {
	// Version is the extractor's, when it ran.
	Version string     `json:"version,omitempty"`
	Items   []sdk.Item `json:"items"`
}

func encodeCached(c cached) ([]byte, error) {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err := json.NewEncoder(zw).Encode(c); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// maxCachedBytes bounds what one cache entry may decompress to.
const maxCachedBytes = 256 << 20

func decodeCached(b []byte) (cached, error) {
	var c cached
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return c, err
	}
	defer zr.Close()
	dec := json.NewDecoder(io.LimitReader(zr, maxCachedBytes))
	if err := dec.Decode(&c); err != nil {
		return c, err
	}
	for _, it := range c.Items {
		if err := it.Validate(); err != nil {
			return c, err
		}
	}
	return c, nil
}

// Plan is one scan's view of the layer cache: what was found when the
// image was fetched (LayerNeeded, which decides what is not fetched) is
// what Run uses, so that an entry evicted in between cannot leave a layer
// neither fetched nor cached, and each entry is read once per scan.
type Plan struct {
	a    *Analyzers
	mu   sync.Mutex
	memo map[string]planned // plugin name 0x00 layer digest
}

type planned struct {
	items    map[string][]sdk.Item // by extractor; "" the layer's own
	versions map[string]string
	ok       bool
}

// Plan starts one scan's view of the cache, once the results of earlier
// scans are in it.
func (a *Analyzers) Plan() *Plan {
	a.stores.Wait()
	return &Plan{a: a, memo: map[string]planned{}}
}

// LayerNeeded reports whether a layer plugin must read the layer: some
// enabled extractor's results for it are not cached. A layer nobody needs
// is not fetched.
func (p *Plan) LayerNeeded(layerDigest string) bool {
	for _, lp := range p.a.layered {
		if !p.lookup(layerDigest, lp).ok {
			return true
		}
	}
	return false
}

// lookup returns the cached results of one layer for lp's extractors and
// the layer's own items, if all are there.
func (p *Plan) lookup(layerDigest string, lp layerPlugin) planned {
	key := lp.m.Name + "\x00" + layerDigest
	p.mu.Lock()
	defer p.mu.Unlock()
	if got, ok := p.memo[key]; ok {
		return got
	}
	got := p.a.lookup(layerDigest, lp)
	p.memo[key] = got
	return got
}

func (a *Analyzers) lookup(layerDigest string, lp layerPlugin) planned {
	if a.o.Cache == nil {
		return planned{}
	}
	out := planned{items: map[string][]sdk.Item{}, versions: map[string]string{}}
	for _, name := range append([]string{""}, lp.extractors...) {
		raw, ok := a.o.Cache.Get(cacheKey(layerDigest, lp.m, name))
		if !ok {
			return planned{}
		}
		c, err := decodeCached(raw)
		if err != nil {
			a.o.Logger.Warn("ignoring an unreadable layer cache entry", "layer", layerDigest, "extractor", name, "err", err)
			return planned{}
		}
		out.items[name] = c.Items
		if name != "" {
			out.versions[name] = c.Version
		}
	}
	out.ok = true
	return out
}

// NeedsTree reports whether an enabled plugin reads the image's tree, so
// that the image must be unpacked into a view.
func (a *Analyzers) NeedsTree() bool { return len(a.manifests) > 0 }

// runLayers runs one layer plugin over the layers whose results are not
// cached, stores what it found per layer, and returns every layer's items
// (cached and fresh) with one record per extractor.
func (a *Analyzers) runLayers(ctx context.Context, img *images.Image, src LayerSource, lp layerPlugin, plan *Plan) ([]inventory.Layer, []report.Analyzer, error) {
	versions := map[string]string{}
	byLayer := make([]map[string][]sdk.Item, len(img.Layers))
	var todo []int
	// The image's limits count the cached layers too: the plugin gets
	// what they leave.
	lim := a.o.LayerLimits
	for i, l := range img.Layers {
		got := plan.lookup(l.Digest, lp)
		if !got.ok {
			todo = append(todo, i)
			continue
		}
		byLayer[i] = got.items
		for k, v := range got.versions {
			versions[k] = v
		}
		for _, it := range got.items[""] {
			if e := it.LayerEnd; e != nil {
				lim.MaxEntries -= e.Entries
				lim.MaxBytes -= e.Bytes
			}
		}
	}
	status, reasonText := report.AnalyzerStatus(host.StatusOK), ""
	switch {
	case len(todo) > 0 && ((a.o.LayerLimits.MaxEntries > 0 && lim.MaxEntries <= 0) || (a.o.LayerLimits.MaxBytes > 0 && lim.MaxBytes <= 0)):
		return nil, nil, fmt.Errorf("%w: the cached layers already hold %d entries (limits.max_entries %d) and %d bytes (limits.max_unpacked_bytes %d); the rest is not read",
			images.ErrLimit, a.o.LayerLimits.MaxEntries-lim.MaxEntries, a.o.LayerLimits.MaxEntries, a.o.LayerLimits.MaxBytes-lim.MaxBytes, a.o.LayerLimits.MaxBytes)
	case len(todo) > 0:
		start := time.Now()
		out, err := a.streamLayers(ctx, img, src, lp, todo, byLayer, lim)
		for _, e := range out.Description.Extractors {
			versions[e.Name] = e.Version
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			if errors.Is(err, errLayers) {
				// What was read cannot be trusted: the scan fails.
				return nil, nil, err
			}
			if he, ok := errors.AsType[*host.Error](err); ok && he.Reason == host.ReasonLimit {
				// An image over a limit is refused, as the tree path
				// refuses one that unpacks too large.
				cachedNote := ""
				if n := a.o.LayerLimits.MaxEntries - lim.MaxEntries; n > 0 {
					cachedNote = fmt.Sprintf("; the cached layers already hold %d entries and %d bytes, and the plugin was given what remains", n, a.o.LayerLimits.MaxBytes-lim.MaxBytes)
				}
				return nil, nil, fmt.Errorf("%w: %v (limits.max_entries %d, limits.max_unpacked_bytes %d%s)", images.ErrLimit, he.Err, a.o.LayerLimits.MaxEntries, a.o.LayerLimits.MaxBytes, cachedNote)
			}
			status, reasonText = report.AnalyzerStatus(host.StatusOf(err)), reason(err)
			a.o.Logger.Warn("layer analyzer did not finish", "plugin", lp.m.Name, "status", status, "error", reasonText)
		} else {
			a.o.Logger.Info("layers analyzed", "plugin", lp.m.Name, "layers", len(todo), "cached", len(img.Layers)-len(todo), "items", out.Items, "bytes", out.Bytes, "took", time.Since(start).Round(time.Millisecond))
		}
	default:
		a.o.Logger.Info("layers analyzed", "plugin", lp.m.Name, "layers", 0, "cached", len(img.Layers))
	}
	for i := range byLayer {
		if byLayer[i] == nil {
			byLayer[i] = map[string][]sdk.Item{}
		}
	}
	var layers []inventory.Layer
	for i, got := range byLayer {
		l := inventory.Layer{Index: i + 1}
		for _, name := range append([]string{""}, lp.extractors...) {
			l.Items = append(l.Items, got[name]...)
		}
		layers = append(layers, l)
	}
	var recs []report.Analyzer
	for _, name := range lp.extractors {
		recs = append(recs, report.Analyzer{Name: name, Version: versions[name], Status: status, Error: reasonText})
	}
	return layers, recs, nil
}

// streamLayers runs the plugin once over the layers todo (indexes into
// img.Layers), fills byLayer with what it sent, and caches each layer that
// ended complete.
func (a *Analyzers) streamLayers(ctx context.Context, img *images.Image, src LayerSource, lp layerPlugin, todo []int, byLayer []map[string][]sdk.Item, lim sdk.LayerLimits) (host.Result, error) {
	var files []*os.File
	closeFiles := func() {
		for _, f := range files {
			f.Close()
		}
		files = nil
	}
	defer closeFiles()
	req := sdk.Request{Extractors: lp.extractors, LayerLimits: lim}
	for j, i := range todo {
		l := img.Layers[i]
		f, err := src.OpenLayer(ctx, l.Digest)
		if err != nil {
			return host.Result{}, fmt.Errorf("%w: %w", errLayers, err)
		}
		files = append(files, f)
		req.Layers = append(req.Layers, sdk.Layer{Index: i + 1, Digest: l.Digest, FD: 3 + j})
		byLayer[i] = map[string][]sdk.Item{}
	}
	config, err := json.Marshal(img.Config)
	if err != nil {
		return host.Result{}, fmt.Errorf("analyze: image config: %w", err)
	}
	req.ImageConfig = config
	h, err := host.New(host.Options{
		Dir:            a.o.PluginsDir,
		CacheDir:       a.o.CacheDir,
		VerifiedDir:    a.o.VerifiedDir,
		SocketDir:      a.o.SocketDir,
		Runner:         a.o.Sandbox.RunnerFuncFiles(files),
		StartTimeout:   a.o.StartTimeout,
		MaxResultBytes: a.o.MaxResultBytes,
		Caps:           a.o.Caps,
		Logger:         a.o.Logger,
	})
	if err != nil {
		return host.Result{}, fmt.Errorf("analyze: %w", err)
	}
	ended := map[int]bool{}
	rctx, cancel := context.WithTimeout(ctx, a.o.Timeout)
	defer cancel()
	out, runErr := h.Run(rctx, lp.m, req, func(it sdk.Item) error {
		i := it.Layer - 1
		if i < 0 || i >= len(byLayer) || byLayer[i] == nil {
			return fmt.Errorf("item of layer %d, which was not asked for", it.Layer)
		}
		byLayer[i][it.Extractor] = append(byLayer[i][it.Extractor], it)
		if it.LayerEnd != nil {
			if it.LayerEnd.Digest != img.Layers[i].Digest {
				return fmt.Errorf("layer %d ended as %s, not %s", it.Layer, it.LayerEnd.Digest, img.Layers[i].Digest)
			}
			ended[i] = true
		}
		return nil
	})
	// The plugin is gone: our ends of the layers go too, so that a
	// download it left unread is not held up, then the downloads must
	// all have been verified before anything read is trusted.
	closeFiles()
	if err := src.WaitLayers(ctx); err != nil {
		return host.Result{}, fmt.Errorf("%w: %w", errLayers, err)
	}
	versions := map[string]string{}
	for _, e := range out.Description.Extractors {
		versions[e.Name] = e.Version
	}
	// Only layers whose end arrived are complete; only complete results
	// of a plugin that knows every extractor asked for are cached.
	if a.o.Cache != nil {
		// One transaction for every ended layer: one disk sync per scan.
		entries := map[string][]byte{}
		var stored []string
		for _, i := range todo {
			if !ended[i] {
				continue
			}
			for _, name := range append([]string{""}, lp.extractors...) {
				if name != "" && versions[name] == "" {
					continue
				}
				val, err := encodeCached(cached{Version: versions[name], Items: byLayer[i][name]})
				if err != nil {
					a.o.Logger.Warn("encoding a layer's results for the cache", "layer", img.Layers[i].Digest, "extractor", name, "err", err)
					continue
				}
				entries[cacheKey(img.Layers[i].Digest, lp.m, name)] = val
			}
			stored = append(stored, img.Layers[i].Digest)
		}
		if len(entries) > 0 {
			// Written while the scan goes on to match and report.
			a.stores.Add(1)
			go func() {
				defer a.stores.Done()
				if err := a.o.Cache.PutAll(entries); err != nil {
					a.o.Logger.Warn("storing layers' results in the cache", "layers", len(stored), "err", err)
				} else {
					a.o.Logger.Debug("layer results stored", "plugin", lp.m.Name, "layers", stored)
				}
			}()
		}
	}
	if runErr == nil && len(ended) != len(todo) {
		runErr = errors.New("analyze: the plugin ended without finishing every layer")
	}
	return out, runErr
}

// mergeLayers turns the merged inventory into the result's entries.
func mergeLayers(res *Result, plugin string, layers []inventory.Layer) {
	img := inventory.Merge(layers)
	for _, p := range img.Packages {
		res.Packages = append(res.Packages, convertPackage(p))
	}
	for _, f := range img.Findings {
		res.Findings = append(res.Findings, convertFinding(f.Extractor, f.Finding))
	}
	for _, w := range img.Warnings {
		by := w.Extractor
		if by == "" {
			by = plugin
		}
		res.Warnings = append(res.Warnings, report.Warning{Analyzer: by, Path: w.Path, Message: w.Message})
	}
}
