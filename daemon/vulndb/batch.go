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
	"sort"
	"strings"

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
	bytes      int64 // uncompressed record bytes read
	expected   int   // records the inputs announce, for refusing early
}

// limits are the bounds on what one batch may read.
type limits struct {
	maxArchive     int64
	maxRecord      int64
	maxTotal       int64
	invalidPercent float64 // fraction, 0..1
}

func newBatch(lim limits) *batch {
	return &batch{lim: lim, recs: map[string]*record{}}
}

// tooManyInvalid says whether invalid records exceed the tolerated fraction
// of n records.
func (b *batch) tooManyInvalid(n int) bool {
	return float64(b.invalid) > b.lim.invalidPercent*float64(n)
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
		b.invalid, first, b.lim.invalidPercent*100, errdefs.ErrInvalid)
}

// add verifies one record's bytes.
func (b *batch) add(where string, raw []byte) error {
	b.bytes += int64(len(raw))
	if b.bytes > b.lim.maxTotal {
		return fmt.Errorf("the input holds more than %d bytes of records, the limit: %w", b.lim.maxTotal, errdefs.ErrInvalid)
	}
	r, err := parseRecord(raw)
	if err != nil {
		return b.fail(where, err)
	}
	b.parsed++
	if old, ok := b.recs[r.id]; ok {
		b.duplicates++
		if old.modified.After(r.modified) {
			return nil // keep the newer version
		}
	}
	b.recs[r.id] = r
	return nil
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
	var jsonFiles []string
	type zipInput struct {
		path string
		f    *os.File
		zr   *zip.Reader
	}
	var zips []zipInput
	defer func() {
		for _, z := range zips {
			z.f.Close()
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
					jsonFiles = append(jsonFiles, path)
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("read directory %s: %w", p, err)
			}
		case !fi.Mode().IsRegular():
			return fmt.Errorf("%s is neither a directory nor a regular file: %w", p, errdefs.ErrInvalid)
		case isJSONName(p):
			jsonFiles = append(jsonFiles, p)
		default:
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			zr, err := b.openZip(f, fi.Size())
			if err != nil {
				f.Close()
				return fmt.Errorf("%s: %w", p, err)
			}
			zips = append(zips, zipInput{p, f, zr})
		}
	}
	b.expected = len(jsonFiles)
	for _, z := range zips {
		b.expected += len(z.zr.File)
	}
	for _, p := range jsonFiles {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := b.readJSONFile(p); err != nil {
			return err
		}
	}
	for _, z := range zips {
		if err := b.readZipEntries(ctx, z.path, z.zr); err != nil {
			return err
		}
	}
	return nil
}

func isJSONName(name string) bool {
	return strings.HasSuffix(strings.ToLower(name), ".json")
}

func (b *batch) readJSONFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return b.fail(path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return b.fail(path, err)
	}
	if fi.Size() > b.lim.maxRecord {
		return b.fail(path, fmt.Errorf("%d bytes, larger than the %d-byte limit for one record", fi.Size(), b.lim.maxRecord))
	}
	raw, err := io.ReadAll(io.LimitReader(f, b.lim.maxRecord+1))
	if err != nil {
		return b.fail(path, err)
	}
	if int64(len(raw)) > b.lim.maxRecord {
		return b.fail(path, fmt.Errorf("larger than the %d-byte limit for one record", b.lim.maxRecord))
	}
	return b.add(path, raw)
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
	b.expected += len(zr.File)
	return b.readZipEntries(ctx, label, zr)
}

func (b *batch) readZipEntries(ctx context.Context, label string, zr *zip.Reader) error {
	for _, f := range zr.File {
		if err := ctx.Err(); err != nil {
			return err
		}
		if f.FileInfo().IsDir() || !isJSONName(f.Name) {
			continue
		}
		where := fmt.Sprintf("%s: entry %q", label, f.Name)
		if f.UncompressedSize64 > uint64(b.lim.maxRecord) {
			if err := b.fail(where, fmt.Errorf("%d bytes uncompressed, larger than the %d-byte limit for one record (refused unread)", f.UncompressedSize64, b.lim.maxRecord)); err != nil {
				return err
			}
			continue
		}
		raw, err := readZipEntry(f, b.lim.maxRecord)
		if err != nil {
			if err := b.fail(where, err); err != nil {
				return err
			}
			continue
		}
		if err := b.add(where, raw); err != nil {
			return err
		}
	}
	return nil
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
	if err != nil {
		return nil, err
	}
	if int64(len(raw)) > max {
		return nil, fmt.Errorf("inflates to more than the %d-byte limit for one record (a zip bomb?)", max)
	}
	return raw, nil
}
