package dpkg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/package-url/packageurl-go"

	"github.com/assayhq/assay/analyzers/imageroot"
	"github.com/assayhq/assay/analyzers/osrelease"
	"github.com/assayhq/assay/analyzers/warncap"
	"github.com/assayhq/assay/plugins/sdk"
)

// Name and Version are what the plugin describes itself as; its manifest
// must say the same.
const (
	Name    = "dpkg"
	Version = "0.1.0"
)

// The dpkg database files the analyzer reads, as image paths.
const (
	StatusFile = "/var/lib/dpkg/status"
	StatusDir  = "/var/lib/dpkg/status.d"
)

// Bounds the analyzer applies when the request sets none (zero). Real
// status files are a few MB and distroless status.d directories hold tens
// of files; these only stop a hostile image.
const (
	DefaultMaxFileBytes = 64 << 20
	DefaultMaxFiles     = 100_000
)

// Analyzer is the dpkg analyzer. Its zero value is ready to use.
type Analyzer struct{}

var _ sdk.Analyzer = Analyzer{}

// Describe implements sdk.Analyzer.
func (Analyzer) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{
		Name:       Name,
		Version:    Version,
		Kinds:      []string{sdk.KindPackage},
		Ecosystems: []string{"Debian", "Ubuntu"},
		Resources:  sdk.Resources{MemoryBytes: 128 << 20, Pids: 16, Timeout: time.Minute},
	}, nil
}

// Analyze implements sdk.Analyzer: it emits one package per installed
// package of the image's dpkg database, /var/lib/dpkg/status and the
// files of /var/lib/dpkg/status.d. An image without either yields
// nothing and no warning.
func (Analyzer) Analyze(ctx context.Context, req sdk.Request, emit sdk.Emitter) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dpkg: %w", err)
	}
	root, err := os.OpenRoot(req.Root)
	if err != nil {
		return fmt.Errorf("dpkg: %w", err)
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
	if err := a.run(); err != nil {
		return a.stats, fmt.Errorf("dpkg: %w", err)
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

	distro *distro // read when the first package is found
	warned warncap.Capped
	stats  stats
}

// stats counts what one analysis saw, for the log (and the tests).
type stats struct {
	Packages int
	// NotInstalled counts the paragraphs skipped because the package is
	// not installed, by dpkg state ("config-files", "half-installed";
	// "no-status" for a status-file paragraph without a Status field).
	NotInstalled map[string]int
	// Malformed counts the paragraphs skipped because they could not be
	// parsed or lacked a valid Package or Version.
	Malformed int
	// Files counts the database files read.
	Files int
}

func (a *analysis) run() error {
	a.stats.NotInstalled = map[string]int{}
	t := &tally{path: StatusFile}
	if err := a.file(StatusFile, t, false); err != nil {
		return err
	}
	if err := a.report(t); err != nil {
		return err
	}
	if err := a.statusDir(); err != nil {
		return err
	}
	slog.InfoContext(a.ctx, "dpkg: inventory done",
		"packages", a.stats.Packages, "files", a.stats.Files,
		"not_installed", a.stats.NotInstalled, "malformed", a.stats.Malformed)
	return a.warned.Flush()
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

// warn sends a warning, up to warncap.Max per analysis.
func (a *analysis) warn(path, format string, args ...any) error {
	return a.warned.Warn(path, format, args...)
}

// exists tells a missing file (nothing to report: the image has no dpkg
// database) from a link that leads nowhere inside the image (a warning).
func (a *analysis) exists(name string) bool {
	_, err := a.root.Lstat(strings.TrimPrefix(name, "/"))
	return !errors.Is(err, fs.ErrNotExist)
}

// file reads one database file. Only errors that must stop the analysis
// (cancellation, the host gone) are returned; anything wrong with the file
// is a warning.
func (a *analysis) file(name string, t *tally, inStatusDir bool) error {
	if err := a.ctx.Err(); err != nil {
		return err
	}
	f, fi, err := imageroot.OpenRegular(a.root, name, a.maxBytes)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist) && !a.exists(name):
		return nil
	case errors.Is(err, imageroot.ErrTooLarge):
		return a.warn(name, "skipped: %d bytes, over the limit of %d bytes per file", fi.Size(), a.maxBytes)
	case errors.Is(err, fs.ErrNotExist):
		return a.warn(name, "skipped: it does not resolve to a file inside the image: %v", err)
	default:
		return a.warn(name, "skipped: %v", err)
	}
	defer f.Close()
	a.stats.Files++
	before := a.stats.Packages
	var stop error
	err = ParseStatus(imageroot.Limit(f, a.maxBytes), func(p Paragraph) error {
		if err := a.paragraph(name, p, t, inStatusDir); err != nil {
			stop = err
			return err
		}
		return nil
	})
	if stop != nil {
		return stop
	}
	if err != nil {
		return a.warn(name, "read cut short after %d packages: %v", a.stats.Packages-before, err)
	}
	return nil
}

func (a *analysis) paragraph(name string, p Paragraph, t *tally, inStatusDir bool) error {
	if err := a.ctx.Err(); err != nil {
		return err
	}
	if p.Err != nil {
		t.malformed++
		if t.firstMalformed == nil {
			t.firstMalformed = p.Err
		}
		return nil
	}
	e, err := entryFromFields(p.Fields)
	if err != nil {
		t.malformed++
		if t.firstMalformed == nil {
			t.firstMalformed = fmt.Errorf("%w %d: %w", ErrMalformed, p.Index, err)
		}
		return nil
	}
	if e.Status == "" && !inStatusDir {
		// Only distroless status.d files leave Status out.
		a.stats.NotInstalled["no-status"]++
		return nil
	}
	if !e.Installed() {
		st := e.state()
		a.stats.NotInstalled[st]++
		if st != "not-installed" && st != "config-files" {
			// Files of these may be on disk without being reported.
			if t.unfinished == nil {
				t.unfinished = map[string]int{}
			}
			t.unfinished[st]++
		}
		return nil
	}
	if e.BadSource {
		t.badSource++
	}
	if a.distro == nil {
		if err := a.readDistro(); err != nil {
			return err
		}
	}
	a.stats.Packages++
	return a.emit.Package(sdk.Package{
		Ecosystem:     a.distro.ecosystem,
		Name:          e.Package,
		Version:       e.Version,
		PURL:          a.distro.purl(e),
		SourceName:    e.SourceName,
		SourceVersion: e.SourceVersion,
		Locations:     []string{warncap.ValidUTF8(name)},
	})
}

// report emits one warning for each kind of thing a file (or status.d)
// had that was not reported.
func (a *analysis) report(t *tally) error {
	a.stats.Malformed += t.malformed
	if t.malformed > 0 {
		if err := a.warn(t.path, "malformed paragraphs skipped: %d (the first: %v)", t.malformed, t.firstMalformed); err != nil {
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
		if err := a.warn(t.path, "packages not fully installed, not reported though some of their files may be on disk: %d (%s)", n, strings.Join(parts, ", ")); err != nil {
			return err
		}
	}
	if t.badSource > 0 {
		return a.warn(t.path, "packages with a Source field that could not be parsed, reported with the binary package as their source: %d", t.badSource)
	}
	return nil
}

// statusDir reads the distroless /var/lib/dpkg/status.d: one file per
// package (and, beside it, a .md5sums file, which is skipped). At most
// maxFiles entries are looked at, in directory order; they are then read
// in name order.
func (a *analysis) statusDir() error {
	p, err := imageroot.Resolve(a.root, StatusDir)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist) && !a.exists(StatusDir):
		return nil
	default:
		return a.warn(StatusDir, "skipped: %v", err)
	}
	d, err := a.root.Open(p)
	if err != nil {
		return a.warn(StatusDir, "skipped: %v", err)
	}
	defer d.Close()
	if fi, err := d.Stat(); err != nil || !fi.IsDir() {
		return a.warn(StatusDir, "skipped: not a directory")
	}
	var names []string
	var seen int64
	more := false
	for !more {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		ents, err := d.ReadDir(256)
		for _, e := range ents {
			if seen >= a.maxFiles {
				more = true
				break
			}
			seen++
			if n := e.Name(); !strings.HasSuffix(n, ".md5sums") {
				names = append(names, n)
			}
		}
		if err == io.EOF || (err == nil && len(ents) == 0) {
			break
		}
		if err != nil {
			if werr := a.warn(StatusDir, "listing cut short: %v", err); werr != nil {
				return werr
			}
			break
		}
	}
	if more {
		if err := a.warn(StatusDir, "more than %d entries: only the first %d (in directory order) were looked at", a.maxFiles, a.maxFiles); err != nil {
			return err
		}
	}
	slices.Sort(names)
	t := &tally{path: StatusDir}
	for _, n := range names {
		if err := a.file(path.Join(StatusDir, n), t, true); err != nil {
			return err
		}
	}
	return a.report(t)
}

// distro is what the packages' ecosystem and purl take from os-release.
type distro struct {
	ecosystem string // "Debian:12"
	namespace string // the purl namespace: "debian"
	qualifier string // the purl distro qualifier: "debian-12"
}

// readDistro reads os-release. Without a usable one, the packages are
// reported as Debian's, without a release, and a warning says so.
func (a *analysis) readDistro() error {
	a.distro = &distro{ecosystem: "Debian", namespace: "debian"}
	rel, err := osrelease.Read(a.root, a.maxBytes)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return a.warn("", "no os-release (%s): dpkg packages are reported as ecosystem %q, without a release", strings.Join(osrelease.Paths, ", "), a.distro.ecosystem)
	case err != nil:
		return a.warn(rel.Path, "os-release unreadable (%v): dpkg packages are reported as ecosystem %q, without a release", err, a.distro.ecosystem)
	case rel.ID == "":
		return a.warn(rel.Path, "os-release has no ID: dpkg packages are reported as ecosystem %q, without a release", a.distro.ecosystem)
	}
	a.distro.ecosystem = rel.Ecosystem()
	a.distro.namespace = rel.ID
	if rel.VersionID != "" {
		a.distro.qualifier = rel.ID + "-" + rel.VersionID
	}
	return nil
}

// purl returns the package URL of e, as the purl specification's deb type
// says: pkg:deb/<distribution>/<name>@<version>?arch=<arch>&distro=<id>-<version-id>.
func (d *distro) purl(e Entry) string {
	q := map[string]string{}
	if e.Architecture != "" {
		q["arch"] = e.Architecture
	}
	if d.qualifier != "" {
		q["distro"] = d.qualifier
	}
	return packageurl.NewPackageURL(packageurl.TypeDebian, d.namespace, e.Package, e.Version, packageurl.QualifiersFromMap(q), "").ToString()
}
