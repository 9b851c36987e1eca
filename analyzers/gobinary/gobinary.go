package gobinary

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/package-url/packageurl-go"

	"github.com/assayhq/assay/analyzers/imageroot"
	"github.com/assayhq/assay/analyzers/warncap"
	"github.com/assayhq/assay/plugins/sdk"
)

// Name and Version are what the plugin describes itself as; its manifest
// must say the same.
const (
	Name    = "gobinary"
	Version = "0.1.0"
)

// Ecosystem is the OSV ecosystem of everything reported.
const Ecosystem = "Go"

// StdlibName is the name the toolchain is reported under, as in OSV.
const StdlibName = "stdlib"

// Bounds the analyzer applies when the request sets none (zero). Go
// binaries of a few hundred MB exist (kubelet-style monoliths with debug
// information); images of a million files are rare.
const (
	DefaultMaxFileBytes = 512 << 20
	DefaultMaxFiles     = 1_000_000
)

// elfMagic starts every ELF file.
var elfMagic = []byte("\x7fELF")

// errNotGo is debug/buildinfo's error for a readable executable without
// Go build information. The variable is unexported (but pinned with
// go:linkname, so its text is stable); it is recognised by its message.
const errNotGo = "not a Go executable"

// Analyzer is the Go binary analyzer. Its zero value is ready to use.
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

// Analyze implements sdk.Analyzer: it emits the modules of each Go
// executable of the image. An image without any yields nothing and no
// warning.
func (Analyzer) Analyze(ctx context.Context, req sdk.Request, emit sdk.Emitter) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("gobinary: %w", err)
	}
	root, err := os.OpenRoot(req.Root)
	if err != nil {
		return fmt.Errorf("gobinary: %w", err)
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
		return a.stats, fmt.Errorf("gobinary: %w", err)
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

	warned warncap.Capped
	stats  stats
}

// stats counts what one analysis saw, for the log (and the tests).
type stats struct {
	Entries  int64 // entries of the image walked
	ELF      int   // executable ELF files read
	Binaries int   // Go binaries among them
	Packages int
}

func (a *analysis) run() error {
	err := imageroot.Walk(a.ctx, a.root, imageroot.WalkOptions{MaxEntries: a.maxFiles}, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			// A directory that could not be listed (in full): its
			// entries (the rest of them) are not looked at.
			return a.warn("/"+name, "skipped: %v", err)
		}
		a.stats.Entries++
		if !d.Type().IsRegular() {
			return nil // directories are walked; links, devices, FIFOs skipped
		}
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
		return a.file("/" + name)
	})
	if errors.Is(err, imageroot.ErrTooManyEntries) {
		err = a.warn("", "more than %d entries in the image: only the first %d were looked at", a.maxFiles, a.maxFiles)
	}
	if err != nil {
		return err
	}
	slog.InfoContext(a.ctx, "gobinary: inventory done",
		"entries", a.stats.Entries, "elf", a.stats.ELF, "go_binaries", a.stats.Binaries, "packages", a.stats.Packages)
	return a.warned.Flush()
}

// warn sends a warning, up to warncap.Max per analysis.
func (a *analysis) warn(path, format string, args ...any) error {
	return a.warned.Warn(path, format, args...)
}

// file reads one executable file, name an image path free of links (the
// walk does not follow them). Only errors that must stop the analysis
// (cancellation, the host gone) are returned; anything wrong with the file
// is a warning.
func (a *analysis) file(name string) error {
	// Size 0: the size is checked below, once the file is known to be
	// an ELF, so that only ELF files over the limit are warned about.
	f, fi, err := imageroot.OpenRegular(a.root, name, 0)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
		return nil // removed or replaced since it was listed
	case errors.Is(err, imageroot.ErrNotRegular):
		return nil
	default:
		return a.warn(name, "skipped: %v", err)
	}
	defer f.Close()
	bi, isELF, err := readBuildInfo(f, fi.Size(), a.maxBytes)
	if !isELF {
		return nil
	}
	a.stats.ELF++
	switch {
	case err == nil:
	case errors.Is(err, imageroot.ErrTooLarge):
		return a.warn(name, "skipped: %d bytes, over the limit of %d bytes per file", fi.Size(), a.maxBytes)
	case err.Error() == errNotGo:
		return nil
	default:
		return a.warn(name, "skipped: an executable ELF file whose Go build information could not be read: %v", err)
	}
	a.stats.Binaries++
	for _, p := range packages(bi, name) {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		a.stats.Packages++
		if err := a.emit.Package(p); err != nil {
			return err
		}
	}
	return nil
}

// readBuildInfo reads the Go build information of the size bytes of r if
// they start with the ELF magic (isELF); an ELF of more than maxBytes
// bytes is not read (an error wrapping imageroot.ErrTooLarge). Reads past
// size fail, so a file that grows is read as it was checked.
func readBuildInfo(r io.ReaderAt, size, maxBytes int64) (bi *debug.BuildInfo, isELF bool, err error) {
	var magic [4]byte
	if n, _ := r.ReadAt(magic[:], 0); n < len(magic) || size < int64(len(magic)) || !bytes.Equal(magic[:], elfMagic) {
		return nil, false, nil
	}
	if maxBytes > 0 && size > maxBytes {
		return nil, true, fmt.Errorf("%w: %d bytes, limit %d", imageroot.ErrTooLarge, size, maxBytes)
	}
	bi, err = buildinfo.Read(io.NewSectionReader(r, 0, size))
	if err != nil {
		return nil, true, err
	}
	return bi, true, nil
}

// packages returns what one binary's build information reports, in order:
// the main module (unless "(devel)"), the dependencies, the toolchain.
func packages(bi *debug.BuildInfo, location string) []sdk.Package {
	loc := []string{warncap.ValidUTF8(location)}
	var out []sdk.Package
	add := func(name, version string) {
		if name == "" {
			return
		}
		out = append(out, sdk.Package{
			Ecosystem: Ecosystem,
			Name:      warncap.ValidUTF8(name),
			Version:   warncap.ValidUTF8(version),
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
