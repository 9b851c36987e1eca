package rpm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/assayhq/assay/analyzers/distro"
	"github.com/assayhq/assay/analyzers/imageroot"
	"github.com/assayhq/assay/analyzers/osrelease"
	"github.com/assayhq/assay/analyzers/warncap"
	"github.com/assayhq/assay/plugins/sdk"
)

// Name and Version are what the plugin describes itself as; its manifest
// must say the same.
const (
	Name    = "rpm"
	Version = "0.1.0"
)

// Databases are the rpm databases the analyzer reads, as image paths, in
// this order: rpm's database directory of current Fedora and openSUSE
// (/usr/lib/sysimage/rpm, where /var/lib/rpm is often a link to it), then
// the classic one; in each the SQLite database (rpm 4.16 and later: RHEL 9,
// Fedora 33 and later), the ndb one (SUSE) and the Berkeley DB one (RHEL 8
// and older, CentOS). A file two of these paths lead to is read once.
var Databases = []string{
	"/usr/lib/sysimage/rpm/rpmdb.sqlite",
	"/usr/lib/sysimage/rpm/Packages.db",
	"/usr/lib/sysimage/rpm/Packages",
	"/var/lib/rpm/rpmdb.sqlite",
	"/var/lib/rpm/Packages.db",
	"/var/lib/rpm/Packages",
}

// PubKeyName is the name under which rpm records the OpenPGP keys it
// trusts (rpm --import) as packages: they are not packages and are not
// reported.
const PubKeyName = "gpg-pubkey"

// Bounds the analyzer applies when the request or the Analyzer sets none
// (zero). Real databases are a few MB to a few hundred MB (a CentOS 7
// image with everything installed); go-rpmdb holds all of a database's
// packages in memory, so larger ones are not read.
const (
	DefaultMaxFileBytes = 256 << 20
	DefaultReadTimeout  = time.Minute
)

// Analyzer is the rpm analyzer. Its zero value is ready to use.
type Analyzer struct {
	// ReadTimeout bounds the reading of one database by the reader
	// process (zero: DefaultReadTimeout), and so does half the time left
	// before the analysis's deadline. A database that takes longer is
	// skipped with a warning.
	ReadTimeout time.Duration
}

var _ sdk.Analyzer = Analyzer{}

// Describe implements sdk.Analyzer. The memory is go-rpmdb's, which holds
// a whole database's packages (file lists included), and /tmp's, which
// holds a copy of a SQLite database; the pids are the reader process's
// threads besides the plugin's own.
func (Analyzer) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{
		Name:       Name,
		Version:    Version,
		Kinds:      []string{sdk.KindPackage},
		Ecosystems: slices.Clone(distro.Ecosystems),
		Resources:  sdk.Resources{MemoryBytes: 512 << 20, Pids: 64, Timeout: 5 * time.Minute},
	}, nil
}

// Analyze implements sdk.Analyzer: it emits the packages of the image's
// rpm databases (Databases). An image without one yields nothing and no
// warning.
func (an Analyzer) Analyze(ctx context.Context, req sdk.Request, emit sdk.Emitter) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("rpm: %w", err)
	}
	root, err := os.OpenRoot(req.Root)
	if err != nil {
		return fmt.Errorf("rpm: %w", err)
	}
	defer root.Close()
	_, err = an.analyze(ctx, root, req, emit)
	return err
}

// analyze is Analyze on an open root; it also returns what it counted.
func (an Analyzer) analyze(ctx context.Context, root *os.Root, req sdk.Request, emit sdk.Emitter) (stats, error) {
	a := &analysis{
		ctx:         ctx,
		root:        root,
		emit:        emit,
		warned:      warncap.Capped{Emit: emit},
		maxBytes:    req.MaxFileBytes,
		readTimeout: an.ReadTimeout,
		seen:        map[string]bool{},
		index:       map[nevra]int{},
	}
	if a.maxBytes <= 0 {
		a.maxBytes = DefaultMaxFileBytes
	}
	if a.readTimeout <= 0 {
		a.readTimeout = DefaultReadTimeout
	}
	err := a.run()
	if a.tmp != "" {
		if rerr := os.RemoveAll(a.tmp); rerr != nil {
			slog.WarnContext(ctx, "rpm: could not remove the temporary directory", "dir", a.tmp, "error", rerr)
		}
	}
	if err != nil {
		return a.stats, fmt.Errorf("rpm: %w", err)
	}
	return a.stats, nil
}

// analysis is one run of Analyze.
type analysis struct {
	ctx         context.Context
	root        *os.Root
	emit        sdk.Emitter
	maxBytes    int64
	readTimeout time.Duration

	seen map[string]bool // databases read, by resolved path
	tmp  string          // the private temporary directory, once made
	dist *distro.Distro  // read when the first database has packages

	// The packages of all databases, in the order first found; a package
	// in two databases is one package with two locations.
	pkgs  []sdk.Package
	index map[nevra]int

	warned warncap.Capped
	stats  stats
}

// nevra identifies an installed package.
type nevra struct {
	name, version, release, arch string
	epoch                        int
}

// stats counts what one analysis saw, for the log (and the tests).
type stats struct {
	Databases  int // databases read
	Records    int // packages the databases hold, public keys included
	Packages   int // packages reported
	PubKeys    int // gpg-pubkey entries skipped
	Malformed  int // entries skipped as malformed
	Duplicates int // entries also found in an earlier database
}

func (a *analysis) run() error {
	for _, name := range Databases {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		if err := a.database(name); err != nil {
			return err
		}
	}
	for _, p := range a.pkgs {
		if err := a.emit.Package(p); err != nil {
			return err
		}
	}
	slog.InfoContext(a.ctx, "rpm: inventory done",
		"databases", a.stats.Databases, "records", a.stats.Records, "packages", a.stats.Packages,
		"pubkeys", a.stats.PubKeys, "malformed", a.stats.Malformed, "duplicates", a.stats.Duplicates)
	return a.warned.Flush()
}

// warn sends a warning, up to warncap.Max per analysis.
func (a *analysis) warn(path, format string, args ...any) error {
	return a.warned.Warn(path, format, args...)
}

// present tells a path that does not exist in the image (nothing to
// report) from one that exists but does not lead to a file: a link to
// nowhere, a loop (a warning).
func (a *analysis) present(name string) bool {
	dir, err := imageroot.Resolve(a.root, path.Dir(name))
	if err != nil {
		return !errors.Is(err, fs.ErrNotExist)
	}
	_, err = a.root.Lstat(path.Join(dir, path.Base(name)))
	return !errors.Is(err, fs.ErrNotExist)
}

// Formats of rpm databases, told by their first bytes.
type format int

const (
	formatUnknown format = iota
	formatSQLite
	formatNDB
	formatBDB
)

func (f format) String() string {
	switch f {
	case formatSQLite:
		return "SQLite"
	case formatNDB:
		return "ndb"
	case formatBDB:
		return "Berkeley DB"
	}
	return "unknown"
}

// detect tells the format of a database from its header: SQLite's magic
// string, ndb's "RpmP", or a Berkeley DB hash database's magic number
// (0x061561, in either byte order) at offset 12.
func detect(f io.ReaderAt) format {
	var h [16]byte
	n, _ := f.ReadAt(h[:], 0)
	switch {
	case n == 16 && string(h[:]) == "SQLite format 3\x00":
		return formatSQLite
	case n >= 4 && string(h[:4]) == "RpmP":
		return formatNDB
	case n == 16 && (binary.LittleEndian.Uint32(h[12:]) == 0x061561 || binary.BigEndian.Uint32(h[12:]) == 0x061561):
		return formatBDB
	}
	return formatUnknown
}

// database reads the database at the image path name, if there is one.
// Only errors that must stop the analysis (cancellation, the host gone)
// are returned; anything wrong with the database is a warning.
func (a *analysis) database(name string) error {
	resolved, err := imageroot.Resolve(a.root, name)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist) && !a.present(name):
		return nil
	default:
		return a.warn(name, "skipped: it does not resolve to a file inside the image: %v", err)
	}
	if a.seen[resolved] {
		return nil // another name of a database already read
	}
	a.seen[resolved] = true
	loc := "/" + resolved
	f, fi, err := imageroot.OpenRegular(a.root, resolved, a.maxBytes)
	switch {
	case err == nil:
	case errors.Is(err, imageroot.ErrTooLarge):
		return a.warn(loc, "skipped: %d bytes, over the limit of %d bytes per file", fi.Size(), a.maxBytes)
	default:
		return a.warn(loc, "skipped: %v", err)
	}
	defer f.Close()
	kind := detect(f)
	if kind == formatUnknown {
		return a.warn(loc, "skipped: not an rpm database (no SQLite, ndb or Berkeley DB hash header)")
	}
	// A database that hangs go-rpmdb must leave time for the others and
	// for sending what was found: at most half of what is left.
	timeout := a.readTimeout
	if dl, ok := a.ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl)/2)
	}
	var recs []record
	if kind == formatSQLite {
		// SQLite needs a writable directory beside the database (for its
		// shared-memory index of the write-ahead log): read a copy.
		p, werr := a.copySQLite(f, resolved)
		if werr != nil || p == "" {
			return werr // the host gone, or warned
		}
		recs, err = readDatabase(a.ctx, nil, p, timeout)
		if rerr := os.RemoveAll(filepath.Dir(p)); rerr != nil && err == nil {
			slog.WarnContext(a.ctx, "rpm: could not remove a database copy", "dir", filepath.Dir(p), "error", rerr)
		}
	} else {
		recs, err = readDatabase(a.ctx, f, "", timeout)
	}
	if err != nil {
		if a.ctx.Err() != nil {
			return a.ctx.Err()
		}
		return a.warn(loc, "skipped: the %s rpm database could not be read: %v", kind, err)
	}
	a.stats.Databases++
	slog.DebugContext(a.ctx, "rpm: database read", "path", loc, "format", kind.String(), "records", len(recs))
	return a.records(loc, recs)
}

// copySQLite copies the SQLite database f (the image file resolved) and
// its write-ahead log, if the image has one, into a directory of the
// analysis's own temporary directory, and returns the copy's path; "" if
// it could not (after a warning). The shared-memory index
// (rpmdb.sqlite-shm) is not copied: SQLite rebuilds it from the log.
func (a *analysis) copySQLite(f *os.File, resolved string) (string, error) {
	loc := "/" + resolved
	if a.tmp == "" {
		dir, err := os.MkdirTemp("", "assay-rpm-")
		if err != nil {
			return "", a.warn(loc, "skipped: no temporary directory to read the SQLite database in: %v", err)
		}
		a.tmp = dir
	}
	dir := filepath.Join(a.tmp, strconv.Itoa(len(a.seen)))
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", a.warn(loc, "skipped: no temporary directory to read the SQLite database in: %v", err)
	}
	dst := filepath.Join(dir, "rpmdb.sqlite")
	if err := copyFile(dst, imageroot.Limit(f, a.maxBytes)); err != nil {
		_ = os.RemoveAll(dir) // leave the room to the next database
		return "", a.warn(loc, "skipped: could not copy the SQLite database to %s (the sandbox's /tmp holds sandbox.tmpfs_bytes): %v", a.tmp, err)
	}
	wal := resolved + "-wal"
	wf, wfi, err := imageroot.OpenRegular(a.root, wal, a.maxBytes)
	switch {
	case err == nil:
		defer wf.Close()
		if err := copyFile(dst+"-wal", imageroot.Limit(wf, a.maxBytes)); err != nil {
			_ = os.Remove(dst + "-wal")
			return dst, a.warn("/"+wal, "write-ahead log not read: could not copy it to %s (the sandbox's /tmp holds sandbox.tmpfs_bytes): %v; packages it alone records are missing", a.tmp, err)
		}
	case errors.Is(err, fs.ErrNotExist) && !a.present(wal):
	case errors.Is(err, imageroot.ErrTooLarge):
		return dst, a.warn("/"+wal, "write-ahead log not read: %d bytes, over the limit of %d bytes per file; packages it alone records are missing", wfi.Size(), a.maxBytes)
	default:
		return dst, a.warn("/"+wal, "write-ahead log not read: %v; packages it alone records are missing", err)
	}
	return dst, nil
}

// copyFile writes what r holds to a new file name.
func copyFile(name string, r io.Reader) error {
	out, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, r)
	return errors.Join(err, out.Close())
}

// records turns one database's records into packages.
func (a *analysis) records(loc string, recs []record) error {
	var malformed, badSource int
	for _, r := range recs {
		a.stats.Records++
		if r.Name == PubKeyName {
			a.stats.PubKeys++
			continue
		}
		epoch := 0
		if r.Epoch != nil {
			epoch = *r.Epoch
		}
		if !validField(r.Name) || !validField(r.Version) || !validField(r.Release) ||
			(r.Arch != "" && !validField(r.Arch)) || epoch < 0 || epoch > math.MaxInt32 ||
			strings.Contains(r.Version, "-") || strings.Contains(r.Release, "-") {
			malformed++
			continue
		}
		if a.dist == nil {
			if err := a.readDistro(); err != nil {
				return err
			}
		}
		key := nevra{r.Name, r.Version, r.Release, r.Arch, epoch}
		if i, ok := a.index[key]; ok {
			a.stats.Duplicates++
			if p := &a.pkgs[i]; p.Locations[len(p.Locations)-1] != loc {
				p.Locations = append(p.Locations, loc)
			}
			continue
		}
		p := sdk.Package{
			Ecosystem: a.dist.Ecosystem,
			Name:      r.Name,
			Version:   a.dist.EVR(epoch, r.Version, r.Release),
			PURL:      a.dist.PURL(r.Name, epoch, r.Version, r.Release, r.Arch),
			Locations: []string{loc},
		}
		if r.SourceRPM != "" {
			if n, v, ok := ParseSourceRPM(r.SourceRPM); ok {
				p.SourceName, p.SourceVersion = n, v
			} else {
				badSource++
			}
		}
		a.index[key] = len(a.pkgs)
		a.pkgs = append(a.pkgs, p)
		a.stats.Packages++
	}
	a.stats.Malformed += malformed
	if malformed > 0 {
		if err := a.warn(loc, "packages with a malformed name, epoch, version, release or architecture skipped: %d", malformed); err != nil {
			return err
		}
	}
	if badSource > 0 {
		return a.warn(loc, "packages whose source rpm is not <name>-<version>-<release>.src.rpm, reported without a source: %d", badSource)
	}
	return nil
}

// readDistro reads os-release. Without one that names a distribution OSV
// knows, the packages get the best ecosystem there is (see DistroOf) and
// a warning says so. The warnings quote nothing of the file but a valid
// ID.
func (a *analysis) readDistro() error {
	rel, err := osrelease.Read(a.root, a.maxBytes)
	d := distro.RPM(rel)
	if err != nil {
		d = distro.RPM(osrelease.Release{})
	}
	a.dist = &d
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return a.warn("", "no os-release (%s): rpm packages are reported as ecosystem %q, which OSV does not know", strings.Join(osrelease.Paths, ", "), d.Ecosystem)
	case err != nil:
		return a.warn(rel.Path, "os-release unreadable: rpm packages are reported as ecosystem %q, which OSV does not know", d.Ecosystem)
	case d.Ecosystem == distro.UnknownEcosystem:
		return a.warn(rel.Path, "os-release has no valid ID: rpm packages are reported as ecosystem %q, which OSV does not know", d.Ecosystem)
	case !d.OSV:
		return a.warn(rel.Path, "OSV has no ecosystem for the distribution %q: rpm packages are reported as ecosystem %q, which no OSV advisory names", rel.ID, d.Ecosystem)
	}
	return nil
}
