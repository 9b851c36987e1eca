// Package analyze runs the enabled analyzer plugins over one image, each in
// its own sandbox, and turns what they stream back into report entries.
// The plugin protocol and verification are plugins/host's; the isolation is
// the sandbox's; this package decides which plugins run and records how
// each ended.
package analyze

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/assayhq/assay/daemon/images"
	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/plugins/host"
	"github.com/assayhq/assay/plugins/sdk"
	"github.com/assayhq/assay/sandbox"
)

// Sandbox makes go-plugin runners that start a plugin in a sandbox whose
// Target() is a read-only view of the given image layers.
type Sandbox interface {
	RunnerFunc(layers []string) host.RunnerFunc
	// RunnerFuncFiles starts a layer plugin with files (layer blobs, open
	// read-only) as its descriptors 3, 4, ... and no /target.
	RunnerFuncFiles(files []*os.File) host.RunnerFunc
	Target() string
}

// Options configure Analyzers.
type Options struct {
	PluginsDir string
	CacheDir   string
	// VerifiedDir keeps verified plugin binaries between runs
	// (host.Options.VerifiedDir).
	VerifiedDir string
	// SocketDir is where go-plugin makes its socket directories (the
	// sandbox's, which it can bind into the sandbox).
	SocketDir string
	Enabled   []string
	Sandbox   Sandbox
	// Timeout bounds one plugin run (sandbox.timeout).
	Timeout        time.Duration
	StartTimeout   time.Duration
	MaxResultBytes int64
	Caps           sdk.Resources
	// MaxFileBytes and MaxFiles are passed to plugins to bound their walk.
	MaxFileBytes int64
	MaxFiles     int64
	// Parallel is how many plugins of one scan run at once (at least 1).
	Parallel int
	// Cache keeps layer plugins' results per layer; nil caches nothing.
	Cache LayerCache
	// LayerLimits bound the layer streams.
	LayerLimits sdk.LayerLimits
	Logger      *slog.Logger
}

// OSReleaseExtractor is the extractor of os-release files, which runs
// with every other extractor of its plugin.
const OSReleaseExtractor = "os-release"

// Analyzers runs the enabled plugins.
type Analyzers struct {
	o         Options
	manifests []host.Manifest // tree plugins
	layered   []layerPlugin   // layer plugins, with their extractors
	// stores are layer results being written to the cache, off the
	// scan's critical path; the next Plan and Wait wait for them.
	stores sync.WaitGroup
}

// Wait waits for the layer results still being written to the cache
// (call it before closing the cache).
func (a *Analyzers) Wait() { a.stores.Wait() }

// New finds every enabled plugin's manifest in the plugins directory: an
// enabled plugin that is not there stops the daemon at start.
func New(o Options) (*Analyzers, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	a := &Analyzers{o: o}
	if len(o.Enabled) == 0 {
		return a, nil
	}
	if o.Sandbox == nil {
		return nil, errors.New("analyze: plugins are enabled but no sandbox is available")
	}
	found, derr := host.Discover(o.PluginsDir)
	if derr != nil {
		if len(found) == 0 {
			return nil, fmt.Errorf("analyze: plugins.dir: %w", derr)
		}
		// Broken manifests of plugins not enabled do not stop the
		// daemon; an enabled one that is broken is not found below.
		o.Logger.Warn("plugins.dir holds manifests that are not valid; those plugins are ignored", "dir", o.PluginsDir, "err", derr)
	}
	byName := map[string]host.Manifest{}
	byExtractor := map[string]host.Manifest{}
	for _, m := range found {
		byName[m.Name] = m
		for _, e := range m.Extractors {
			byExtractor[e] = m
		}
	}
	// plugins.enabled names plugins, or extractors of a layer plugin;
	// the extractors of one plugin run together, in one sandbox.
	at := map[string]int{}
	for _, name := range o.Enabled {
		m, ok := byName[name]
		ext := ""
		if !ok {
			if m, ok = byExtractor[name]; !ok {
				if derr != nil {
					return nil, fmt.Errorf("analyze: plugins.enabled names %q but %s has no valid manifest for it, nor a plugin with such an extractor (%v)", name, o.PluginsDir, derr)
				}
				return nil, fmt.Errorf("analyze: plugins.enabled names %q but %s has no manifest for it, nor a plugin with such an extractor", name, o.PluginsDir)
			}
			ext = name
		}
		if !m.Layers() {
			a.manifests = append(a.manifests, m)
			continue
		}
		i, seen := at[m.Name]
		if !seen {
			i = len(a.layered)
			at[m.Name] = i
			a.layered = append(a.layered, layerPlugin{m: m})
		}
		lp := &a.layered[i]
		switch {
		case ext == "":
			lp.extractors = slices.Clone(m.Extractors)
		case !slices.Contains(lp.extractors, ext):
			lp.extractors = append(lp.extractors, ext)
		}
	}
	for i := range a.layered {
		lp := &a.layered[i]
		// os-release is what OS packages take their release from: it
		// runs whenever any extractor of its plugin does.
		if slices.Contains(lp.m.Extractors, OSReleaseExtractor) && !slices.Contains(lp.extractors, OSReleaseExtractor) {
			lp.extractors = append(lp.extractors, OSReleaseExtractor)
		}
		if len(a.layered[i].extractors) == 0 {
			return nil, fmt.Errorf("analyze: plugin %s reads layers but its manifest lists no extractors", a.layered[i].m.Name)
		}
	}
	return a, nil
}

// EnabledPlugin is an enabled plugin and, for a layer plugin, the
// extractors selected.
type EnabledPlugin struct {
	Manifest   host.Manifest
	Extractors []string
}

// EnabledPlugins lists the enabled plugins: tree plugins, then layer
// plugins with their selected extractors.
func (a *Analyzers) EnabledPlugins() []EnabledPlugin {
	var out []EnabledPlugin
	for _, m := range a.manifests {
		out = append(out, EnabledPlugin{Manifest: m})
	}
	for _, lp := range a.layered {
		out = append(out, EnabledPlugin{Manifest: lp.m, Extractors: slices.Clone(lp.extractors)})
	}
	return out
}

// Result is what the analyzers found in one image.
type Result struct {
	Packages  []report.Package
	Findings  []report.Finding
	Warnings  []report.Warning
	Analyzers []report.Analyzer
}

// Run runs every enabled plugin over img: layer plugins over the layers
// plan did not find cached (nil: a plan of its own), tree plugins
// Options.Parallel at a time over the view; and
// merges what they found in the order of plugins.enabled. A plugin that
// fails or times out is recorded with its status and reason; the others
// still run.
func (a *Analyzers) Run(ctx context.Context, img *images.Image, plan *Plan) (*Result, error) {
	res := &Result{Packages: []report.Package{}, Findings: []report.Finding{}, Analyzers: []report.Analyzer{}}
	if plan == nil {
		plan = a.Plan()
	}
	for _, lp := range a.layered {
		layers, recs, err := a.runLayers(ctx, img, img, lp, plan)
		if err != nil {
			return nil, err
		}
		mergeLayers(res, lp.m.Name, layers)
		res.Analyzers = append(res.Analyzers, recs...)
	}
	if len(a.manifests) == 0 {
		return res, nil
	}
	h, err := host.New(host.Options{
		Dir:            a.o.PluginsDir,
		CacheDir:       a.o.CacheDir,
		VerifiedDir:    a.o.VerifiedDir,
		SocketDir:      a.o.SocketDir,
		Runner:         a.o.Sandbox.RunnerFunc(img.LayerDirs),
		StartTimeout:   a.o.StartTimeout,
		MaxResultBytes: a.o.MaxResultBytes,
		Caps:           a.o.Caps,
		Logger:         a.o.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("analyze: %w", err)
	}
	config, err := json.Marshal(img.Config)
	if err != nil {
		return nil, fmt.Errorf("analyze: image config: %w", err)
	}
	req := sdk.Request{
		Root:         a.o.Sandbox.Target(),
		ImageConfig:  config,
		MaxFileBytes: a.o.MaxFileBytes,
		MaxFiles:     a.o.MaxFiles,
	}
	parallel := max(a.o.Parallel, 1)
	sem := make(chan struct{}, parallel)
	each := make([]*Result, len(a.manifests))
	recs := make([]report.Analyzer, len(a.manifests))
	var wg sync.WaitGroup
	for i, m := range a.manifests {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if err := ctx.Err(); err != nil {
			wg.Wait()
			return nil, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			one := &Result{}
			recs[i] = a.runOne(ctx, h, m, req, one)
			each[i] = one
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i := range a.manifests {
		res.Packages = append(res.Packages, each[i].Packages...)
		res.Findings = append(res.Findings, each[i].Findings...)
		res.Warnings = append(res.Warnings, each[i].Warnings...)
		res.Analyzers = append(res.Analyzers, recs[i])
	}
	return res, nil
}

func (a *Analyzers) runOne(ctx context.Context, h *host.Host, m host.Manifest, req sdk.Request, res *Result) report.Analyzer {
	rctx, cancel := context.WithTimeout(ctx, a.o.Timeout)
	defer cancel()
	start := time.Now()
	out, err := h.Run(rctx, m, req, func(it sdk.Item) error {
		switch {
		case it.Package != nil:
			res.Packages = append(res.Packages, convertPackage(*it.Package))
		case it.Finding != nil:
			res.Findings = append(res.Findings, convertFinding(m.Name, *it.Finding))
		case it.Warning != nil:
			res.Warnings = append(res.Warnings, report.Warning{Analyzer: m.Name, Path: it.Warning.Path, Message: it.Warning.Message})
		}
		return nil
	})
	version := out.Description.Version
	if version == "" {
		version = m.Version
	}
	rec := report.Analyzer{Name: m.Name, Version: version, Status: report.AnalyzerStatus(host.StatusOf(err))}
	if err != nil {
		rec.Error = reason(err)
		a.o.Logger.Warn("analyzer did not finish", "plugin", m.Name, "status", rec.Status, "error", rec.Error)
	} else {
		a.o.Logger.Info("analyzer finished", "plugin", m.Name, "items", out.Items, "bytes", out.Bytes, "took", time.Since(start).Round(time.Millisecond))
	}
	return rec
}

// reason is the error text for the report: the host's reason and cause,
// without the package prefixes; a sandbox limit that ended the plugin is
// named as such ("out of memory (limit 128 MiB)").
func reason(err error) string {
	if errors.Is(err, sandbox.ErrOutOfMemory) || errors.Is(err, sandbox.ErrTooManyProcesses) {
		return "sandbox limit: " + sandbox.Reason(err)
	}
	if e, ok := errors.AsType[*host.Error](err); ok {
		return fmt.Sprintf("%s: %v", e.Reason, e.Err)
	}
	return err.Error()
}

func convertPackage(p sdk.Package) report.Package {
	rp := report.Package{Ecosystem: p.Ecosystem, Name: p.Name, Version: p.Version, PURL: p.PURL, Locations: p.Locations, Owner: p.Owner}
	if rp.Locations == nil {
		rp.Locations = []string{}
	}
	if p.SourceName != "" {
		rp.Source = &report.Source{Name: p.SourceName, Version: p.SourceVersion}
	}
	return rp
}

func convertFinding(plugin string, f sdk.Finding) report.Finding {
	sev, err := report.ParseSeverity(f.Severity)
	if err != nil {
		sev = report.Unknown
	}
	summary := f.Summary
	if f.Location != "" {
		summary = strings.TrimSpace(summary + " (" + f.Location + ")")
	}
	f2 := report.Finding{ID: f.ID, Aliases: []string{}, Severity: sev, Summary: summary, Package: report.PackageRef{Ecosystem: plugin}, Analyzer: plugin}
	if f.Location != "" {
		f2.Locations = []string{f.Location}
	}
	return f2
}
