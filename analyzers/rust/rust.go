package rust

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/package-url/packageurl-go"
	"github.com/rust-secure-code/go-rustaudit"

	"github.com/assayhq/assay/analyzers/imageroot"
	"github.com/assayhq/assay/analyzers/warncap"
	"github.com/assayhq/assay/plugins/sdk"
)

// Name and Version are what the plugin describes itself as; its manifest
// must say the same.
const (
	Name    = "rust"
	Version = "0.1.0"
)

// Ecosystem is the OSV ecosystem of the packages reported.
const Ecosystem = "crates.io"

// LockfileName is the file name of the lockfiles read.
const LockfileName = "Cargo.lock"

// The sources that mean crates.io: in a Cargo.lock (the git index's URL,
// which Cargo writes whichever protocol fetched the crate, or the sparse
// index's, as early sparse-registry Cargo wrote it), and in
// cargo-auditable's data.
const (
	CratesIORegistry = "registry+https://github.com/rust-lang/crates.io-index"
	CratesIOSparse   = "sparse+https://index.crates.io/"
	auditCratesIO    = "crates.io"
	auditLocal       = "local"
	auditGit         = "git"
)

// Bounds the analyzer applies when the request sets none (zero). Binaries
// of a few hundred MB exist; only their headers and one section are read.
// Lockfiles have their own bound under MaxFileBytes: the largest real
// ones are a few hundred KB (about 250 bytes a crate), and the TOML
// decoder allocates about 17 bytes per byte of input
// (BenchmarkParseCargoLock), 80 MB live at its peak for an 8 MB file.
const (
	DefaultMaxFileBytes = 512 << 20
	DefaultMaxFiles     = 1_000_000
	MaxLockfileBytes    = 4 << 20
)

// Analyzer is the Rust analyzer. Its zero value is ready to use.
type Analyzer struct{}

var _ sdk.Analyzer = Analyzer{}

// Describe implements sdk.Analyzer.
func (Analyzer) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{
		Name:       Name,
		Version:    Version,
		Kinds:      []string{sdk.KindPackage},
		Ecosystems: []string{Ecosystem},
		Resources:  sdk.Resources{MemoryBytes: 256 << 20, Pids: 16, Timeout: 5 * time.Minute},
	}, nil
}

// Analyze implements sdk.Analyzer: it emits the crates of the image's
// Cargo.lock files and cargo-auditable binaries. An image without any
// yields nothing and no warning.
func (Analyzer) Analyze(ctx context.Context, req sdk.Request, emit sdk.Emitter) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("rust: %w", err)
	}
	root, err := os.OpenRoot(req.Root)
	if err != nil {
		return fmt.Errorf("rust: opening the image root: %w", err)
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
	a.maxLockBytes = min(a.maxBytes, MaxLockfileBytes)
	if err := a.run(); err != nil {
		return a.stats, fmt.Errorf("rust: %w", err)
	}
	return a.stats, nil
}

// analysis is one run of Analyze.
type analysis struct {
	ctx          context.Context
	root         *os.Root
	emit         sdk.Emitter
	maxBytes     int64
	maxLockBytes int64
	maxFiles     int64

	warned warncap.Capped
	stats  stats
}

// stats counts what one analysis saw, for the log (and the tests).
type stats struct {
	Entries   int64 // entries of the image walked
	Lockfiles int   // Cargo.lock files parsed
	ELF       int   // executable ELF files looked into
	Binaries  int   // of them, with cargo-auditable data
	Packages  int
	Local     int // path dependencies, workspace members, local crates: not reported
	Build     int // build dependencies of binaries: not reported
	Skipped   int // other registries, git pre-releases, invalid entries: not reported, warned
}

// run walks the image once, never following a symbolic link while
// walking: a Cargo.lock (or a link named Cargo.lock, resolved inside the
// image) is parsed as a lockfile, a regular file with an execute bit is
// looked into if it is an ELF file.
func (a *analysis) run() error {
	err := imageroot.Walk(a.ctx, a.root, imageroot.WalkOptions{MaxEntries: a.maxFiles}, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			// A directory that could not be listed (in full): its
			// entries (the rest of them) are not looked at.
			return a.warn("/"+name, "skipped: %v", err)
		}
		a.stats.Entries++
		switch {
		case d.IsDir():
			return nil
		case d.Name() == LockfileName:
			// A link is resolved inside the image; a FIFO or device
			// is refused (with a warning) before it is opened.
			return a.lockfile("/" + name)
		case d.Type().IsRegular():
			fi, err := d.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil // removed since it was listed
				}
				return a.warn("/"+name, "skipped: %v", err)
			}
			if fi.Mode().Perm()&0o111 == 0 {
				return nil
			}
			return a.binary("/" + name)
		}
		return nil // links, devices, FIFOs
	})
	if errors.Is(err, imageroot.ErrTooManyEntries) {
		err = a.warn("", "more than %d entries in the image: only the first %d were looked at", a.maxFiles, a.maxFiles)
	}
	if err != nil {
		return err
	}
	slog.InfoContext(a.ctx, "rust: inventory done",
		"entries", a.stats.Entries, "lockfiles", a.stats.Lockfiles, "elf", a.stats.ELF,
		"auditable_binaries", a.stats.Binaries, "packages", a.stats.Packages,
		"local", a.stats.Local, "build_deps", a.stats.Build, "skipped", a.stats.Skipped)
	return a.warned.Flush()
}

// warn sends a warning, up to warncap.Max per analysis.
func (a *analysis) warn(path, format string, args ...any) error {
	return a.warned.Warn(path, format, args...)
}

// lockfile reads one Cargo.lock (name an image path) and emits its
// crates. Only errors that must stop the analysis (cancellation, the host
// gone) are returned; anything wrong with the file is a warning.
func (a *analysis) lockfile(name string) error {
	f, fi, err := imageroot.OpenRegular(a.root, name, a.maxLockBytes)
	switch {
	case err == nil:
	case errors.Is(err, imageroot.ErrTooLarge):
		return a.warn(name, "skipped: %d bytes, over the limit of %d bytes for a Cargo.lock", fi.Size(), a.maxLockBytes)
	case errors.Is(err, fs.ErrNotExist) && !a.exists(name):
		return nil // removed since it was listed
	default:
		return a.warn(name, "skipped: %v", err)
	}
	defer f.Close()
	data, err := io.ReadAll(imageroot.Limit(f, a.maxLockBytes))
	if err != nil {
		return a.warn(name, "skipped: %v", err)
	}
	lf, err := ParseCargoLock(data)
	if err != nil {
		return a.warn(name, "skipped: %v", err)
	}
	a.stats.Lockfiles++
	r := a.reporter(name)
	for _, p := range lf.Packages {
		if err := r.add(p.Name, p.Version, lockOrigin(p.Source)); err != nil {
			return err
		}
	}
	r.skips.invalid += lf.Invalid
	return r.done()
}

// exists tells a missing file from a link that leads nowhere inside the
// image (or a loop).
func (a *analysis) exists(name string) bool {
	_, err := a.root.Lstat(strings.TrimPrefix(name, "/"))
	return !errors.Is(err, fs.ErrNotExist)
}

// binary looks into one executable regular file (name an image path free
// of links: the walk does not follow them) and, if it is an ELF file with
// cargo-auditable data, emits its crates.
func (a *analysis) binary(name string) error {
	// Size 0: the size is checked below, once the file is known to be an
	// ELF, so that only ELF files over the limit are warned about.
	f, fi, err := imageroot.OpenRegular(a.root, name, 0)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, imageroot.ErrNotRegular):
		return nil // removed or replaced since it was listed
	default:
		return a.warn(name, "skipped: %v", err)
	}
	defer f.Close()
	size := fi.Size()
	if !isELF(f, size) {
		return nil
	}
	a.stats.ELF++
	if size > a.maxBytes {
		return a.warn(name, "skipped: %d bytes, over the limit of %d bytes per file", size, a.maxBytes)
	}
	info, found, err := readDepInfo(f, size)
	switch {
	case err != nil:
		return a.warn(name, "skipped: %v", err)
	case !found:
		return nil
	}
	a.stats.Binaries++
	r := a.reporter(name)
	for _, p := range info.Packages {
		if p.Kind != rustaudit.Runtime {
			// Build scripts and their dependencies ran when the
			// binary was built; their code is not in it.
			a.stats.Build++
			continue
		}
		if checkValue(p.Name) != nil || checkValue(p.Version) != nil {
			r.skips.invalid++
			continue
		}
		if err := r.add(p.Name, p.Version, auditOrigin(p.Source)); err != nil {
			return err
		}
	}
	return r.done()
}

// origin is where a crate came from, as far as reporting goes.
type origin int

const (
	fromCratesIO origin = iota
	fromGit
	fromLocal // a path dependency or a workspace member: the project's own code
	fromOther // another registry, or a source this analyzer does not know
)

// lockOrigin classifies a Cargo.lock source.
func lockOrigin(source string) origin {
	switch {
	case source == "":
		return fromLocal
	case source == CratesIORegistry, source == CratesIOSparse:
		return fromCratesIO
	case strings.HasPrefix(source, "git+"):
		return fromGit
	}
	return fromOther
}

// auditOrigin classifies a cargo-auditable source.
func auditOrigin(source string) origin {
	switch source {
	case auditCratesIO:
		return fromCratesIO
	case auditGit:
		return fromGit
	case auditLocal:
		return fromLocal
	}
	return fromOther
}

// releaseVersion matches a SemVer release: MAJOR.MINOR.PATCH without a
// pre-release part (build metadata allowed).
var releaseVersion = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(\+[0-9A-Za-z.-]+)?$`)

// IsRelease tells whether version is a SemVer release ("1.2.3",
// "1.2.3+build"), not a pre-release ("1.2.3-alpha.1").
func IsRelease(version string) bool { return releaseVersion.MatchString(version) }

// reporter emits the crates of one file, each (name, version) once, and
// counts what it does not report.
type reporter struct {
	a        *analysis
	location string
	seen     map[[2]string]bool
	skips    struct{ other, gitPre, invalid int }
}

func (a *analysis) reporter(location string) *reporter {
	return &reporter{a: a, location: location, seen: map[[2]string]bool{}}
}

// add emits the crate name@version from origin o, if it is reported: a
// crates.io crate always, a git one if its version is a release (the
// crate's own version at that commit, matched as the crates.io release of
// that version), a local one never (it has no published version), one of
// another registry never (its name on crates.io may be another crate).
func (r *reporter) add(name, version string, o origin) error {
	if err := r.a.ctx.Err(); err != nil {
		return err
	}
	switch o {
	case fromLocal:
		r.a.stats.Local++
		return nil
	case fromOther:
		r.skips.other++
		return nil
	case fromGit:
		if !IsRelease(version) {
			r.skips.gitPre++
			return nil
		}
	}
	key := [2]string{name, version}
	if r.seen[key] {
		return nil
	}
	r.seen[key] = true
	r.a.stats.Packages++
	return r.a.emit.Package(sdk.Package{
		Ecosystem: Ecosystem,
		Name:      name,
		Version:   version,
		PURL:      purl(name, version),
		Locations: []string{warncap.ValidUTF8(r.location)},
	})
}

// done warns about what the file held but was not reported.
func (r *reporter) done() error {
	s := r.skips
	var parts []string
	if s.other > 0 {
		parts = append(parts, fmt.Sprintf("%d from a registry other than crates.io or an unknown source (a crates.io crate of the same name may be another crate)", s.other))
	}
	if s.gitPre > 0 {
		parts = append(parts, fmt.Sprintf("%d from git with a pre-release version (no crates.io release to match advisories against)", s.gitPre))
	}
	if s.invalid > 0 {
		parts = append(parts, fmt.Sprintf("%d without a valid name and version", s.invalid))
	}
	n := s.other + s.gitPre + s.invalid
	if n == 0 {
		return nil
	}
	r.a.stats.Skipped += n
	return r.a.warn(r.location, "%d crates not reported: %s", n, strings.Join(parts, "; "))
}

// purl returns pkg:cargo/<name>@<version>.
func purl(name, version string) string {
	return packageurl.NewPackageURL(packageurl.TypeCargo, "", name, version, nil, "").ToString()
}
