package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// FileInfo is one layer entry as an extractor sees it.
type FileInfo struct {
	// Path is absolute and clean, as seen from the image root:
	// "/var/lib/dpkg/status".
	Path string
	// Mode has the type bits (regular file or symbolic link: only those
	// are offered) and the permission bits.
	Mode fs.FileMode
	Size int64
	// LinkTarget is a symbolic link's target, as stored in the layer.
	LinkTarget string
}

// Extractor parses the files of a layer it asks for. The framework
// (ExtractLayer) reads each layer's tar stream once and hands every
// matching file to every extractor that wants it: an extractor never walks
// anything itself. A fresh set of extractors is made for each layer
// (ExtractorSet.New), so an extractor may keep state over one layer.
type Extractor interface {
	// Name and Version identify the extractor: results are cached per
	// layer under them and the plugin binary's digest.
	Name() string
	Version() string
	// MaxFileBytes is the largest file the extractor reads; larger files
	// are skipped with a warning. The request may override it
	// (LayerLimits.MaxFileBytes).
	MaxFileBytes() int64
	// Required reports whether Extract wants the file. It is called for
	// every regular file and symbolic link of every layer: decide from
	// the path and mode alone, cheaply.
	Required(f FileInfo) bool
	// Extract parses one file: r reads its content (f.Size bytes; nothing
	// for a link). It must honour ctx. An error is reported as a warning
	// about that file and the layer goes on; an error of out means the
	// host is gone: return it.
	Extract(ctx context.Context, f FileInfo, r io.Reader, out Output) error
}

// Finisher is an extractor that emits when the layer has been read
// (a lockfile is reported only where no installed tree sits beside it).
type Finisher interface {
	Finish(ctx context.Context, layer LayerIndex, out Output) error
}

// LayerIndex answers what the layer just read holds.
type LayerIndex interface {
	// HasDir reports whether the layer holds the directory dir, as an
	// entry or as the parent of one.
	HasDir(dir string) bool
}

// Output is where an extractor sends its results; the framework adds the
// layer and the extractor's name. It is safe for concurrent use.
type Output interface {
	Package(Package) error
	Finding(Finding) error
	Warning(Warning) error
	OwnedFiles(OwnedFiles) error
	OSRelease(OSRelease) error
}

// ExtractorSet is a plugin made of extractors: ServeExtractors serves it.
type ExtractorSet struct {
	Name      string
	Version   string
	Resources Resources
	// New returns a fresh set of the extractors, for one layer.
	New func() []Extractor
}

// Select returns the extractors named (all of them when names is empty),
// freshly made; an unknown name is an error.
func (s ExtractorSet) Select(names []string) ([]Extractor, error) {
	all := s.New()
	if len(names) == 0 {
		return all, nil
	}
	var out []Extractor
	for _, n := range names {
		i := slices.IndexFunc(all, func(e Extractor) bool { return e.Name() == n })
		if i < 0 {
			return nil, fmt.Errorf("sdk: %s has no extractor %q", s.Name, n)
		}
		out = append(out, all[i])
	}
	return out, nil
}

// ServeExtractors serves set as a plugin that reads layers. Its manifest
// must say "input": "layers".
func ServeExtractors(set ExtractorSet) { Serve(LayerAnalyzer{Set: set}) }

// LayerAnalyzer is the Analyzer of an ExtractorSet: Analyze streams each
// layer of the request through the extractors.
type LayerAnalyzer struct{ Set ExtractorSet }

var _ Analyzer = LayerAnalyzer{}

// Describe implements Analyzer.
func (a LayerAnalyzer) Describe(context.Context) (Description, error) {
	d := Description{Name: a.Set.Name, Version: a.Set.Version, Kinds: []string{KindPackage, KindFinding}, Resources: a.Set.Resources}
	for _, e := range a.Set.New() {
		d.Extractors = append(d.Extractors, ExtractorInfo{Name: e.Name(), Version: e.Version(), MaxFileBytes: e.MaxFileBytes()})
	}
	return d, nil
}

// Analyze implements Analyzer for a caller that can only take packages,
// findings and warnings: layer items are dropped. The gRPC server calls
// AnalyzeItems instead, which keeps them.
func (a LayerAnalyzer) Analyze(ctx context.Context, req Request, emit Emitter) error {
	return a.AnalyzeItems(ctx, req, func(it Item) error {
		switch {
		case it.Package != nil:
			return emit.Package(*it.Package)
		case it.Finding != nil:
			return emit.Finding(*it.Finding)
		case it.Warning != nil:
			return emit.Warning(*it.Warning)
		}
		return nil
	})
}

// ItemAnalyzer is an Analyzer that sends whole items, layer items
// included; the gRPC server prefers it.
type ItemAnalyzer interface {
	AnalyzeItems(ctx context.Context, req Request, send func(Item) error) error
}

// LayersAtOnce is how many layers of a request are read at the same time,
// started in order: the host may feed each through a pipe as it
// downloads, and decompression is the costliest step.
const LayersAtOnce = 4

// AnalyzeItems streams every layer of req through the selected
// extractors, up to LayersAtOnce at once, started in order. The layers'
// file descriptors are closed when read. A layer over a limit ends the
// request (ResourceExhausted: the image is refused); another broken layer
// ends only itself (no LayerEnd, so the host caches nothing of it).
func (a LayerAnalyzer) AnalyzeItems(ctx context.Context, req Request, send func(Item) error) error {
	if len(req.Layers) == 0 {
		return fmt.Errorf("sdk: %s reads layers and the request names none (its manifest must say \"input\": \"layers\")", a.Set.Name)
	}
	if _, err := a.Set.Select(req.Extractors); err != nil {
		return err
	}
	files := make([]*os.File, len(req.Layers))
	for i, ly := range req.Layers {
		if files[i] = openFD(ly.FD, ly.Digest); files[i] == nil {
			for _, f := range files[:i] {
				f.Close()
			}
			return fmt.Errorf("sdk: layer %d (%s): no such file descriptor %d", ly.Index, ly.Digest, ly.FD)
		}
	}
	// Layers never started (the request ended early) are closed too.
	started := make([]bool, len(req.Layers))
	defer func() {
		for i, f := range files {
			if !started[i] {
				f.Close()
			}
		}
	}()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var sendMu sync.Mutex
	sendOne := func(it Item) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return send(it)
	}
	b := newBudget(req.LayerLimits)
	var (
		mu    sync.Mutex
		errs  []error
		fatal error
		wg    sync.WaitGroup
		slots = make(chan struct{}, LayersAtOnce)
	)
	for i, ly := range req.Layers {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		started[i] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			exs, _ := a.Set.Select(req.Extractors)
			start := time.Now()
			err := extractLayer(ctx, files[i], ly, exs, b, sendOne)
			// Closed at once: a host feeding the layer through a pipe
			// as it downloads must not wait for the other layers.
			files[i].Close()
			slog.Debug("layer read", "layer", ly.Index, "digest", ly.Digest, "took", time.Since(start).Round(time.Millisecond), "err", err)
			if err == nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, ErrLayerLimit):
				// The image is refused: the rest is not read, and the
				// host is told it was a limit, not a broken plugin.
				if fatal == nil || !errors.Is(fatal, ErrLayerLimit) {
					fatal = err
				}
				cancel(err)
			case errors.Is(err, errSend):
				if fatal == nil {
					fatal = err
				}
				cancel(err)
			case ctx.Err() == nil:
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	switch {
	case fatal != nil && errors.Is(fatal, ErrLayerLimit):
		return status.Error(codes.ResourceExhausted, fatal.Error())
	case fatal != nil:
		return fatal
	case context.Cause(ctx) != nil:
		return context.Cause(ctx)
	}
	return errors.Join(errs...)
}
