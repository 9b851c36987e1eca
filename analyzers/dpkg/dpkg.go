package dpkg

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"path"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/assayhq/assay/plugins/sdk"
)

// Name and Version identify the extractor; results are cached per layer
// under them.
const (
	Name    = "dpkg"
	Version = "0.2.0"
)

// The dpkg database files the extractor reads, as image paths.
const (
	StatusFile = "/var/lib/dpkg/status"
	StatusDir  = "/var/lib/dpkg/status.d"
	InfoDir    = "/var/lib/dpkg/info"
)

// Bounds of the extractor. Real status files are a few MB, distroless
// status.d directories hold tens of files and a Debian image's file lists
// name thousands of paths; these only stop a hostile layer.
const (
	DefaultMaxFileBytes = 64 << 20
	// DefaultMaxFiles is how many status.d files one layer may have read.
	DefaultMaxFiles = 100_000
	// MaxOwnedPaths is how many file list paths one layer may send.
	MaxOwnedPaths = 200_000
	// maxListLine bounds a line of a file list; a longer one ends the
	// list's reading.
	maxListLine = 64 << 10
	// ownedChunk is how many paths one OwnedFiles item carries: a long
	// list comes in several items, so no message nor buffer is large.
	ownedChunk = 4096
)

// Extractor reads the dpkg database files of one layer. Make it with
// NewExtractor: it keeps state over the files of one layer.
type Extractor struct {
	maxFiles int   // status.d files read at most
	maxOwned int   // file list paths sent at most
	dir      tally // all status.d files of the layer, reported by Finish
	dirFiles int   // status.d files offered
	owned    int   // file list paths sent
	cutLists int   // file lists not (fully) sent for MaxOwnedPaths
	stats    stats
}

var (
	_ sdk.Extractor = (*Extractor)(nil)
	_ sdk.Finisher  = (*Extractor)(nil)
)

// NewExtractor returns a fresh dpkg extractor, for one layer.
func NewExtractor() sdk.Extractor { return newExtractor() }

func newExtractor() *Extractor {
	return &Extractor{
		maxFiles: DefaultMaxFiles,
		maxOwned: MaxOwnedPaths,
		dir:      tally{path: StatusDir},
		stats:    stats{NotInstalled: map[string]int{}},
	}
}

// stats counts what one layer had, for the log (and the tests).
type stats struct {
	Packages int
	// NotInstalled counts the paragraphs skipped because the package is
	// not installed, by dpkg state ("config-files", "half-installed";
	// "no-status" for a status-file paragraph without a Status field).
	NotInstalled map[string]int
	// Malformed counts the paragraphs skipped because they could not be
	// parsed or lacked a valid Package or Version.
	Malformed int
	// Files counts the database files read; Lists the file lists.
	Files, Lists int
}

// Name implements sdk.Extractor.
func (*Extractor) Name() string { return Name }

// Version implements sdk.Extractor.
func (*Extractor) Version() string { return Version }

// MaxFileBytes implements sdk.Extractor.
func (*Extractor) MaxFileBytes() int64 { return DefaultMaxFileBytes }

// Required implements sdk.Extractor: regular files only (links are never
// followed, so no link can make another file the status file), at
// StatusFile, directly in StatusDir but for *.md5sums, and the
// InfoDir/*.list file lists.
func (*Extractor) Required(f sdk.FileInfo) bool {
	if !f.Mode.IsRegular() {
		return false
	}
	if f.Path == StatusFile {
		return true
	}
	dir, base := path.Split(f.Path)
	switch path.Clean(dir) {
	case StatusDir:
		return !strings.HasSuffix(base, ".md5sums")
	case InfoDir:
		return strings.HasSuffix(base, ".list")
	}
	return false
}

// Extract implements sdk.Extractor.
func (e *Extractor) Extract(ctx context.Context, f sdk.FileInfo, r io.Reader, out sdk.Output) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dpkg: %w", err)
	}
	switch {
	case f.Path == StatusFile:
		t := &tally{path: StatusFile}
		if err := e.file(ctx, f.Path, r, t, false, out); err != nil {
			return err
		}
		return e.report(t, out)
	case path.Dir(f.Path) == StatusDir:
		e.dirFiles++
		if e.dirFiles > e.maxFiles {
			return nil // counted; Finish warns
		}
		return e.file(ctx, f.Path, r, &e.dir, true, out)
	default:
		return e.list(ctx, f.Path, r, out)
	}
}

// Finish implements sdk.Finisher: the warnings about status.d as a whole
// and about the bounds, and the layer's counts in the log.
func (e *Extractor) Finish(ctx context.Context, _ sdk.LayerIndex, out sdk.Output) error {
	if err := e.report(&e.dir, out); err != nil {
		return err
	}
	if e.dirFiles > e.maxFiles {
		if err := out.Warning(sdk.Warning{Path: StatusDir, Message: fmt.Sprintf("more than %d entries: only the first %d (in layer order) were read", e.maxFiles, e.maxFiles)}); err != nil {
			return err
		}
	}
	if e.cutLists > 0 {
		if err := out.Warning(sdk.Warning{Path: InfoDir, Message: fmt.Sprintf("the file lists name more than %d paths: %d lists were not sent in full, so some files get no owner", e.maxOwned, e.cutLists)}); err != nil {
			return err
		}
	}
	if e.stats.Files > 0 || e.stats.Lists > 0 {
		slog.InfoContext(ctx, "dpkg: layer done",
			"packages", e.stats.Packages, "files", e.stats.Files, "lists", e.stats.Lists,
			"not_installed", e.stats.NotInstalled, "malformed", e.stats.Malformed)
	}
	return nil
}

// tally gathers what one database file, or the whole status.d directory,
// had that was not reported, for one warning at the end.
type tally struct {
	path           string
	malformed      int
	firstMalformed error
	unfinished     map[string]int // not fully installed: files may be on disk
	badSource      int
}

// file reads one database file. Only errors that must stop the layer
// (cancellation, the host gone) are returned; anything wrong with the
// file is a warning.
func (e *Extractor) file(ctx context.Context, name string, r io.Reader, t *tally, inStatusDir bool, out sdk.Output) error {
	e.stats.Files++
	before := e.stats.Packages
	var stop error
	err := ParseStatus(r, func(p Paragraph) error {
		if err := e.paragraph(ctx, name, p, t, inStatusDir, out); err != nil {
			stop = err
			return err
		}
		return nil
	})
	if stop != nil {
		return stop
	}
	if err != nil {
		return out.Warning(sdk.Warning{Path: name, Message: fmt.Sprintf("read cut short after %d packages: %v", e.stats.Packages-before, err)})
	}
	return nil
}

func (e *Extractor) paragraph(ctx context.Context, name string, p Paragraph, t *tally, inStatusDir bool, out sdk.Output) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dpkg: %w", err)
	}
	if p.Err != nil {
		t.malformed++
		if t.firstMalformed == nil {
			t.firstMalformed = p.Err
		}
		return nil
	}
	en, err := entryFromFields(p.Fields)
	if err != nil {
		t.malformed++
		if t.firstMalformed == nil {
			t.firstMalformed = fmt.Errorf("%w %d: %w", ErrMalformed, p.Index, err)
		}
		return nil
	}
	if en.Status == "" && !inStatusDir {
		// Only distroless status.d files leave Status out.
		e.stats.NotInstalled["no-status"]++
		return nil
	}
	if !en.Installed() {
		st := en.state()
		e.stats.NotInstalled[st]++
		if st != "not-installed" && st != "config-files" {
			// Files of these may be on disk without being reported.
			if t.unfinished == nil {
				t.unfinished = map[string]int{}
			}
			t.unfinished[st]++
		}
		return nil
	}
	if en.BadSource {
		t.badSource++
	}
	e.stats.Packages++
	// The ecosystem's release and the purl come from the image's
	// os-release, which the merge reads (analyzers/distro.Finish).
	return out.Package(sdk.Package{
		OS:            "dpkg",
		Ecosystem:     "Debian",
		Name:          en.Package,
		Version:       en.Version,
		Arch:          en.Architecture,
		SourceName:    en.SourceName,
		SourceVersion: en.SourceVersion,
		Locations:     []string{strings.ToValidUTF8(name, "\uFFFD")},
	})
}

// report emits one warning for each kind of thing a file (or status.d)
// had that was not reported.
func (e *Extractor) report(t *tally, out sdk.Output) error {
	e.stats.Malformed += t.malformed
	if t.malformed > 0 {
		if err := out.Warning(sdk.Warning{Path: t.path, Message: fmt.Sprintf("malformed paragraphs skipped: %d (the first: %v)", t.malformed, t.firstMalformed)}); err != nil {
			return err
		}
	}
	if len(t.unfinished) > 0 {
		n := 0
		var parts []string
		for _, st := range slices.Sorted(maps.Keys(t.unfinished)) {
			n += t.unfinished[st]
			parts = append(parts, fmt.Sprintf("%s: %d", st, t.unfinished[st]))
		}
		if err := out.Warning(sdk.Warning{Path: t.path, Message: fmt.Sprintf("packages not fully installed, not reported though some of their files may be on disk: %d (%s)", n, strings.Join(parts, ", "))}); err != nil {
			return err
		}
	}
	if t.badSource > 0 {
		return out.Warning(sdk.Warning{Path: t.path, Message: fmt.Sprintf("packages with a Source field that could not be parsed, reported with the binary package as their source: %d", t.badSource)})
	}
	return nil
}

var errListName = errors.New(`dpkg: the file name is not "<package>[:<arch>].list"; skipped`)

// list sends the file list InfoDir/<package>[:<arch>].list as OwnedFiles
// items of at most ownedChunk paths, up to maxOwned paths per layer.
func (e *Extractor) list(ctx context.Context, name string, r io.Reader, out sdk.Output) error {
	pkg, arch, multiArch := strings.Cut(strings.TrimSuffix(path.Base(name), ".list"), ":")
	if !validName(pkg) || (multiArch && !validArch(arch)) {
		// Owner and Location must be names the merge can trust (and
		// valid UTF-8, as the protocol wants).
		return errListName
	}
	e.stats.Lists++
	if e.owned >= e.maxOwned {
		e.cutLists++
		return nil
	}
	var paths []string
	flush := func() error {
		if len(paths) == 0 {
			return nil
		}
		err := out.OwnedFiles(sdk.OwnedFiles{OS: "dpkg", Owner: pkg, Location: name, Paths: paths})
		paths = nil
		return err
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxListLine)
	bad, n := 0, 0
	for sc.Scan() {
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("dpkg: %w", err)
			}
		}
		line := sc.Text()
		if line == "" || line == "/." {
			continue // dpkg lists the root as "/."
		}
		if len(line) > sdk.MaxPathBytes || !utf8.ValidString(line) {
			// No layer entry has such a name (the framework skips
			// longer ones), and the protocol carries only UTF-8.
			bad++
			continue
		}
		p := path.Clean("/" + line)
		if p == "/" {
			continue
		}
		if e.owned >= e.maxOwned {
			e.cutLists++
			break
		}
		paths = append(paths, p)
		e.owned++
		if len(paths) == ownedChunk {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if bad > 0 {
		if err := out.Warning(sdk.Warning{Path: name, Message: fmt.Sprintf("%d lines skipped: longer than %d bytes or not valid UTF-8", bad, sdk.MaxPathBytes)}); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return out.Warning(sdk.Warning{Path: name, Message: fmt.Sprintf("read cut short: %v: some of its files get no owner", err)})
	}
	return nil
}
