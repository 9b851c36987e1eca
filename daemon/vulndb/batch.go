package vulndb

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/assayhq/assay/daemon/errdefs"
)

// maxReportedErrors bounds the per-record errors kept for a report.
const maxReportedErrors = 20

// batch is a set of verified records read from one import or update, held
// until it is applied in one transaction.
type batch struct {
	lim        limits
	recs       map[string]*record
	parsed     int // records that parsed, duplicates included
	invalid    int
	duplicates int
	errs       []string
	bytes      atomic.Int64 // uncompressed record bytes read
	expected   int          // records the inputs announce, for refusing early
}

// limits are the bounds on what one batch may read.
type limits struct {
	maxArchive      int64
	maxRecord       int64
	maxTotal        int64
	invalidFraction float64 // 0..1
}

func newBatch(lim limits) *batch {
	return &batch{lim: lim, recs: map[string]*record{}}
}

// unit is one record to read: a file or a zip entry.
type unit struct {
	where string // for messages: a path, or an archive and a quoted entry name
	read  func() ([]byte, error)
}

// item is one unit read and parsed.
type item struct {
	seq   int
	where string
	rec   *record
	err   error // this record is invalid
	fatal error // the whole batch is refused
}

// tooManyInvalid says whether invalid records exceed the tolerated fraction
// of n records.
func (b *batch) tooManyInvalid(n int) bool {
	return float64(b.invalid) > b.lim.invalidFraction*float64(n)
}

// fail counts one invalid record. It returns an error that refuses the
// whole batch once the invalid records alone exceed the tolerated fraction
// of what the inputs announced.
func (b *batch) fail(where string, err error) error {
	b.invalid++
	if len(b.errs) < maxReportedErrors {
		b.errs = append(b.errs, fmt.Sprintf("%s: %v", where, err))
	}
	if b.expected > 0 && b.tooManyInvalid(b.expected) {
		return b.refuse()
	}
	return nil
}

func (b *batch) refuse() error {
	first := ""
	if len(b.errs) > 0 {
		first = " (first: " + b.errs[0] + ")"
	}
	return fmt.Errorf("%d invalid OSV records%s, more than %g%% of the input; refusing all of it: %w",
		b.invalid, first, b.lim.invalidFraction*100, errdefs.ErrInvalid)
}

// collect takes one parsed unit into the batch. Units arrive in any order;
// of two versions of one id the newer (modified) wins, then the later in
// input order.
func (b *batch) collect(it item) error {
	if it.fatal != nil {
		return it.fatal
	}
	if it.err != nil {
		return b.fail(it.where, it.err)
	}
	b.parsed++
	r := it.rec
	r.seq = it.seq
	if old, ok := b.recs[r.id]; ok {
		b.duplicates++
		if old.modified.After(r.modified) || (old.modified.Equal(r.modified) && old.seq > r.seq) {
			return nil
		}
	}
	b.recs[r.id] = r
	return nil
}

// read reads and parses units on every CPU. It stops at the first error
// that refuses the whole batch, or when ctx is done.
func (b *batch) read(ctx context.Context, units []unit) error {
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := make(chan item, 64)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(units) || ctx.Err() != nil {
					return
				}
				out <- b.readUnit(i, units[i])
			}
		}()
	}
	go func() {
		wg.Wait()
		close(out)
	}()
	var stop error
	for it := range out { // drained to the end, so no worker is left blocked
		if stop != nil {
			continue
		}
		if err := b.collect(it); err != nil {
			stop = err
			cancel()
		}
	}
	if err := parent.Err(); err != nil {
		return err
	}
	return stop
}

func (b *batch) readUnit(seq int, u unit) item {
	it := item{seq: seq, where: u.where}
	raw, err := u.read()
	if err != nil {
		it.err = err
		return it
	}
	if total := b.bytes.Add(int64(len(raw))); total > b.lim.maxTotal {
		it.fatal = fmt.Errorf("the input holds more than %d bytes of records, the limit: %w", b.lim.maxTotal, errdefs.ErrInvalid)
		return it
	}
	it.rec, it.err = parseRecord(raw)
	return it
}

// finish checks the batch as a whole once everything is read.
func (b *batch) finish() error {
	if b.parsed+b.invalid == 0 {
		return fmt.Errorf("no OSV records found: %w", errdefs.ErrInvalid)
	}
	if b.tooManyInvalid(b.parsed + b.invalid) {
		return b.refuse()
	}
	return nil
}

// sorted returns the records in id order (bbolt writes faster in key order,
// and results are reproducible).
func (b *batch) sorted() []*record {
	out := make([]*record, 0, len(b.recs))
	for _, r := range b.recs {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func (b *batch) withdrawn() int {
	n := 0
	for _, r := range b.recs {
		if r.withdrawn {
			n++
		}
	}
	return n
}

// readPaths reads directories (recursively, *.json), JSON files and zip
// archives. Every input is listed first, so that the number of records is
// known before any is parsed.
func (b *batch) readPaths(ctx context.Context, paths []string) error {
	var units []unit
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("%w: %w", err, errdefs.ErrInvalid)
		}
		switch {
		case fi.IsDir():
			err := filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if err := ctx.Err(); err != nil {
					return err
				}
				// Symbolic links are not followed: a directory of records
				// is read as it is.
				if d.Type().IsRegular() && isJSONName(d.Name()) {
					units = append(units, b.fileUnit(path))
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("read directory %s: %w", p, err)
			}
		case !fi.Mode().IsRegular():
			return fmt.Errorf("%s is neither a directory nor a regular file: %w", p, errdefs.ErrInvalid)
		case isJSONName(p):
			units = append(units, b.fileUnit(p))
		default:
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			files = append(files, f)
			zr, err := b.openZip(f, fi.Size())
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			units = append(units, b.zipUnits(p, zr)...)
		}
	}
	b.expected += len(units)
	return b.read(ctx, units)
}

func isJSONName(name string) bool {
	return strings.HasSuffix(strings.ToLower(name), ".json")
}

func (b *batch) fileUnit(path string) unit {
	return unit{where: path, read: func() ([]byte, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return nil, err
		}
		if fi.Size() > b.lim.maxRecord {
			return nil, fmt.Errorf("%d bytes, larger than the %d-byte limit for one record", fi.Size(), b.lim.maxRecord)
		}
		raw, err := io.ReadAll(io.LimitReader(f, b.lim.maxRecord+1))
		if err != nil {
			return nil, err
		}
		if int64(len(raw)) > b.lim.maxRecord {
			return nil, fmt.Errorf("larger than the %d-byte limit for one record", b.lim.maxRecord)
		}
		return raw, nil
	}}
}

// openZip opens an archive of size bytes, refusing it when it is larger
// than the archive limit or not a zip.
func (b *batch) openZip(r io.ReaderAt, size int64) (*zip.Reader, error) {
	if size > b.lim.maxArchive {
		return nil, fmt.Errorf("archive of %d bytes is larger than the %d-byte limit: %w", size, b.lim.maxArchive, errdefs.ErrInvalid)
	}
	zr, err := zip.NewReader(r, size)
	// Entry names are never used as paths, so names zip calls insecure
	// ("../x.json") are harmless here.
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, fmt.Errorf("not a valid zip archive: %w: %w", err, errdefs.ErrInvalid)
	}
	return zr, nil
}

// readZip reads every *.json entry of an archive.
func (b *batch) readZip(ctx context.Context, label string, r io.ReaderAt, size int64) error {
	zr, err := b.openZip(r, size)
	if err != nil {
		return err
	}
	// A zip bomb is refused unread: records are held in memory until
	// applied, and archive/zip never reads beyond an entry's declared
	// size, so the declared sizes bound what reading would cost.
	var declared uint64
	for _, f := range zr.File {
		if !f.FileInfo().IsDir() && isJSONName(f.Name) {
			declared += min(f.UncompressedSize64, uint64(b.lim.maxRecord))
		}
	}
	if declared > bombFloor && declared > maxZipRatio*uint64(max(size, 1)) {
		return fmt.Errorf("%s declares %d bytes of records from %d compressed, more than %d:1: refused unread as a zip bomb: %w",
			label, declared, size, maxZipRatio, errdefs.ErrInvalid)
	}
	units := b.zipUnits(label, zr)
	b.expected += len(units)
	return b.read(ctx, units)
}

// OSV records compress about 2-10:1 in a zip (each entry on its own); an
// archive declaring more than maxZipRatio:1, past bombFloor bytes, is a
// bomb.
const (
	maxZipRatio = 100
	bombFloor   = 64 << 20
)

// zipUnits lists an archive's *.json entries. (archive/zip reads entries
// of one archive concurrently through its io.ReaderAt.)
func (b *batch) zipUnits(label string, zr *zip.Reader) []unit {
	var units []unit
	for _, f := range zr.File {
		if f.FileInfo().IsDir() || !isJSONName(f.Name) {
			continue
		}
		units = append(units, unit{
			where: fmt.Sprintf("%s: entry %q", label, f.Name),
			read: func() ([]byte, error) {
				if f.UncompressedSize64 > uint64(b.lim.maxRecord) {
					return nil, fmt.Errorf("%d bytes uncompressed, larger than the %d-byte limit for one record (refused unread)", f.UncompressedSize64, b.lim.maxRecord)
				}
				return readZipEntry(f, b.lim.maxRecord)
			},
		})
	}
	return units
}

// readZipEntry reads at most max bytes of an entry. The entry's declared
// size is not trusted: the reader stops at the limit whatever the header
// says (archive/zip itself also refuses data beyond the declared size).
func readZipEntry(f *zip.File, max int64) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, max+1))
	switch {
	case errors.Is(err, zip.ErrFormat) || errors.Is(err, zip.ErrChecksum):
		return nil, fmt.Errorf("corrupt entry: its data does not match its header (a zip bomb?): %w", err)
	case err != nil:
		return nil, err
	case int64(len(raw)) > max:
		return nil, fmt.Errorf("inflates to more than the %d-byte limit for one record (a zip bomb?)", max)
	}
	return raw, nil
}
