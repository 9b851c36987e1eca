package java

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/assayhq/assay/plugins/sdk"
)

// entry is one file of a zip built by a test.
type entry struct {
	name  string
	data  []byte
	store bool // stored, not deflated
}

// makeZip builds a zip with archive/zip's writer.
func makeZip(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.store {
			h.Method = zip.Store
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pomEntry is the pom.properties Maven writes for g:a:v.
func pomEntry(g, a, v string) entry {
	return entry{name: "META-INF/maven/" + g + "/" + a + "/pom.properties",
		data: fmt.Appendf(nil, "#Created by Apache Maven 3.8.7\ngroupId=%s\nartifactId=%s\nversion=%s\n", g, a, v)}
}

// rawZip builds a zip holding one entry whose header says what h says,
// with raw (already compressed) data: a liar, if h says so.
func rawZip(t testing.TB, h *zip.FileHeader, raw []byte, before ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range before {
		w, err := zw.Create(e.name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if h.CompressedSize64 == 0 {
		h.CompressedSize64 = uint64(len(raw))
	}
	w, err := zw.CreateRaw(h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// deflate compresses data.
func deflate(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	fw, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pkgLines returns "location name version" of each package, sorted.
func pkgLines(pkgs []sdk.Package) []string {
	var l []string
	for _, p := range pkgs {
		l = append(l, strings.Join(p.Locations, ",")+" "+p.Name+" "+p.Version)
	}
	slices.Sort(l)
	return l
}

// warnedAbout returns the path of each warning.
func warnedAbout(ws []sdk.Warning) map[string]string {
	m := map[string]string{}
	for _, w := range ws {
		m[w.Path] += w.Message + "; "
	}
	return m
}

// A hostile layer: links named like archives to jars at /etc/shadow and
// /etc/gshadow, to a secret, in loops and to nowhere; a hard link, a
// FIFO and a directory named like archives; garbage, truncated, empty and
// oversize archives; bad pom.properties and manifests. No link is
// followed (the jars behind them are not named like archives, so they
// are never read), each bad file is a warning, and no warning quotes a
// file.
func TestHostile(t *testing.T) {
	nop := readFile(t, javaJar("slf4j-nop.jar"))
	jul := readFile(t, javaJar("jul-to-slf4j.jar"))
	api := readFile(t, javaJar("slf4j-api.jar"))
	const secret = "root:$6$TOPSECRET:19000:0:99999:7:::\n"
	layer := makeLayer(t,
		tarEntry{name: "etc/shadow", data: nop},
		tarEntry{name: "etc/gshadow", data: jul},
		tarEntry{name: "etc/secret", data: []byte(secret)},
		tarEntry{name: "opt/app/abs.jar", typ: tar.TypeSymlink, link: "/etc/shadow"},
		tarEntry{name: "opt/app/rel.jar", typ: tar.TypeSymlink, link: "../../../../../../../../../../etc/gshadow"},
		tarEntry{name: "opt/app/secret.jar", typ: tar.TypeSymlink, link: "/etc/secret"},
		tarEntry{name: "opt/app/loop.jar", typ: tar.TypeSymlink, link: "loop.jar"},
		tarEntry{name: "opt/app/a.jar", typ: tar.TypeSymlink, link: "b.jar"},
		tarEntry{name: "opt/app/b.jar", typ: tar.TypeSymlink, link: "a.jar"},
		tarEntry{name: "opt/app/gone.jar", typ: tar.TypeSymlink, link: "/nonexistent.jar"},
		tarEntry{name: "opt/app/dir.jar", typ: tar.TypeSymlink, link: "/opt"},
		tarEntry{name: "opt/app/hard.jar", typ: tar.TypeLink, link: "etc/shadow"},
		tarEntry{name: "opt/app/fifo.jar", typ: tar.TypeFifo},
		tarEntry{name: "opt/app/exploded.jar/", typ: tar.TypeDir},
		tarEntry{name: "opt/app/big.jar", data: makeZip(t, pomEntry("g", "big", "1"), entry{name: "pad", data: bytes.Repeat([]byte{1}, 70<<10), store: true})},
		tarEntry{name: "opt/app/garbage.jar", data: []byte("\x00\x01\x02garbage\xff" + secret)},
		tarEntry{name: "opt/app/trunc.jar", data: api[:len(api)/2]},
		tarEntry{name: "opt/app/empty.jar"},
		tarEntry{name: "opt/app/badpom.jar", data: makeZip(t, entry{name: "META-INF/maven/g/a/pom.properties", data: []byte("groupId=g\nartifactId=a\n" + secret)})},
		tarEntry{name: "opt/app/badmf.jar", data: makeZip(t, entry{name: "META-INF/MANIFEST.MF", data: []byte("Manifest-Version: 1.0\n" + secret)})},
		tarEntry{name: "proc/1/root/x.jar", data: nop}, // not read
		tarEntry{name: "srv/exploded.war/WEB-INF/lib/slf4j-nop.jar", data: nop},
	)
	pkgs, warnings := extract(t, layer, newExtractor(smallLimits()))
	want := []string{
		"/srv/exploded.war/WEB-INF/lib/slf4j-nop.jar org.slf4j:slf4j-nop 1.7.32",
	}
	if got := pkgLines(pkgs); !slices.Equal(got, want) {
		t.Errorf("packages\n%q\nwant\n%q", got, want)
	}
	for _, w := range warnings {
		if strings.Contains(w.Message, "TOPSECRET") || strings.Contains(w.Message, "root:") {
			t.Errorf("warning quotes a file: %+v", w)
		}
	}
	warned := warnedAbout(warnings)
	for p, msg := range map[string]string{
		"/opt/app/big.jar":     "more than the 65536 this extractor reads; skipped",
		"/opt/app/garbage.jar": "not a readable zip archive",
		"/opt/app/trunc.jar":   "not a readable zip archive",
		"/opt/app/empty.jar":   "not a readable zip archive",
		"/opt/app/badpom.jar!/META-INF/maven/g/a/pom.properties": "version",
		"/opt/app/badpom.jar":                      "no package reported",
		"/opt/app/badmf.jar!/META-INF/MANIFEST.MF": "its manifest is unreadable",
	} {
		if !strings.Contains(warned[p], msg) {
			t.Errorf("warning about %s: %q, want one saying %q", p, warned[p], msg)
		}
	}
	if len(warnings) != 7 {
		t.Errorf("%d warnings, want 7: %+v", len(warnings), warnings)
	}
}

// limits small enough for the tests to reach.
func smallLimits() limits {
	return limits{fileBytes: 64 << 10, metaBytes: 4 << 10, depth: MaxDepth, entries: 200, bytes: 256 << 10}
}

// Zip bombs and liars: an entry may not declare more than the limits,
// nor hold more than it declares, and one archive of the image may not
// cost more than its budget of entries and bytes. What was found before
// a refusal is still reported.
func TestZipBombs(t *testing.T) {
	inner := makeZip(t, pomEntry("g", "inner", "1"))
	zeros := make([]byte, 10<<20)
	for _, tc := range []struct {
		name     string
		archive  []byte
		want     []string // packages
		warnings map[string]string
	}{{
		name: "declares a huge nested archive",
		archive: rawZip(t, &zip.FileHeader{Name: "BOOT-INF/lib/huge.jar", Method: zip.Store, CompressedSize64: uint64(len(inner)), UncompressedSize64: 1 << 40, CRC32: crc32.ChecksumIEEE(inner)},
			inner, pomEntry("g", "outer", "1")),
		want:     []string{"/a.jar g:outer 1"},
		warnings: map[string]string{"/a.jar!/BOOT-INF/lib/huge.jar": "declares 1099511627776 bytes, over the limit of 65536 bytes"},
	}, {
		name:     "a deflate bomb of 10 MiB",
		archive:  rawZip(t, &zip.FileHeader{Name: "lib/zeros.jar", Method: zip.Deflate, UncompressedSize64: uint64(len(zeros)), CRC32: crc32.ChecksumIEEE(zeros)}, deflate(t, zeros), pomEntry("g", "outer", "1")),
		want:     []string{"/a.jar g:outer 1"},
		warnings: map[string]string{"/a.jar!/lib/zeros.jar": "declares 10485760 bytes, over the limit of 65536 bytes"},
	}, {
		name: "a pom.properties that holds more than it declares",
		archive: rawZip(t, &zip.FileHeader{Name: "META-INF/maven/g/liar/pom.properties", Method: zip.Deflate, UncompressedSize64: 40, CRC32: 1},
			deflate(t, append([]byte("groupId=g\nartifactId=liar\nversion=1\n"), zeros[:1<<20]...))),
		warnings: map[string]string{
			"/a.jar!/META-INF/maven/g/liar/pom.properties": "corrupt, or holds more than the 40 bytes it declares",
			"/a.jar": "no package reported",
		},
	}, {
		name: "a nested archive that holds more than it declares",
		archive: rawZip(t, &zip.FileHeader{Name: "lib/liar.jar", Method: zip.Deflate, UncompressedSize64: 100, CRC32: crc32.ChecksumIEEE(inner)},
			deflate(t, append(slices.Clone(inner), zeros[:1<<20]...)), pomEntry("g", "outer", "1")),
		want:     []string{"/a.jar g:outer 1"},
		warnings: map[string]string{"/a.jar!/lib/liar.jar": "corrupt, or holds more than the 100 bytes it declares"},
	}, {
		name: "a CRC-32 that does not match",
		archive: rawZip(t, &zip.FileHeader{Name: "lib/crc.jar", Method: zip.Store, CompressedSize64: uint64(len(inner)), UncompressedSize64: uint64(len(inner)), CRC32: 12345},
			inner, pomEntry("g", "outer", "1")),
		want:     []string{"/a.jar g:outer 1"},
		warnings: map[string]string{"/a.jar!/lib/crc.jar": "checksum error"},
	}, {
		name:     "too many entries",
		archive:  makeZip(t, manyEntries(201, pomEntry("g", "outer", "1"))...),
		warnings: map[string]string{"/a.jar": "declares 201 entries and holds at least 201, over the 200 left of the limit of 200 entries"},
	}, {
		name: "too many entries in nested archives together",
		archive: makeZip(t, pomEntry("g", "outer", "1"),
			entry{name: "lib/1.jar", data: makeZip(t, manyEntries(120, pomEntry("g", "one", "1"))...)},
			entry{name: "lib/2.jar", data: makeZip(t, manyEntries(120, pomEntry("g", "two", "1"))...)}),
		want: []string{"/a.jar g:outer 1", "/a.jar!/lib/1.jar g:one 1"},
		// 200 - 3 - 120 = 77 left; counting stops at 78.
		warnings: map[string]string{"/a.jar!/lib/2.jar": "declares 120 entries and holds at least 78, over the 77 left of the limit of 200 entries"},
	}, {
		name: "too many bytes in nested archives together",
		archive: makeZip(t, pomEntry("g", "outer", "1"),
			padded("lib/1.jar", "one"), padded("lib/2.jar", "two"), padded("lib/3.jar", "three"),
			padded("lib/4.jar", "four"), padded("lib/5.jar", "five"), padded("lib/6.jar", "six")),
		want: []string{"/a.jar g:outer 1", "/a.jar!/lib/1.jar g:one 1", "/a.jar!/lib/2.jar g:two 1",
			"/a.jar!/lib/3.jar g:three 1", "/a.jar!/lib/4.jar g:four 1"},
		warnings: map[string]string{"/a.jar!/lib/5.jar": "not read, nor anything after it in the archive"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			pkgs, warnings := extract(t, makeLayer(t, tarEntry{name: "a.jar", data: tc.archive}), newExtractor(smallLimits()))
			if got := pkgLines(pkgs); !slices.Equal(got, tc.want) {
				t.Errorf("packages %q, want %q", got, tc.want)
			}
			warned := warnedAbout(warnings)
			for p, msg := range tc.warnings {
				if !strings.Contains(warned[p], msg) {
					t.Errorf("warning about %s: %q, want one saying %q", p, warned[p], msg)
				}
			}
			if len(warnings) != len(tc.warnings) {
				t.Errorf("warnings %+v, want %d", warnings, len(tc.warnings))
			}
		})
	}
}

// manyEntries returns n-1 empty entries after first.
func manyEntries(n int, first entry) []entry {
	es := []entry{first}
	for i := 1; i < n; i++ {
		es = append(es, entry{name: fmt.Sprintf("e/%d", i), store: true})
	}
	return es
}

// padded is a nested jar of about 60 KiB naming g:<a>:1: 60 KiB of
// zeros stored in it, so that it deflates to little in the outer jar.
func padded(name, a string) entry {
	pad := make([]byte, 60<<10)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	p := pomEntry("g", a, "1")
	w, _ := zw.Create(p.name)
	_, _ = w.Write(p.data)
	w, _ = zw.CreateHeader(&zip.FileHeader{Name: "pad", Method: zip.Store})
	_, _ = w.Write(pad)
	_ = zw.Close()
	return entry{name: name, data: buf.Bytes()}
}

// Nested archives are read MaxDepth levels deep; the level past that is a
// warning, and what it holds is not looked at.
func TestDepth(t *testing.T) {
	data := makeZip(t, pomEntry("g", "level5", "1"))
	for level := 4; level >= 0; level-- {
		data = makeZip(t, pomEntry("g", fmt.Sprintf("level%d", level), "1"), entry{name: fmt.Sprintf("lib/l%d.jar", level+1), data: data})
	}
	e := newExtractor(smallLimits())
	pkgs, warnings := extract(t, makeLayer(t, tarEntry{name: "srv/app.ear", data: data}), e)
	st := e.stats
	want := []string{
		"/srv/app.ear g:level0 1",
		"/srv/app.ear!/lib/l1.jar g:level1 1",
		"/srv/app.ear!/lib/l1.jar!/lib/l2.jar g:level2 1",
		"/srv/app.ear!/lib/l1.jar!/lib/l2.jar!/lib/l3.jar g:level3 1",
	}
	if got := pkgLines(pkgs); !slices.Equal(got, want) {
		t.Errorf("packages %q, want %q", got, want)
	}
	if len(warnings) != 1 || warnings[0].Path != "/srv/app.ear!/lib/l1.jar!/lib/l2.jar!/lib/l3.jar!/lib/l4.jar" ||
		!strings.Contains(warnings[0].Message, "nested more than 3 levels deep") {
		t.Errorf("warnings %+v", warnings)
	}
	if st.Nested != 3 || st.Refused != 1 {
		t.Errorf("stats %+v", st)
	}
}

// The same artifact named twice in one archive (a duplicate entry, a
// second pom.properties path) is one package; in another archive, nested
// or not, it is another.
func TestDedupe(t *testing.T) {
	p := pomEntry("g", "a", "1")
	dup := entry{name: "META-INF/maven/g/a-copy/pom.properties", data: p.data}
	pkgs, warnings := extract(t, makeLayer(t,
		tarEntry{name: "a.jar", data: makeZip(t, p, p, dup, entry{name: "lib/a.jar", data: makeZip(t, p, p)})},
		tarEntry{name: "b.jar", data: makeZip(t, p)}), newExtractor(smallLimits()))
	want := []string{"/a.jar g:a 1", "/a.jar!/lib/a.jar g:a 1", "/b.jar g:a 1"}
	if got := pkgLines(pkgs); !slices.Equal(got, want) || len(warnings) != 0 {
		t.Errorf("packages %q, want %q; warnings %+v", got, want, warnings)
	}
}

// An executable jar: a launch script before the zip (Spring Boot's
// "fully executable" jars). archive/zip finds the directory past it, and
// so must countEntries.
func TestPrefixedArchive(t *testing.T) {
	jar := readFile(t, javaJar("slf4j-api.jar"))
	pkgs, warnings := extract(t, makeLayer(t, tarEntry{name: "app.jar", data: append([]byte("#!/bin/sh\nexec java -jar \"$0\" \"$@\"\n"), jar...)}),
		newExtractor(smallLimits()))
	if got := pkgLines(pkgs); !slices.Equal(got, []string{"/app.jar org.slf4j:slf4j-api 1.7.32"}) || len(warnings) != 0 {
		t.Errorf("packages %q, warnings %+v", got, warnings)
	}
}

// countEntries counts what archive/zip reads: on every real archive of
// the test data, on a prefixed one, on a zip64 one, and on one whose end
// record lies about the count.
func TestCountEntries(t *testing.T) {
	var files []string
	err := filepath.WalkDir(imageDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && IsArchive(p) {
			files = append(files, p)
		}
		return err
	})
	if err != nil || len(files) < 10 {
		t.Fatalf("%d archives, %v", len(files), err)
	}
	check := func(name string, data []byte, wantDeclared uint64) {
		t.Helper()
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		declared, actual, ok := countEntries(bytes.NewReader(data), int64(len(data)), 1<<20)
		if !ok || actual != int64(len(zr.File)) || declared != wantDeclared {
			t.Errorf("%s: countEntries = %d, %d, %v; archive/zip read %d, want declared %d", name, declared, actual, ok, len(zr.File), wantDeclared)
		}
		// Counting stops past the limit.
		if _, actual, _ := countEntries(bytes.NewReader(data), int64(len(data)), 2); len(zr.File) > 3 && actual != 3 {
			t.Errorf("%s: with limit 2: %d", name, actual)
		}
	}
	for _, f := range files {
		data := readFile(t, f)
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		check(f, data, uint64(len(zr.File)))
		check(f+" prefixed", append([]byte("#!/bin/sh\nexit 0\n"), data...), uint64(len(zr.File)))
	}

	// zip64: archive/zip writes its records past 65535 entries.
	z64 := makeZip(t, manyEntries(70_000, pomEntry("g", "a", "1"))...)
	check("zip64", z64, 70_000)

	// An end record that declares 3 entries: archive/zip reads them all
	// (it compares only the low 16 bits), so countEntries counts them.
	liar := makeZip(t, manyEntries(65_539, pomEntry("g", "a", "1"))...)
	liar = stripZip64(t, liar)
	check("liar", liar, 3)

	for _, bad := range [][]byte{nil, []byte("PK"), []byte("not a zip at all, not even close to one....")} {
		if _, _, ok := countEntries(bytes.NewReader(bad), int64(len(bad)), 10); ok {
			t.Errorf("countEntries(%q) ok", bad)
		}
	}
}

// stripZip64 rewrites an archive/zip zip64 archive of fewer than 2^32
// bytes as a plain one: the zip64 records dropped, the end record's
// fields set from them (the count truncated to 16 bits, as old writers
// do).
func stripZip64(t *testing.T, data []byte) []byte {
	t.Helper()
	end := len(data) - dirEndLen
	if binary.LittleEndian.Uint32(data[end:]) != sigDirEnd {
		t.Fatal("no end record at the end")
	}
	loc := end - dir64LocLen
	if binary.LittleEndian.Uint32(data[loc:]) != sigDir64Loc {
		t.Fatal("no zip64 locator")
	}
	e64 := int(binary.LittleEndian.Uint64(data[loc+8:]))
	records := binary.LittleEndian.Uint64(data[e64+32:])
	dirSize := binary.LittleEndian.Uint64(data[e64+40:])
	dirOffset := binary.LittleEndian.Uint64(data[e64+48:])
	out := slices.Clone(data[:e64])
	rec := make([]byte, dirEndLen)
	binary.LittleEndian.PutUint32(rec[0:], sigDirEnd)
	binary.LittleEndian.PutUint16(rec[8:], uint16(records))
	binary.LittleEndian.PutUint16(rec[10:], uint16(records))
	binary.LittleEndian.PutUint32(rec[12:], uint32(dirSize))
	binary.LittleEndian.PutUint32(rec[16:], uint32(dirOffset))
	return append(out, rec...)
}
