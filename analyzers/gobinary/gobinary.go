package gobinary

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/assayhq/assay/plugins/sdk"
)

// Name and Version identify the extractor (and its plugin).
const (
	Name    = "gobinary"
	Version = "0.2.0"
)

// Ecosystem is the OSV ecosystem of everything reported.
const Ecosystem = "Go"

// StdlibName is the name the toolchain is reported under, as in OSV.
const StdlibName = "stdlib"

// DefaultMaxFileBytes is the largest executable read: Go binaries of a few
// hundred MB exist (kubelet-style monoliths with debug information). The
// file is streamed, never held in memory, so this bounds time, not memory.
const DefaultMaxFileBytes = 512 << 20

// minFileBytes is the smallest file offered: an ELF header and a build
// information header do not fit in less, and no real Go binary is
// anywhere near that small. It keeps tiny scripts out cheaply.
const minFileBytes = 256

// Extractor reads the Go build information of the executable ELF files of
// a layer. Make one with NewExtractor.
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

// Required implements sdk.Extractor: regular files with an execute bit
// that are large enough to be an executable. Whether one is an ELF is
// known only from its content (Extract).
func (*Extractor) Required(f sdk.FileInfo) bool {
	return f.Mode.IsRegular() && f.Mode.Perm()&0o111 != 0 && f.Size >= minFileBytes
}

// Extract implements sdk.Extractor: it emits the modules of one Go
// executable. A file that is not an ELF, or an ELF without Go build
// information, yields nothing and no warning.
func (*Extractor) Extract(ctx context.Context, f sdk.FileInfo, r io.Reader, out sdk.Output) error {
	bi, err := readBuildInfo(ctx, r)
	var ferr *formatError
	switch {
	case err == nil:
	case errors.Is(err, errNotELF), errors.Is(err, errNotGo):
		return nil
	case errors.Is(err, errPointerFormat):
		return out.Warning(sdk.Warning{
			Message: "a Go executable whose Go version predates 1.18 (its build information has the old pointer format): its modules are not read",
			Path:    f.Path,
		})
	case errors.As(err, &ferr):
		return out.Warning(sdk.Warning{
			Message: "an executable ELF file whose Go build information could not be read: " + ferr.msg,
			Path:    f.Path,
		})
	default:
		return fmt.Errorf("gobinary: %w", err)
	}
	for _, p := range packages(bi, f.Path) {
		if err := out.Package(p); err != nil {
			return err
		}
	}
	return nil
}

// packages returns what one binary's build information reports, in order:
// the main module (unless "(devel)"), the dependencies, the toolchain.
func packages(bi *debug.BuildInfo, location string) []sdk.Package {
	loc := []string{validUTF8(location)}
	var out []sdk.Package
	add := func(name, version string) {
		if name == "" {
			return
		}
		out = append(out, sdk.Package{
			Ecosystem: Ecosystem,
			Name:      validUTF8(name),
			Version:   validUTF8(version),
			PURL:      purl(name, version),
			Locations: loc,
		})
	}
	if m := bi.Main; m.Path != "" && m.Version != "" && m.Version != "(devel)" {
		add(m.Path, m.Version)
	}
	for _, d := range bi.Deps {
		if d == nil {
			continue
		}
		if r := d.Replace; r != nil && r.Version != "" {
			add(r.Path, r.Version)
		} else {
			add(d.Path, d.Version)
		}
	}
	if v := StdlibVersion(bi.GoVersion); v != "" {
		add(StdlibName, v)
	}
	return out
}

// validUTF8 keeps what a binary holds from breaking the wire format.
func validUTF8(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// StdlibVersion returns the version the toolchain of a binary is reported
// under: goVersion's first word without its "go" prefix ("go1.21.3" →
// "1.21.3", "go1.22rc1" → "1.22rc1", "go1.24.1 X:boringcrypto" →
// "1.24.1"). A development toolchain's "devel go1.23-abcdef ..." has no
// release and yields "".
func StdlibVersion(goVersion string) string {
	f := strings.Fields(goVersion)
	if len(f) == 0 || !strings.HasPrefix(f[0], "go") {
		return ""
	}
	return strings.TrimPrefix(f[0], "go")
}

// purl returns pkg:golang/<namespace>/<name>@<version>: the module path's
// last element is the name, the elements before it the namespace, as the
// purl specification's golang type says.
func purl(modPath, version string) string {
	ns, name := "", modPath
	if i := strings.LastIndex(modPath, "/"); i >= 0 {
		ns, name = modPath[:i], modPath[i+1:]
	}
	return packageurl.NewPackageURL(packageurl.TypeGolang, ns, name, version, nil, "").ToString()
}
