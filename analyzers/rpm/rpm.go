package rpm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/assayhq/assay/analyzers/distro"
	"github.com/assayhq/assay/plugins/sdk"
)

// Name and Version are what the extractor (and its plugin) call
// themselves.
const (
	Name    = "rpm"
	Version = "0.2.0"
)

// Databases are the rpm databases the extractor reads, as image paths, in
// the order their packages are reported: rpm's database directory of
// current Fedora and openSUSE (/usr/lib/sysimage/rpm), then the classic
// one; in each the SQLite database (rpm 4.16 and later: RHEL 9, Fedora 33
// and later), the ndb one (SUSE) and the Berkeley DB one (RHEL 8 and
// older, CentOS). The format is told by the content, not the name.
var Databases = []string{
	"/usr/lib/sysimage/rpm/rpmdb.sqlite",
	"/usr/lib/sysimage/rpm/Packages.db",
	"/usr/lib/sysimage/rpm/Packages",
	"/var/lib/rpm/rpmdb.sqlite",
	"/var/lib/rpm/Packages.db",
	"/var/lib/rpm/Packages",
}

// walSuffix names a SQLite database's write-ahead log beside it.
const walSuffix = "-wal"

// PubKeyName is the name under which rpm records the OpenPGP keys it
// trusts (rpm --import) as packages: they are not packages and are not
// reported.
const PubKeyName = "gpg-pubkey"

// Ecosystem is the family the packages are emitted with; the image merge
// (distro.Finish) names the distribution's.
const Ecosystem = distro.UnknownEcosystem

// Bounds. Real databases are a few MB to a few hundred MB (a CentOS 7
// image with everything installed); go-rpmdb holds all of a database's
// packages in memory, so larger ones are not read.
const (
	DefaultMaxFileBytes = 256 << 20
	DefaultReadTimeout  = time.Minute
)

// Bounds of the file lists of one layer (and of one reading), and of one
// OwnedFiles message (well under gRPC's default 4 MiB message).
const (
	MaxOwnedPaths   = 200_000
	MaxOwnedBytes   = 32 << 20
	ownedChunkPaths = 10_000
	ownedChunkBytes = 1 << 20
)

// Resources are what the plugin asks the sandbox for: the memory is
// go-rpmdb's, which holds a whole database's packages (file lists
// included), and that of the database held while it is read (/tmp's for
// a SQLite database); the pids are the reader process's threads besides
// the plugin's own. The time is the host's, since it covers the whole
// image's layers.
var Resources = sdk.Resources{MemoryBytes: 512 << 20, Pids: 64}

// Extractor reads the rpm databases of a layer. A fresh one is made for
// each layer (NewExtractor); its zero value, with a ReadTimeout, is one
// too.
type Extractor struct {
	// ReadTimeout bounds the reading of one database by the reader
	// process (zero: DefaultReadTimeout), and so does half the time left
	// before ctx's deadline. A database that takes longer is skipped with
	// a warning.
	ReadTimeout time.Duration

	// tmp is the layer's private temporary directory, made for the first
	// SQLite database or write-ahead log; Finish removes it, and so does
	// a cleanup if the layer ends without a Finish (a broken tar).
	tmp     string
	cleanup runtime.Cleanup
	// sqlite and wal are the SQLite databases and write-ahead logs copied
	// to tmp, by image path of the database; they are read in Finish,
	// when both are there whatever their order in the tar.
	sqlite map[string]string
	wal    map[string]bool
	// read are the packages of the databases read, by image path.
	read map[string][]found
	// What the file lists kept so far, against MaxOwnedPaths and
	// MaxOwnedBytes.
	ownedPaths, ownedBytes int
}

// found is one package of one database.
type found struct {
	key   nevra
	pkg   sdk.Package
	files []string
}

// nevra identifies an installed package.
type nevra struct {
	name, version, release, arch string
	epoch                        int
}

var (
	_ sdk.Extractor = (*Extractor)(nil)
	_ sdk.Finisher  = (*Extractor)(nil)
)

// NewExtractor returns an extractor for one layer.
func NewExtractor() sdk.Extractor { return &Extractor{} }

// Name implements sdk.Extractor.
func (*Extractor) Name() string { return Name }

// Version implements sdk.Extractor.
func (*Extractor) Version() string { return Version }

// MaxFileBytes implements sdk.Extractor.
func (*Extractor) MaxFileBytes() int64 { return DefaultMaxFileBytes }

// Required implements sdk.Extractor: the databases of Databases and their
// write-ahead logs, as regular files (a link there is never followed).
func (*Extractor) Required(f sdk.FileInfo) bool {
	if !f.Mode.IsRegular() {
		return false
	}
	return slices.Contains(Databases, strings.TrimSuffix(f.Path, walSuffix))
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

// detect tells the format of a database from its first 16 bytes: SQLite's
// magic string, ndb's "RpmP", or a Berkeley DB hash database's magic
// number (0x061561, in either byte order) at offset 12.
func detect(h []byte) format {
	switch {
	case len(h) >= 16 && string(h[:16]) == "SQLite format 3\x00":
		return formatSQLite
	case len(h) >= 4 && string(h[:4]) == "RpmP":
		return formatNDB
	case len(h) >= 16 && (binary.LittleEndian.Uint32(h[12:]) == 0x061561 || binary.BigEndian.Uint32(h[12:]) == 0x061561):
		return formatBDB
	}
	return formatUnknown
}

// Extract implements sdk.Extractor. A Berkeley DB or ndb database is held
// in memory and read at once; a SQLite database and a write-ahead log are
// copied to the temporary directory and read in Finish. Only errors that
// must stop the layer (cancellation, a layer limit, the host gone) are
// returned; anything wrong with a database is a warning.
func (e *Extractor) Extract(ctx context.Context, f sdk.FileInfo, r io.Reader, out sdk.Output) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("rpm: %w", err)
	}
	if db, ok := strings.CutSuffix(f.Path, walSuffix); ok {
		return e.copyWAL(db, f.Path, r, out)
	}
	// A later entry of the same path replaces an earlier one.
	delete(e.read, f.Path)
	e.dropSQLite(f.Path)
	head := make([]byte, 16)
	n, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("rpm: %w", err)
	}
	head = head[:n]
	kind := detect(head)
	if kind == formatUnknown {
		return out.Warning(sdk.Warning{Path: f.Path, Message: "skipped: not an rpm database (no SQLite, ndb or Berkeley DB hash header)"})
	}
	content := io.MultiReader(bytes.NewReader(head), r)
	if kind == formatSQLite {
		return e.copySQLite(f.Path, content, out)
	}
	file, err := hold(content)
	if err != nil {
		if errors.Is(err, errRead) {
			return fmt.Errorf("rpm: %w", err)
		}
		return out.Warning(sdk.Warning{Path: f.Path, Message: fmt.Sprintf("skipped: no room to hold the %s database (memory, or the sandbox's /tmp, which holds sandbox.tmpfs_bytes): %v", kind, err)})
	}
	defer file.Close()
	recs, err := readDatabase(ctx, file, "", e.timeout(ctx))
	return e.database(ctx, f.Path, kind, recs, err, out)
}

// errRead marks an error of the layer's stream (cancelled, a layer limit,
// a broken tar) met while copying a file out of it.
var errRead = errors.New("reading the layer")

// spool copies r to w: an error of r wraps errRead, one of w is as is.
func spool(w io.Writer, r io.Reader) error {
	buf := make([]byte, 64<<10)
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return fmt.Errorf("%w: %w", errRead, rerr)
		}
	}
}

// hold returns a file holding what r reads, for the reader process:
// anonymous memory (memfd_create), which /tmp's small tmpfs does not
// bound, or, where the kernel refuses that, an unlinked file of the
// temporary directory.
func hold(r io.Reader) (*os.File, error) {
	var f *os.File
	if fd, err := unix.MemfdCreate("assay-rpm-database", unix.MFD_CLOEXEC); err == nil {
		f = os.NewFile(uintptr(fd), "memfd:assay-rpm-database")
	} else {
		if f, err = os.CreateTemp("", "assay-rpm-db-"); err != nil {
			return nil, err
		}
		if err := os.Remove(f.Name()); err != nil {
			f.Close()
			return nil, err
		}
	}
	if err := spool(f, r); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// timeout is the reader's time for one database: a database that hangs
// go-rpmdb must leave time for the others and for sending what was found,
// so at most half of what is left.
func (e *Extractor) timeout(ctx context.Context) time.Duration {
	t := e.ReadTimeout
	if t <= 0 {
		t = DefaultReadTimeout
	}
	if dl, ok := ctx.Deadline(); ok {
		t = min(t, time.Until(dl)/2)
	}
	return t
}

// dir returns the directory of tmp that holds the copy of the database db
// and of its write-ahead log, made if need be.
func (e *Extractor) dir(db string) (string, error) {
	if e.tmp == "" {
		dir, err := os.MkdirTemp("", "assay-rpm-")
		if err != nil {
			return "", err
		}
		e.tmp = dir
		e.cleanup = runtime.AddCleanup(e, func(dir string) { _ = os.RemoveAll(dir) }, dir)
	}
	d := filepath.Join(e.tmp, strconv.Itoa(slices.Index(Databases, db)))
	if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", err
	}
	return d, nil
}

// create writes what r reads to the new file name.
func create(name string, r io.Reader) error {
	out, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	err = spool(out, r)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(name) // leave the room to the next file
	}
	return err
}

// copySQLite copies the SQLite database db to its directory of tmp.
// SQLite needs a writable directory beside the database (for its
// shared-memory index of the write-ahead log, which it rebuilds from the
// log, so the image's rpmdb.sqlite-shm is not needed).
func (e *Extractor) copySQLite(db string, r io.Reader, out sdk.Output) error {
	dir, err := e.dir(db)
	if err != nil {
		return out.Warning(sdk.Warning{Path: db, Message: fmt.Sprintf("skipped: no temporary directory to read the SQLite database in: %v", err)})
	}
	dst := filepath.Join(dir, "rpmdb.sqlite")
	if err := create(dst, r); err != nil {
		if errors.Is(err, errRead) {
			return fmt.Errorf("rpm: %w", err)
		}
		return out.Warning(sdk.Warning{Path: db, Message: fmt.Sprintf("skipped: could not copy the SQLite database to %s (the sandbox's /tmp holds sandbox.tmpfs_bytes): %v", e.tmp, err)})
	}
	if e.sqlite == nil {
		e.sqlite = map[string]string{}
	}
	e.sqlite[db] = dst
	return nil
}

// dropSQLite forgets the copy of db, if any (its log stays).
func (e *Extractor) dropSQLite(db string) {
	if p, ok := e.sqlite[db]; ok {
		_ = os.Remove(p)
		delete(e.sqlite, db)
	}
}

// copyWAL copies the write-ahead log of the database db beside its copy.
func (e *Extractor) copyWAL(db, name string, r io.Reader, out sdk.Output) error {
	const missing = "packages it alone records are missing"
	dir, err := e.dir(db)
	if err != nil {
		return out.Warning(sdk.Warning{Path: name, Message: fmt.Sprintf("write-ahead log not read: no temporary directory to copy it to: %v; %s", err, missing)})
	}
	if err := create(filepath.Join(dir, "rpmdb.sqlite"+walSuffix), r); err != nil {
		delete(e.wal, db)
		if errors.Is(err, errRead) {
			return fmt.Errorf("rpm: %w", err)
		}
		return out.Warning(sdk.Warning{Path: name, Message: fmt.Sprintf("write-ahead log not read: could not copy it to %s (the sandbox's /tmp holds sandbox.tmpfs_bytes): %v; %s", e.tmp, err, missing)})
	}
	if e.wal == nil {
		e.wal = map[string]bool{}
	}
	e.wal[db] = true
	return nil
}

// Finish implements sdk.Finisher: it reads the SQLite databases (with the
// write-ahead logs the layer holds), then emits the packages of all the
// layer's databases and the files each owns.
func (e *Extractor) Finish(ctx context.Context, _ sdk.LayerIndex, out sdk.Output) error {
	defer e.removeTmp()
	for _, db := range Databases {
		p, ok := e.sqlite[db]
		if !ok {
			if e.wal[db] {
				if err := out.Warning(sdk.Warning{Path: db + walSuffix, Message: "write-ahead log not read: the layer holds no SQLite database beside it"}); err != nil {
					return err
				}
			}
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("rpm: %w", err)
		}
		recs, err := readDatabase(ctx, nil, p, e.timeout(ctx))
		if rerr := os.RemoveAll(filepath.Dir(p)); rerr != nil {
			slog.WarnContext(ctx, "rpm: could not remove a database copy", "dir", filepath.Dir(p), "error", rerr)
		}
		if err := e.database(ctx, db, formatSQLite, recs, err, out); err != nil {
			return err
		}
	}
	return e.emit(out)
}

// removeTmp removes the temporary directory.
func (e *Extractor) removeTmp() {
	if e.tmp == "" {
		return
	}
	e.cleanup.Stop()
	if err := os.RemoveAll(e.tmp); err != nil {
		slog.Warn("rpm: could not remove the temporary directory", "dir", e.tmp, "error", err)
	}
	e.tmp, e.sqlite, e.wal = "", nil, nil
}

// database takes in the result of reading the database at the image path
// loc. Only errors that must stop the layer are returned.
func (e *Extractor) database(ctx context.Context, loc string, kind format, recs []record, err error, out sdk.Output) error {
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("rpm: %w", ctx.Err())
		}
		return out.Warning(sdk.Warning{Path: loc, Message: fmt.Sprintf("skipped: the %s rpm database could not be read: %v", kind, err)})
	}
	slog.DebugContext(ctx, "rpm: database read", "path", loc, "format", kind.String(), "records", len(recs))
	var (
		pkgs                           []found
		malformed, badSource           int
		pubKeys, badFiles, cut, tooBig int
	)
	for _, r := range recs {
		if r.Name == PubKeyName {
			pubKeys++
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
		p := sdk.Package{
			OS:        distro.RPMs,
			Ecosystem: Ecosystem,
			Name:      r.Name,
			Version:   r.Version + "-" + r.Release,
			Epoch:     epoch,
			Arch:      r.Arch,
			Locations: []string{loc},
		}
		if r.SourceRPM != "" {
			if n, v, ok := ParseSourceRPM(r.SourceRPM); ok {
				p.SourceName, p.SourceVersion = n, v
			} else {
				badSource++
			}
		}
		badFiles += r.FilesBad
		cut += r.FilesDropped
		var files []string
		for _, f := range r.Files {
			if !validPath(f) {
				badFiles++
				continue
			}
			if e.ownedPaths >= MaxOwnedPaths || e.ownedBytes+len(f) > MaxOwnedBytes {
				tooBig++
				continue
			}
			e.ownedPaths++
			e.ownedBytes += len(f)
			files = append(files, f)
		}
		pkgs = append(pkgs, found{key: nevra{r.Name, r.Version, r.Release, r.Arch, epoch}, pkg: p, files: files})
	}
	if e.read == nil {
		e.read = map[string][]found{}
	}
	e.read[loc] = pkgs
	slog.DebugContext(ctx, "rpm: packages", "path", loc, "packages", len(pkgs), "pubkeys", pubKeys, "malformed", malformed)
	for _, w := range []struct {
		n   int
		msg string
	}{
		{malformed, "packages with a malformed name, epoch, version, release or architecture skipped: %d"},
		{badSource, "packages whose source rpm is not <name>-<version>-<release>.src.rpm, reported without a source: %d"},
		{badFiles, "file entries that make no absolute path skipped: %d"},
		{cut + tooBig, fmt.Sprintf("file lists cut short: %%d files over the limit of %d paths (%d bytes) per layer not reported", MaxOwnedPaths, MaxOwnedBytes)},
	} {
		if w.n > 0 {
			if err := out.Warning(sdk.Warning{Path: loc, Message: fmt.Sprintf(w.msg, w.n)}); err != nil {
				return err
			}
		}
	}
	return nil
}

// emit sends the packages of the layer's databases, in the order of
// Databases (a package in two databases is one package with two
// locations), then the files each database says each package owns.
func (e *Extractor) emit(out sdk.Output) error {
	var pkgs []sdk.Package
	index := map[nevra]int{}
	for _, db := range Databases {
		for _, f := range e.read[db] {
			if i, ok := index[f.key]; ok {
				if p := &pkgs[i]; p.Locations[len(p.Locations)-1] != db {
					p.Locations = append(p.Locations, db)
				}
				continue
			}
			index[f.key] = len(pkgs)
			pkgs = append(pkgs, f.pkg)
		}
	}
	for _, p := range pkgs {
		if err := out.Package(p); err != nil {
			return err
		}
	}
	for _, db := range Databases {
		for _, f := range e.read[db] {
			for paths := f.files; len(paths) > 0; {
				n, size := 0, 0
				for n < len(paths) && n < ownedChunkPaths && size+len(paths[n]) <= ownedChunkBytes {
					size += len(paths[n])
					n++
				}
				if err := out.OwnedFiles(sdk.OwnedFiles{OS: distro.RPMs, Owner: f.key.name, Location: db, Paths: paths[:n]}); err != nil {
					return err
				}
				paths = paths[n:]
			}
		}
	}
	e.read = nil
	return nil
}
