package apk

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
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
	Name    = "apk"
	Version = "0.1.0"
)

// InstalledFile is apk's installed database, as an image path.
const InstalledFile = "/lib/apk/db/installed"

// DefaultMaxFileBytes bounds the database when the request sets no limit.
// Real ones are a few MB; this only stops a hostile image.
const DefaultMaxFileBytes = 64 << 20

// Analyzer is the apk analyzer. Its zero value is ready to use.
type Analyzer struct{}

var _ sdk.Analyzer = Analyzer{}

// Describe implements sdk.Analyzer.
func (Analyzer) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{
		Name:       Name,
		Version:    Version,
		Kinds:      []string{sdk.KindPackage},
		Ecosystems: []string{"Alpine"},
		Resources:  sdk.Resources{MemoryBytes: 128 << 20, Pids: 16, Timeout: time.Minute},
	}, nil
}

// Analyze implements sdk.Analyzer: it emits one package per paragraph of
// the image's /lib/apk/db/installed. An image without it yields nothing
// and no warning.
func (Analyzer) Analyze(ctx context.Context, req sdk.Request, emit sdk.Emitter) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("apk: %w", err)
	}
	root, err := os.OpenRoot(req.Root)
	if err != nil {
		return fmt.Errorf("apk: %w", err)
	}
	defer root.Close()
	_, err = analyze(ctx, root, req, emit)
	return err
}

// analyze is Analyze on an open root; it also returns what it counted.
func analyze(ctx context.Context, root *os.Root, req sdk.Request, emit sdk.Emitter) (stats, error) {
	a := &analysis{ctx: ctx, root: root, emit: emit, warned: warncap.Capped{Emit: emit}, maxBytes: req.MaxFileBytes}
	if a.maxBytes <= 0 {
		a.maxBytes = DefaultMaxFileBytes
	}
	if err := a.run(); err != nil {
		return a.stats, fmt.Errorf("apk: %w", err)
	}
	return a.stats, nil
}

// analysis is one run of Analyze.
type analysis struct {
	ctx      context.Context
	root     *os.Root
	emit     sdk.Emitter
	maxBytes int64

	distro *distro // read when the first package is found
	warned warncap.Capped
	stats  stats
}

// stats counts what one analysis saw, for the log (and the tests).
type stats struct {
	Packages  int
	Malformed int
	Files     int
}

func (a *analysis) run() error {
	if err := a.file(InstalledFile); err != nil {
		return err
	}
	slog.InfoContext(a.ctx, "apk: inventory done",
		"packages", a.stats.Packages, "files", a.stats.Files, "malformed", a.stats.Malformed)
	return a.warned.Flush()
}

// warn sends a warning, up to warncap.Max per analysis.
func (a *analysis) warn(path, format string, args ...any) error {
	return a.warned.Warn(path, format, args...)
}

// exists tells a missing file (nothing to report: the image has no apk
// database) from a link that leads nowhere inside the image (a warning).
func (a *analysis) exists(name string) bool {
	_, err := a.root.Lstat(strings.TrimPrefix(name, "/"))
	return !errors.Is(err, fs.ErrNotExist)
}

// file reads the database. Only errors that must stop the analysis
// (cancellation, the host gone) are returned; anything wrong with the file
// is a warning.
func (a *analysis) file(name string) error {
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
	var (
		stop           error
		malformed      int
		firstMalformed error
	)
	err = ParseInstalled(imageroot.Limit(f, a.maxBytes), func(p Paragraph) error {
		if err := a.ctx.Err(); err != nil {
			stop = err
			return err
		}
		if p.Err != nil {
			malformed++
			if firstMalformed == nil {
				firstMalformed = p.Err
			}
			return nil
		}
		if err := a.paragraph(name, p); err != nil {
			stop = err
			return err
		}
		return nil
	})
	if stop != nil {
		return stop
	}
	a.stats.Malformed += malformed
	if malformed > 0 {
		if err := a.warn(name, "malformed paragraphs skipped: %d (the first: %v)", malformed, firstMalformed); err != nil {
			return err
		}
	}
	if err != nil {
		return a.warn(name, "read cut short after %d packages: %v", a.stats.Packages, err)
	}
	return nil
}

func (a *analysis) paragraph(name string, p Paragraph) error {
	if a.distro == nil {
		if err := a.readDistro(); err != nil {
			return err
		}
	}
	a.stats.Packages++
	source := p.Origin
	if source == "" {
		source = p.Name
	}
	return a.emit.Package(sdk.Package{
		Ecosystem:     a.distro.ecosystem,
		Name:          p.Name,
		Version:       p.Version,
		PURL:          a.distro.purl(p),
		SourceName:    source,
		SourceVersion: p.Version,
		Locations:     []string{warncap.ValidUTF8(name)},
	})
}

// distro is what the packages' ecosystem and purl take from os-release.
type distro struct {
	ecosystem string // "Alpine:v3.20"
	qualifier string // the purl distro qualifier: "alpine-3.20.3"
}

// readDistro reads os-release. Without a usable one, the packages are
// reported as Alpine's, without a release, and a warning says so. The
// warnings never quote the file.
func (a *analysis) readDistro() error {
	a.distro = &distro{ecosystem: "Alpine"}
	rel, err := osrelease.Read(a.root, a.maxBytes)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return a.warn("", "no os-release (%s): apk packages are reported as ecosystem %q, without a release", strings.Join(osrelease.Paths, ", "), a.distro.ecosystem)
	case err != nil:
		return a.warn(rel.Path, "os-release unreadable: apk packages are reported as ecosystem %q, without a release", a.distro.ecosystem)
	case rel.ID != "alpine":
		return a.warn(rel.Path, "os-release's ID is not alpine: apk packages are reported as ecosystem %q, without a release", a.distro.ecosystem)
	}
	eco, ok := Ecosystem(rel.VersionID)
	if !ok {
		return a.warn(rel.Path, "os-release's VERSION_ID is not an Alpine release (major.minor[.patch]): apk packages are reported as ecosystem %q, without a release", a.distro.ecosystem)
	}
	a.distro.ecosystem = eco
	a.distro.qualifier = "alpine-" + rel.VersionID
	return nil
}

// Ecosystem returns OSV's name of an Alpine release's ecosystem from
// os-release's VERSION_ID: "3.20.3" → "Alpine:v3.20". OSV names Alpine's
// branches, major.minor, with a "v". ok is false unless versionID starts
// with two dot-separated decimal numbers of at most 4 digits (a third
// component, and a suffix after it such as "_alpha20240807" of edge
// snapshots, is allowed and ignored).
func Ecosystem(versionID string) (string, bool) {
	major, rest, ok := strings.Cut(versionID, ".")
	if !ok || !decimal(major) {
		return "", false
	}
	minor := rest
	if i := strings.IndexAny(rest, "._"); i >= 0 {
		minor = rest[:i]
	}
	if !decimal(minor) {
		return "", false
	}
	return "Alpine:v" + major + "." + minor, true
}

func decimal(s string) bool {
	if s == "" || len(s) > 4 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// purl returns the package URL of p, as the purl specification's apk type
// says: pkg:apk/alpine/<name>@<version>?arch=<arch>&distro=alpine-<version-id>.
func (d *distro) purl(p Paragraph) string {
	q := map[string]string{}
	if p.Arch != "" {
		q["arch"] = p.Arch
	}
	if d.qualifier != "" {
		q["distro"] = d.qualifier
	}
	return packageurl.NewPackageURL(packageurl.TypeApk, "alpine", p.Name, p.Version, packageurl.QualifiersFromMap(q), "").ToString()
}
