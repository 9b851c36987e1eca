package python

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"strings"
	"time"

	"github.com/package-url/packageurl-go"

	"github.com/assayhq/assay/analyzers/dpkgowner"
	"github.com/assayhq/assay/analyzers/imageroot"
	"github.com/assayhq/assay/analyzers/warncap"
	"github.com/assayhq/assay/plugins/sdk"
)

// Name and Version are what the plugin describes itself as; its manifest
// must say the same.
const (
	Name    = "python"
	Version = "0.1.0"
)

// Ecosystem is the OSV ecosystem of the packages reported.
const Ecosystem = "PyPI"

// DpkgInfoDir holds the dpkg file lists (<package>.list) read for Owner.
const DpkgInfoDir = dpkgowner.InfoDir

// Bounds the analyzer applies when the request sets none (zero). Metadata
// files are a few KB (a long description makes some a few hundred), dpkg
// file lists at most a few MB.
const (
	DefaultMaxFileBytes = 64 << 20
	DefaultMaxFiles     = 2_000_000
)

// Analyzer is the Python analyzer. Its zero value is ready to use.
type Analyzer struct{}

var _ sdk.Analyzer = Analyzer{}

// Describe implements sdk.Analyzer.
func (Analyzer) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{
		Name:       Name,
		Version:    Version,
		Kinds:      []string{sdk.KindPackage},
		Ecosystems: []string{Ecosystem},
		Resources:  sdk.Resources{MemoryBytes: 128 << 20, Pids: 16, Timeout: 5 * time.Minute},
	}, nil
}

// Analyze implements sdk.Analyzer: it emits the Python distributions
// installed in the image. An image without any yields nothing and no
// warning.
func (Analyzer) Analyze(ctx context.Context, req sdk.Request, emit sdk.Emitter) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("python: %w", err)
	}
	root, err := os.OpenRoot(req.Root)
	if err != nil {
		return fmt.Errorf("python: %w", err)
	}
	defer root.Close()
	_, err = analyze(ctx, root, req, emit)
	return err
}

// analyze is Analyze on an open root; it also returns what it counted.
func analyze(ctx context.Context, root *os.Root, req sdk.Request, emit sdk.Emitter) (stats, error) {
	a := &analysis{
		ctx:      ctx,
		root:     root,
		emit:     emit,
		warned:   warncap.Capped{Emit: emit},
		maxBytes: req.MaxFileBytes,
		maxFiles: req.MaxFiles,
	}
	if a.maxBytes <= 0 {
		a.maxBytes = DefaultMaxFileBytes
	}
	if a.maxFiles <= 0 {
		a.maxFiles = DefaultMaxFiles
	}
	a.lists = &dpkgowner.Lists{
		Root: root, MaxBytes: a.maxBytes, MaxFiles: a.maxFiles, What: "Python distributions",
		Keep: func(p string) bool { return strings.HasSuffix(p, ".dist-info") || strings.HasSuffix(p, ".egg-info") },
		Warn: a.warn,
	}
	if err := a.run(); err != nil {
		return a.stats, fmt.Errorf("python: %w", err)
	}
	return a.stats, nil
}

// analysis is one run of Analyze.
type analysis struct {
	ctx      context.Context
	root     *os.Root
	emit     sdk.Emitter
	maxBytes int64
	maxFiles int64

	// lists finds the dpkg package that ships a file (Owner).
	lists *dpkgowner.Lists

	warned warncap.Capped
	stats  stats
}

// stats counts what one analysis saw, for the log (and the tests).
type stats struct {
	Entries   int64 // entries of the image walked
	Metadata  int   // metadata files read
	Malformed int   // of them, skipped as malformed
	Lists     int   // dpkg file lists read
	Packages  int
	Owned     int // packages given an Owner
}

func (a *analysis) run() error {
	err := imageroot.Walk(a.ctx, a.root, imageroot.WalkOptions{MaxEntries: a.maxFiles}, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			// A directory that could not be listed (in full): its
			// entries (the rest of them) are not looked at.
			return a.warn("/"+name, "skipped: %v", err)
		}
		a.stats.Entries++
		meta, isDist := metadataFile(name, d)
		if !isDist {
			return nil // directories are walked; links are not followed
		}
		if err := a.distribution("/"+name, "/"+meta); err != nil {
			return err
		}
		if d.IsDir() {
			return fs.SkipDir // RECORD, top_level.txt, ... are not needed
		}
		return nil
	})
	if errors.Is(err, imageroot.ErrTooManyEntries) {
		err = a.warn("", "more than %d entries in the image: only the first %d were looked at", a.maxFiles, a.maxFiles)
	}
	if err != nil {
		return err
	}
	a.stats.Lists = a.lists.Read
	slog.InfoContext(a.ctx, "python: inventory done",
		"entries", a.stats.Entries, "metadata", a.stats.Metadata, "malformed", a.stats.Malformed,
		"dpkg_lists", a.stats.Lists, "packages", a.stats.Packages, "owned", a.stats.Owned)
	return a.warned.Flush()
}

// metadataFile tells whether the walked entry name (relative to the root)
// is a distribution's metadata directory or file in a site-packages or
// dist-packages directory, and if so returns the metadata file's path.
func metadataFile(name string, d fs.DirEntry) (string, bool) {
	dir, base := path.Split(name)
	if p := path.Base(dir); p != "site-packages" && p != "dist-packages" {
		return "", false
	}
	switch {
	case d.IsDir() && strings.HasSuffix(base, ".dist-info") && len(base) > len(".dist-info"):
		return name + "/METADATA", true
	case d.IsDir() && strings.HasSuffix(base, ".egg-info") && len(base) > len(".egg-info"):
		return name + "/PKG-INFO", true
	case d.Type().IsRegular() && strings.HasSuffix(base, ".egg-info") && len(base) > len(".egg-info"):
		return name, true
	}
	return "", false
}

// warn sends a warning, up to warncap.Max per analysis.
func (a *analysis) warn(path, format string, args ...any) error {
	return a.warned.Warn(path, format, args...)
}

// distribution reads the metadata file meta of the distribution whose
// .dist-info or .egg-info is dist (image paths) and emits its package.
// Only errors that must stop the analysis (cancellation, the host gone)
// are returned; anything wrong with the file is a warning.
func (a *analysis) distribution(dist, meta string) error {
	if err := a.ctx.Err(); err != nil {
		return err
	}
	f, fi, err := imageroot.OpenRegular(a.root, meta, a.maxBytes)
	switch {
	case err == nil:
	case errors.Is(err, imageroot.ErrTooLarge):
		return a.warn(meta, "skipped: %d bytes, over the limit of %d bytes per file", fi.Size(), a.maxBytes)
	case errors.Is(err, fs.ErrNotExist) && !a.exists(meta):
		return a.warn(meta, "skipped: the distribution %s has no metadata file", path.Base(dist))
	default:
		return a.warn(meta, "skipped: %v", err)
	}
	defer f.Close()
	a.stats.Metadata++
	m, err := ParseMetadata(imageroot.Limit(f, a.maxBytes))
	if err != nil {
		if errors.Is(err, ErrMalformed) {
			a.stats.Malformed++
		}
		return a.warn(meta, "skipped: %v", err)
	}
	owner, err := a.lists.Owner(a.ctx, dist)
	if err != nil {
		return err
	}
	if owner != "" {
		a.stats.Owned++
	}
	a.stats.Packages++
	return a.emit.Package(sdk.Package{
		Ecosystem: Ecosystem,
		Name:      m.Name,
		Version:   m.Version,
		PURL:      purl(m.Name, m.Version),
		Owner:     owner,
		Locations: []string{warncap.ValidUTF8(meta)},
	})
}

// exists tells a missing file from a link that leads nowhere inside the
// image (or a loop).
func (a *analysis) exists(name string) bool {
	_, err := a.root.Lstat(strings.TrimPrefix(name, "/"))
	return !errors.Is(err, fs.ErrNotExist)
}

// purl returns pkg:pypi/<PEP 503 name>@<version>.
func purl(name, version string) string {
	return packageurl.NewPackageURL(packageurl.TypePyPi, "", NormalizeName(name), version, nil, "").ToString()
}
