package java

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"path"
	"strings"
	"time"

	"github.com/assayhq/assay/plugins/sdk"
)

// Name and Version are what the extractor (and its plugin) describes
// itself as; the plugin's manifest must say the same.
const (
	Name    = "java"
	Version = "0.2.0"
)

// Ecosystem is the OSV ecosystem of the packages reported.
const Ecosystem = "Maven"

// Bounds of the extractor: the file size cap it asks the framework for,
// and its own bounds on what is inside an archive.
const (
	// DefaultMaxFileBytes is the largest archive of the image read (the
	// framework skips bigger ones with a warning), and the largest
	// nested archive read into memory.
	DefaultMaxFileBytes = 64 << 20

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
	// DefaultMaxFileBytes.
	ArchiveBytesFactor = 4
)

// Resources are what the plugin would like: an archive of the image and
// up to MaxDepth nested ones are held in memory at once, at up to
// DefaultMaxFileBytes each, plus their zip directories.
var Resources = sdk.Resources{MemoryBytes: 512 << 20, Pids: 16, Timeout: 10 * time.Minute}

// skipDirs are the top-level directories whose archives are not read:
// kernel file systems in a running container, empty in an image.
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

// Extractor is the Java extractor: one for one layer (NewExtractor).
type Extractor struct {
	lim   limits
	stats stats // over the layer, for the log (and the tests)
}

var (
	_ sdk.Extractor = (*Extractor)(nil)
	_ sdk.Finisher  = (*Extractor)(nil)
)

// NewExtractor returns a fresh Java extractor.
func NewExtractor() sdk.Extractor { return newExtractor(newLimits()) }

func newExtractor(lim limits) *Extractor { return &Extractor{lim: lim} }

// Name implements sdk.Extractor.
func (*Extractor) Name() string { return Name }

// Version implements sdk.Extractor.
func (*Extractor) Version() string { return Version }

// MaxFileBytes implements sdk.Extractor: archives of the image are read
// into memory (zip needs random access), so this bounds that memory.
func (e *Extractor) MaxFileBytes() int64 { return e.lim.fileBytes }

// Required implements sdk.Extractor: regular files named like a Java
// archive, outside /proc, /sys and /dev. Symbolic links are not wanted:
// the file they lead to is read under its own path, when it is a regular
// file named like an archive.
func (*Extractor) Required(f sdk.FileInfo) bool {
	if !f.Mode.IsRegular() || !IsArchive(f.Path) {
		return false
	}
	top, _, _ := strings.Cut(strings.TrimPrefix(f.Path, "/"), "/")
	return !skipDirs[top]
}

// Extract implements sdk.Extractor: it reads the archive into memory and
// emits the Maven artifacts in it and in the archives nested in it.
// Anything wrong with the archive is a warning; only cancellation, a
// short stream and a failure to send are errors.
func (e *Extractor) Extract(ctx context.Context, f sdk.FileInfo, r io.Reader, out sdk.Output) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("java: %w", err)
	}
	// The framework never offers more than MaxFileBytes (or the
	// request's override of it), and r yields at most f.Size bytes.
	if f.Size < 0 {
		return fmt.Errorf("java: negative size %d", f.Size)
	}
	data := make([]byte, f.Size)
	if _, err := io.ReadFull(r, data); err != nil {
		return fmt.Errorf("java: reading the archive: %w", err)
	}
	e.stats.Archives++
	a := &analysis{ctx: ctx, out: out, lim: e.lim, stats: &e.stats}
	rd := &reading{
		budget: budget{entries: e.lim.entries, bytes: e.lim.bytes},
		seen:   map[string]bool{},
	}
	if err := a.readArchive(rd, bytes.NewReader(data), int64(len(data)), f.Path, 0); err != nil {
		return fmt.Errorf("java: %w", err)
	}
	return nil
}

// Finish implements sdk.Finisher: it logs what the layer's archives held.
func (e *Extractor) Finish(ctx context.Context, _ sdk.LayerIndex, _ sdk.Output) error {
	if e.stats.Archives == 0 {
		return nil
	}
	s := e.stats
	slog.InfoContext(ctx, "java: layer done",
		"archives", s.Archives, "nested", s.Nested, "malformed", s.Malformed,
		"from_manifest", s.FromManifest, "unidentified", s.Unidentified,
		"refused", s.Refused, "packages", s.Packages)
	return nil
}

// limits are the bounds of one extractor.
type limits struct {
	fileBytes int64 // size of an archive of the image, and of a nested one
	metaBytes int64 // size of a pom.properties or MANIFEST.MF
	depth     int   // nesting levels read
	entries   int64 // entries per archive of the image, nested ones included
	bytes     int64 // bytes decompressed per archive of the image, nested ones included
}

func newLimits() limits {
	return limits{
		fileBytes: DefaultMaxFileBytes,
		metaBytes: min(DefaultMaxFileBytes, MaxMetadataBytes),
		depth:     MaxDepth,
		entries:   MaxArchiveEntries,
		bytes:     ArchiveBytesFactor * DefaultMaxFileBytes,
	}
}

// analysis is the reading of one archive of the image.
type analysis struct {
	ctx   context.Context
	out   sdk.Output
	lim   limits
	stats *stats
}

// stats counts what an extractor saw.
type stats struct {
	Archives     int // archives of the image opened
	Nested       int // archives read from inside others
	Malformed    int // archives, pom.properties and manifests skipped as malformed
	FromManifest int // packages named by a manifest alone
	Unidentified int // archives that named no artifact
	Refused      int // archives or entries refused by a limit
	Packages     int
}

// warn sends a warning about path (the framework caps their number and
// makes them valid UTF-8).
func (a *analysis) warn(path, format string, args ...any) error {
	return a.out.Warning(sdk.Warning{Message: fmt.Sprintf(format, args...), Path: path})
}
