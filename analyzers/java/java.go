package java

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

	"github.com/assayhq/assay/analyzers/imageroot"
	"github.com/assayhq/assay/analyzers/warncap"
	"github.com/assayhq/assay/plugins/sdk"
)

// Name and Version are what the plugin describes itself as; its manifest
// must say the same.
const (
	Name    = "java"
	Version = "0.1.0"
)

// Ecosystem is the OSV ecosystem of the packages reported.
const Ecosystem = "Maven"

// Bounds the analyzer applies when the request sets none (zero), and its
// own bounds on what is inside an archive.
const (
	DefaultMaxFileBytes = 64 << 20
	DefaultMaxFiles     = 2_000_000

	// MaxDepth is how deep archives inside archives are read: an
	// archive of the image is depth 0, a jar in a war depth 1, a jar in
	// a war in an ear depth 2, and one more level is allowed.
	MaxDepth = 3
	// MaxMetadataBytes bounds one pom.properties or MANIFEST.MF (a few
	// hundred bytes to a few tens of KB in practice).
	MaxMetadataBytes = 1 << 20
	// MaxArchiveEntries bounds the entries of one archive of the image,
	// those of the archives nested in it included.
	MaxArchiveEntries = 250_000
	// ArchiveBytesFactor bounds the bytes decompressed from one archive
	// of the image, nested archives included: this many times
	// MaxFileBytes.
	ArchiveBytesFactor = 4
)

// skipDirs are the top-level directories not walked: kernel file systems
// in a running container, empty in an image.
var skipDirs = map[string]bool{"proc": true, "sys": true, "dev": true}

// archiveExts are the file name extensions of Java archives: jar, war
// (web), ear (enterprise), jpi and hpi (Jenkins plugins), par and sar
// (JBoss/WildFly persistence and service archives).
var archiveExts = map[string]bool{".jar": true, ".war": true, ".ear": true, ".jpi": true, ".hpi": true, ".par": true, ".sar": true}

// IsArchive tells whether a file name has a Java archive's extension
// (case ignored).
func IsArchive(name string) bool {
	return archiveExts[strings.ToLower(path.Ext(name))]
}

// Analyzer is the Java analyzer. Its zero value is ready to use.
type Analyzer struct{}

var _ sdk.Analyzer = Analyzer{}

// Describe implements sdk.Analyzer.
func (Analyzer) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{
		Name:       Name,
		Version:    Version,
		Kinds:      []string{sdk.KindPackage},
		Ecosystems: []string{Ecosystem},
		// Nested archives are read into memory: up to MaxDepth of
		// them at MaxFileBytes each, plus the zip directories.
		Resources: sdk.Resources{MemoryBytes: 512 << 20, Pids: 16, Timeout: 10 * time.Minute},
	}, nil
}

// Analyze implements sdk.Analyzer: it emits the Maven artifacts in the
// Java archives of the image. An image without any yields nothing and no
// warning.
func (Analyzer) Analyze(ctx context.Context, req sdk.Request, emit sdk.Emitter) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("java: %w", err)
	}
	root, err := os.OpenRoot(req.Root)
	if err != nil {
		return fmt.Errorf("java: %w", err)
	}
	defer root.Close()
	_, err = analyze(ctx, root, newLimits(req), emit)
	return err
}

// limits are the bounds of one analysis.
type limits struct {
	files     int64 // entries of the image walked
	fileBytes int64 // size of an archive of the image, and of a nested one
	metaBytes int64 // size of a pom.properties or MANIFEST.MF
	depth     int   // nesting levels read
	entries   int64 // entries per archive of the image, nested ones included
	bytes     int64 // bytes decompressed per archive of the image, nested ones included
}

func newLimits(req sdk.Request) limits {
	l := limits{files: req.MaxFiles, fileBytes: req.MaxFileBytes, depth: MaxDepth, entries: MaxArchiveEntries}
	if l.files <= 0 {
		l.files = DefaultMaxFiles
	}
	if l.fileBytes <= 0 {
		l.fileBytes = DefaultMaxFileBytes
	}
	l.metaBytes = min(l.fileBytes, MaxMetadataBytes)
	l.bytes = ArchiveBytesFactor * l.fileBytes
	return l
}

// analyze is Analyze on an open root; it also returns what it counted.
func analyze(ctx context.Context, root *os.Root, lim limits, emit sdk.Emitter) (stats, error) {
	a := &analysis{
		ctx:    ctx,
		root:   root,
		emit:   emit,
		lim:    lim,
		warned: warncap.Capped{Emit: emit},
		done:   map[string]bool{},
	}
	if err := a.run(); err != nil {
		return a.stats, fmt.Errorf("java: %w", err)
	}
	return a.stats, nil
}

// analysis is one run of Analyze.
type analysis struct {
	ctx  context.Context
	root *os.Root
	emit sdk.Emitter
	lim  limits

	// done holds the archives of the image read so far (paths relative
	// to the root, free of links), so that an archive reached through a
	// link and by the walk is read once.
	done map[string]bool

	warned warncap.Capped
	stats  stats
}

// stats counts what one analysis saw, for the log (and the tests).
type stats struct {
	Entries      int64 // entries of the image walked
	Archives     int   // archives of the image opened
	Nested       int   // archives read from inside others
	Malformed    int   // archives, pom.properties and manifests skipped as malformed
	FromManifest int   // packages named by a manifest alone
	Unidentified int   // archives that named no artifact
	Refused      int   // archives or entries refused by a limit
	Packages     int
}

func (a *analysis) run() error {
	err := imageroot.Walk(a.ctx, a.root, imageroot.WalkOptions{MaxEntries: a.lim.files}, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			// A directory that could not be listed (in full): its
			// entries (the rest of them) are not looked at.
			return a.warn("/"+name, "skipped: %v", err)
		}
		a.stats.Entries++
		if d.IsDir() {
			if skipDirs[name] {
				return fs.SkipDir
			}
			return nil
		}
		if !IsArchive(name) {
			return nil
		}
		switch t := d.Type(); {
		case t.IsRegular():
			return a.archive(name)
		case t&fs.ModeSymlink != 0:
			return a.link(name)
		}
		return nil // a FIFO, device or socket named like an archive
	})
	if errors.Is(err, imageroot.ErrTooManyEntries) {
		err = a.warn("", "more than %d entries in the image: only the first %d were looked at", a.lim.files, a.lim.files)
	}
	if err != nil {
		return err
	}
	slog.InfoContext(a.ctx, "java: inventory done",
		"entries", a.stats.Entries, "archives", a.stats.Archives, "nested", a.stats.Nested,
		"malformed", a.stats.Malformed, "from_manifest", a.stats.FromManifest,
		"unidentified", a.stats.Unidentified, "refused", a.stats.Refused, "packages", a.stats.Packages)
	return a.warned.Flush()
}

// warn sends a warning, up to warncap.Max per analysis.
func (a *analysis) warn(path, format string, args ...any) error {
	return a.warned.Warn(path, format, args...)
}

// link reads the archive a symbolic link named like one designates,
// resolved inside the image (an absolute target is the image's file,
// never the host's). A link to an archive the walk reaches anyway is read
// once, under the target's path; a link that leads nowhere is not an
// archive and is skipped without a warning, a loop with one.
func (a *analysis) link(name string) error {
	target, err := imageroot.Resolve(a.root, name)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
		return nil
	default:
		return a.warn("/"+name, "skipped: %v", err)
	}
	if target == "." || skipDirs[strings.SplitN(target, "/", 2)[0]] {
		return nil
	}
	return a.archive(target)
}

// archive reads the archive name (relative to the root, free of links)
// unless it was read already. Only errors that must stop the analysis
// (cancellation, the host gone) are returned; anything wrong with the
// archive is a warning.
func (a *analysis) archive(name string) error {
	if a.done[name] {
		return nil
	}
	a.done[name] = true
	loc := "/" + name
	f, fi, err := imageroot.OpenRegular(a.root, loc, a.lim.fileBytes)
	switch {
	case err == nil:
	case errors.Is(err, imageroot.ErrTooLarge):
		a.stats.Refused++
		return a.warn(loc, "skipped: %d bytes, over the limit of %d bytes per file", fi.Size(), a.lim.fileBytes)
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, imageroot.ErrNotRegular):
		return nil // removed since listed, or a link to a directory
	default:
		return a.warn(loc, "skipped: %v", err)
	}
	defer f.Close()
	a.stats.Archives++
	r := &reading{
		budget: budget{entries: a.lim.entries, bytes: a.lim.bytes},
		seen:   map[string]bool{},
	}
	return a.readArchive(r, f, fi.Size(), loc, 0)
}
