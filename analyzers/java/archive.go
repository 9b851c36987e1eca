package java

import (
	"archive/zip"
	"bytes"
	"errors"
	"io"
	"strings"

	"github.com/assayhq/assay/plugins/sdk"
)

// budget is what is left of the work one archive of the image may cause,
// the archives nested in it included.
type budget struct {
	entries int64 // zip entries
	bytes   int64 // bytes decompressed
}

// reading is the reading of one archive of the image and everything
// nested in it.
type reading struct {
	budget budget
	// seen holds the packages emitted, "name\x00version\x00location", so
	// that an artifact named twice in one place is reported once.
	seen map[string]bool
}

// errTooLarge is what limitReader returns past its limit.
var errTooLarge = errors.New("more bytes than declared")

// limitReader reads at most left bytes of r, and fails with errTooLarge
// when r holds more: unlike io.LimitReader, which would just stop.
type limitReader struct {
	r    io.Reader
	left int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, errTooLarge
	}
	// Read one byte past the limit to tell "exactly the limit" from
	// "more than the limit".
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n + int(l.left), errTooLarge
	}
	return n, err
}

// errSpent ends the reading of an archive of the image whose budget is
// spent; the warning was sent.
var errSpent = errors.New("budget spent")

// readArchive reads the archive of size bytes ra at loc (an image path,
// "outer.war!/WEB-INF/lib/x.jar" for a nested one), depth levels deep,
// and what is nested in it. Only errors that must stop the analysis are
// returned.
func (a *analysis) readArchive(r *reading, ra io.ReaderAt, size int64, loc string, depth int) error {
	err := a.readZip(r, io.NewSectionReader(ra, 0, size), size, loc, depth)
	if errors.Is(err, errSpent) {
		return nil
	}
	return err
}

// readZip is readArchive without the handling of errSpent, which ends
// every level up to the archive of the image.
func (a *analysis) readZip(r *reading, ra io.ReaderAt, size int64, loc string, depth int) error {
	if err := a.ctx.Err(); err != nil {
		return err
	}
	declared, actual, ok := countEntries(ra, size, r.budget.entries)
	if ok && (declared > uint64(r.budget.entries) || actual > r.budget.entries) {
		a.stats.Refused++
		if err := a.warn(loc, "not read: the archive declares %d entries and holds at least %d, over the %d left of the limit of %d entries per archive of the image (nested archives included)",
			declared, actual, r.budget.entries, a.lim.entries); err != nil {
			return err
		}
		return errSpent
	}
	zr, err := zip.NewReader(ra, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // names are never used as paths here
		a.stats.Malformed++
		return a.warn(loc, "skipped: not a readable zip archive: %v", err)
	}
	if n := int64(len(zr.File)); n > r.budget.entries {
		a.stats.Refused++
		if err := a.warn(loc, "not read: %d entries, over the %d left of the limit of %d entries per archive of the image (nested archives included)",
			n, r.budget.entries, a.lim.entries); err != nil {
			return err
		}
		return errSpent
	}
	r.budget.entries -= int64(len(zr.File))

	var manifest *zip.File
	var nested []*zip.File
	found := 0
	for _, f := range zr.File {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		switch {
		case isPomProperties(f.Name):
			ok, err := a.pomProperties(r, f, loc)
			if err != nil {
				return err
			}
			if ok {
				found++
			}
		case manifest == nil && strings.EqualFold(f.Name, "META-INF/MANIFEST.MF"):
			manifest = f
		case !f.FileInfo().IsDir() && IsArchive(f.Name):
			nested = append(nested, f)
		}
	}
	if found == 0 {
		if err := a.manifest(r, manifest, loc); err != nil {
			return err
		}
	}
	for _, f := range nested {
		if err := a.nested(r, f, loc, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// isPomProperties tells whether a zip entry is
// META-INF/maven/<groupId>/<artifactId>/pom.properties.
func isPomProperties(name string) bool {
	p := strings.Split(name, "/")
	return len(p) == 5 && strings.EqualFold(p[0], "META-INF") && p[1] == "maven" && p[2] != "" && p[3] != "" && p[4] == "pom.properties"
}

// pomProperties reads one pom.properties of the archive at loc and emits
// its package; ok says whether it named one.
func (a *analysis) pomProperties(r *reading, f *zip.File, loc string) (ok bool, err error) {
	where := loc + "!/" + f.Name
	data, err := a.readEntry(r, f, where, a.lim.metaBytes)
	if err != nil || data == nil {
		return false, err
	}
	c, err := ParsePomProperties(data)
	if err != nil {
		a.stats.Malformed++
		return false, a.warn(where, "skipped: %v", err)
	}
	return true, a.emitPackage(r, c, loc)
}

// manifest names the archive at loc by its manifest, f (nil: none), when
// it has no pom.properties; see Manifest.Coordinates for how much that
// name is worth. An archive it names nothing for is a warning.
func (a *analysis) manifest(r *reading, f *zip.File, loc string) error {
	if f == nil {
		a.stats.Unidentified++
		return a.warn(loc, "no package reported: the archive has no META-INF/maven/*/*/pom.properties and no META-INF/MANIFEST.MF")
	}
	where := loc + "!/" + f.Name
	data, err := a.readEntry(r, f, where, a.lim.metaBytes)
	if err != nil || data == nil {
		return err
	}
	m, err := ParseManifest(data)
	if err != nil {
		a.stats.Malformed++
		return a.warn(where, "no package reported: the archive has no pom.properties and its manifest is unreadable: %v", err)
	}
	c, err := m.Coordinates()
	if err != nil {
		a.stats.Unidentified++
		return a.warn(loc, "no package reported: the archive has no pom.properties and %v", err)
	}
	a.stats.FromManifest++
	return a.emitPackage(r, c, loc)
}

// nested reads an archive inside the archive at outer into memory and
// reads it there.
func (a *analysis) nested(r *reading, f *zip.File, outer string, depth int) error {
	loc := outer + "!/" + f.Name
	if depth > a.lim.depth {
		a.stats.Refused++
		return a.warn(loc, "not read: an archive nested more than %d levels deep", a.lim.depth)
	}
	data, err := a.readEntry(r, f, loc, a.lim.fileBytes)
	if err != nil || data == nil {
		return err
	}
	a.stats.Nested++
	return a.readZip(r, bytes.NewReader(data), int64(len(data)), loc, depth)
}

// readEntry decompresses the zip entry f (at where) into memory if it
// declares at most limit bytes and the budget has them, and holds no
// more than it declares. data is nil, with a warning sent, when the entry
// was skipped; err is errSpent when the budget is spent, or what must
// stop the analysis.
func (a *analysis) readEntry(r *reading, f *zip.File, where string, limit int64) (data []byte, err error) {
	declared := f.UncompressedSize64
	if declared > uint64(limit) {
		a.stats.Refused++
		return nil, a.warn(where, "skipped: declares %d bytes, over the limit of %d bytes", declared, limit)
	}
	if declared > uint64(r.budget.bytes) {
		a.stats.Refused++
		if err := a.warn(where, "not read, nor anything after it in the archive: declares %d bytes, over the %d left of the limit of %d bytes decompressed per archive of the image (nested archives included)",
			declared, r.budget.bytes, a.lim.bytes); err != nil {
			return nil, err
		}
		return nil, errSpent
	}
	// The budget pays what the entry declares, so that entries that lie
	// about their size and fail cost it too.
	r.budget.bytes -= int64(declared)
	rc, err := f.Open()
	if err != nil {
		a.stats.Malformed++
		return nil, a.warn(where, "skipped: %v", err)
	}
	defer rc.Close()
	// archive/zip fails a read past the declared size and checks the
	// size and CRC-32 at the end; the limit is a second guard.
	lr := &limitReader{r: rc, left: max(int64(declared), 1)}
	data = make([]byte, declared)
	_, err = io.ReadFull(lr, data)
	if err == nil {
		// Read to the end: archive/zip checks the CRC-32 there, and
		// a byte more than declared is an error.
		var extra int64
		extra, err = io.Copy(io.Discard, lr)
		if err == nil && extra > 0 {
			err = errTooLarge
		}
	}
	switch {
	case err == nil:
		return data, nil
	case errors.Is(err, errTooLarge), errors.Is(err, zip.ErrFormat):
		a.stats.Malformed++
		return nil, a.warn(where, "skipped: corrupt, or holds more than the %d bytes it declares", declared)
	}
	a.stats.Malformed++
	return nil, a.warn(where, "skipped: %v", err)
}

// emitPackage emits the package c found in the archive at loc, once.
func (a *analysis) emitPackage(r *reading, c Coordinates, loc string) error {
	// Names in a zip may hold any bytes; the protocol carries UTF-8.
	loc = strings.ToValidUTF8(loc, "\uFFFD")
	key := c.Name() + "\x00" + c.Version + "\x00" + loc
	if r.seen[key] {
		return nil
	}
	r.seen[key] = true
	a.stats.Packages++
	return a.out.Package(sdk.Package{
		Ecosystem: Ecosystem,
		Name:      c.Name(),
		Version:   c.Version,
		PURL:      c.PURL(),
		Locations: []string{loc},
	})
}
