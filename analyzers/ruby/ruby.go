package ruby

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
	Name    = "ruby"
	Version = "0.1.0"
)

// Ecosystem is the OSV ecosystem of the packages reported.
const Ecosystem = "RubyGems"

// DpkgInfoDir holds the dpkg file lists (<package>.list) read for Owner.
const DpkgInfoDir = dpkgowner.InfoDir

// Bounds the analyzer applies when the request sets none (zero).
// Specifications are a few KB (a long file list makes some a few hundred),
// dpkg file lists at most a few MB.
const (
	DefaultMaxFileBytes = 64 << 20
	DefaultMaxFiles     = 2_000_000
)

// Analyzer is the Ruby analyzer. Its zero value is ready to use.
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

// Analyze implements sdk.Analyzer: it emits the gems installed in the
// image. An image without any yields nothing and no warning.
func (Analyzer) Analyze(ctx context.Context, req sdk.Request, emit sdk.Emitter) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ruby: %w", err)
	}
	root, err := os.OpenRoot(req.Root)
	if err != nil {
		return fmt.Errorf("ruby: opening the image root: %w", err)
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
		Root: root, MaxBytes: a.maxBytes, MaxFiles: a.maxFiles, What: "gems",
		Keep: func(p string) bool { return strings.HasSuffix(p, ".gemspec") },
		Warn: a.warn,
	}
	if err := a.run(); err != nil {
		return a.stats, fmt.Errorf("ruby: %w", err)
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
	Specs     int   // specifications read
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
		if d.IsDir() || !IsSpecification(name) {
			return nil // directories are walked; links to them are not followed
		}
		// A link is resolved inside the image; a FIFO or device is
		// refused (with a warning) before it is opened.
		return a.specification("/" + name)
	})
	if errors.Is(err, imageroot.ErrTooManyEntries) {
		err = a.warn("", "more than %d entries in the image: only the first %d were looked at", a.maxFiles, a.maxFiles)
	}
	if err != nil {
		return err
	}
	a.stats.Lists = a.lists.Read
	slog.InfoContext(a.ctx, "ruby: inventory done",
		"entries", a.stats.Entries, "specifications", a.stats.Specs, "malformed", a.stats.Malformed,
		"dpkg_lists", a.stats.Lists, "packages", a.stats.Packages, "owned", a.stats.Owned)
	return a.warned.Flush()
}

// IsSpecification tells whether an image path names an installed gem's
// specification: a NAME.gemspec file in a directory named specifications
// (GEM_HOME/specifications: /usr/lib/ruby/gems/3.1.0/specifications,
// /var/lib/gems/3.1.0/specifications, /usr/local/bundle/specifications,
// vendor/bundle/ruby/3.1.0/specifications, Debian's
// /usr/share/rubygems-integration/all/specifications) or in its default
// subdirectory (the default gems that come with Ruby).
func IsSpecification(name string) bool {
	dir, base := path.Split(path.Clean("/" + name))
	if !strings.HasSuffix(base, ".gemspec") || len(base) == len(".gemspec") {
		return false
	}
	dir = path.Clean(dir)
	if path.Base(dir) == "default" {
		dir = path.Dir(dir)
	}
	return path.Base(dir) == "specifications"
}

// warn sends a warning, up to warncap.Max per analysis.
func (a *analysis) warn(path, format string, args ...any) error {
	return a.warned.Warn(path, format, args...)
}

// specification reads one specification (an image path) and emits its
// gem. Only errors that must stop the analysis (cancellation, the host
// gone) are returned; anything wrong with the file is a warning.
func (a *analysis) specification(name string) error {
	f, fi, err := imageroot.OpenRegular(a.root, name, a.maxBytes)
	switch {
	case err == nil:
	case errors.Is(err, imageroot.ErrTooLarge):
		return a.warn(name, "skipped: %d bytes, over the limit of %d bytes per file", fi.Size(), a.maxBytes)
	case errors.Is(err, fs.ErrNotExist) && !a.exists(name):
		return nil // removed since it was listed
	default:
		return a.warn(name, "skipped: %v", err)
	}
	defer f.Close()
	a.stats.Specs++
	g, err := ParseGemspec(imageroot.Limit(f, a.maxBytes))
	if err != nil {
		if errors.Is(err, ErrMalformed) {
			a.stats.Malformed++
		}
		return a.warn(name, "skipped: %v", err)
	}
	owner, err := a.lists.Owner(a.ctx, name)
	if err != nil {
		return err
	}
	if owner != "" {
		a.stats.Owned++
	}
	a.stats.Packages++
	return a.emit.Package(sdk.Package{
		Ecosystem: Ecosystem,
		Name:      g.Name,
		Version:   g.Version,
		PURL:      purl(g),
		Owner:     owner,
		Locations: []string{warncap.ValidUTF8(name)},
	})
}

// exists tells a missing file from a link that leads nowhere inside the
// image (or a loop).
func (a *analysis) exists(name string) bool {
	_, err := a.root.Lstat(strings.TrimPrefix(name, "/"))
	return !errors.Is(err, fs.ErrNotExist)
}

// purl returns pkg:gem/<name>@<version>, with the platform qualifier
// when the gem is built for one (the purl specification's gem type).
func purl(g Gemspec) string {
	var q packageurl.Qualifiers
	if g.Platform != "" && g.Platform != PlatformRuby {
		q = packageurl.Qualifiers{{Key: "platform", Value: g.Platform}}
	}
	return packageurl.NewPackageURL(packageurl.TypeGem, "", g.Name, g.Version, q, "").ToString()
}
