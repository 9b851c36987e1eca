package rust

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"

	"github.com/package-url/packageurl-go"
	"github.com/rust-secure-code/go-rustaudit"

	"github.com/assayhq/assay/plugins/sdk"
)

// Name and Version identify the extractor (and its plugin).
const (
	Name    = "rust"
	Version = "0.2.0"
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

// Bounds. Binaries of a few hundred MB exist; one is read into memory to
// find its sections (they are listed at its end), so MaxFileBytes bounds
// the memory of one file. Lockfiles have their own bound under it: the
// largest real ones are a few hundred KB (about 250 bytes a crate), and
// the TOML decoder allocates about 17 bytes per byte of input
// (BenchmarkParseCargoLock), 80 MB live at its peak for an 8 MB file.
const (
	DefaultMaxFileBytes = 512 << 20
	MaxLockfileBytes    = 4 << 20
)

// minBinaryBytes is the smallest executable offered: an ELF header, a
// section header table and a dependency section do not fit in less. It
// keeps tiny scripts out cheaply.
const minBinaryBytes = 256

// readChunk is how much of a binary is read between two checks of ctx.
const readChunk = 4 << 20

// Extractor reads the Cargo.lock files and cargo-auditable binaries of a
// layer. Make one with NewExtractor.
type Extractor struct{}

var _ sdk.Extractor = (*Extractor)(nil)

// NewExtractor returns a fresh extractor.
func NewExtractor() sdk.Extractor { return &Extractor{} }

// Name implements sdk.Extractor.
func (*Extractor) Name() string { return Name }

// Version implements sdk.Extractor.
func (*Extractor) Version() string { return Version }

// MaxFileBytes implements sdk.Extractor.
func (*Extractor) MaxFileBytes() int64 { return DefaultMaxFileBytes }

// Required implements sdk.Extractor: every regular file named Cargo.lock,
// and every regular file with an execute bit large enough to be an
// executable (whether it is an ELF is known from its content only).
func (*Extractor) Required(f sdk.FileInfo) bool {
	if !f.Mode.IsRegular() {
		return false
	}
	return path.Base(f.Path) == LockfileName || (f.Mode.Perm()&0o111 != 0 && f.Size >= minBinaryBytes)
}

// Extract implements sdk.Extractor: it emits the crates of one Cargo.lock
// or cargo-auditable binary. Only errors that must stop the layer
// (cancellation, the host gone, a broken stream) are returned; anything
// wrong with the file is a warning.
func (*Extractor) Extract(ctx context.Context, f sdk.FileInfo, r io.Reader, out sdk.Output) error {
	var err error
	if path.Base(f.Path) == LockfileName {
		err = readLockfile(ctx, f, r, out)
	} else {
		err = readBinary(ctx, f, r, out)
	}
	if err != nil {
		return fmt.Errorf("rust: %w", err)
	}
	return nil
}

// warn sends a warning about the file f.
func warn(out sdk.Output, f sdk.FileInfo, format string, args ...any) error {
	return out.Warning(sdk.Warning{Message: fmt.Sprintf(format, args...), Path: f.Path})
}

// readLockfile reads one Cargo.lock and emits its crates.
func readLockfile(ctx context.Context, f sdk.FileInfo, r io.Reader, out sdk.Output) error {
	if f.Size > MaxLockfileBytes {
		return warn(out, f, "skipped: %d bytes, over the limit of %d bytes for a Cargo.lock", f.Size, MaxLockfileBytes)
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxLockfileBytes))
	if err != nil {
		return err
	}
	lf, err := ParseCargoLock(data)
	if err != nil {
		return warn(out, f, "skipped: %v", err)
	}
	rp := newReporter(ctx, out, f)
	for _, p := range lf.Packages {
		if err := rp.add(p.Name, p.Version, lockOrigin(p.Source)); err != nil {
			return err
		}
	}
	rp.skips.invalid += lf.Invalid
	return rp.done()
}

// readBinary looks into one executable file and, if it is an ELF file with
// cargo-auditable data, emits its crates. A file that does not start with
// the ELF magic is left after four bytes; an ELF is read into memory (at
// most MaxFileBytes, the framework's cap), since its section headers sit
// at its end.
func readBinary(ctx context.Context, f sdk.FileInfo, r io.Reader, out sdk.Output) error {
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		return err
	}
	if !isELF(magic[:]) || f.Size < int64(len(magic)) {
		return nil
	}
	// The size is the tar header's, and the framework has checked it
	// against the file cap: allocated once, exactly.
	data := make([]byte, f.Size)
	copy(data, magic[:])
	for n := len(magic); n < len(data); {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, err := io.ReadFull(r, data[n:min(len(data), n+readChunk)])
		n += m
		if err != nil {
			return fmt.Errorf("reading %d bytes: %w", f.Size, err)
		}
	}
	info, found, err := readDepInfo(bytes.NewReader(data), f.Size)
	switch {
	case err != nil:
		return warn(out, f, "skipped: %v", err)
	case !found:
		return nil
	}
	rp := newReporter(ctx, out, f)
	for _, p := range info.Packages {
		if p.Kind != rustaudit.Runtime {
			// Build scripts and their dependencies ran when the
			// binary was built; their code is not in it.
			continue
		}
		if checkValue(p.Name) != nil || checkValue(p.Version) != nil {
			rp.skips.invalid++
			continue
		}
		if err := rp.add(p.Name, p.Version, auditOrigin(p.Source)); err != nil {
			return err
		}
	}
	return rp.done()
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
	ctx   context.Context
	out   sdk.Output
	f     sdk.FileInfo
	seen  map[[2]string]bool
	skips struct{ other, gitPre, invalid int }
}

func newReporter(ctx context.Context, out sdk.Output, f sdk.FileInfo) *reporter {
	return &reporter{ctx: ctx, out: out, f: f, seen: map[[2]string]bool{}}
}

// add emits the crate name@version from origin o, if it is reported: a
// crates.io crate always, a git one if its version is a release (the
// crate's own version at that commit, matched as the crates.io release of
// that version), a local one never (it has no published version), one of
// another registry never (its name on crates.io may be another crate).
func (r *reporter) add(name, version string, o origin) error {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	switch o {
	case fromLocal:
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
	return r.out.Package(sdk.Package{
		Ecosystem: Ecosystem,
		Name:      name,
		Version:   version,
		PURL:      purl(name, version),
		// A tar name need not be UTF-8; the wire format's strings must.
		Locations: []string{strings.ToValidUTF8(r.f.Path, "\uFFFD")},
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
	return warn(r.out, r.f, "%d crates not reported: %s", n, strings.Join(parts, "; "))
}

// purl returns pkg:cargo/<name>@<version>.
func purl(name, version string) string {
	return packageurl.NewPackageURL(packageurl.TypeCargo, "", name, version, nil, "").ToString()
}
