package java

import (
	"archive/zip"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// zipEntries returns the entries of the real jars of the test data whose
// names satisfy keep.
func zipEntries(f *testing.F, keep func(string) bool) [][]byte {
	var out [][]byte
	for _, jar := range []string{"slf4j-api.jar", "slf4j-nop.jar", "jul-to-slf4j.jar", "log4j-jcl.jar", "hamcrest-2.2.jar",
		"commons-logging-adapters-1.2.jar", "hamcrest-integration-1.3.1-SNAPSHOT.jar"} {
		zr, err := zip.OpenReader(javaJar(jar))
		if err != nil {
			f.Fatal(err)
		}
		for _, e := range zr.File {
			if keep(e.Name) {
				rc, err := e.Open()
				if err != nil {
					f.Fatal(err)
				}
				b, err := io.ReadAll(rc)
				rc.Close()
				if err != nil {
					f.Fatal(err)
				}
				out = append(out, b)
			}
		}
		zr.Close()
	}
	return out
}

// FuzzParsePomProperties: no panic, and what is accepted is valid Maven
// coordinates.
func FuzzParsePomProperties(f *testing.F) {
	for _, b := range zipEntries(f, isPomProperties) {
		f.Add(b)
	}
	f.Add([]byte("groupId=org.\\\n  x\r\nartifactId : a\\u0062\nversion 1\\\n"))
	f.Add([]byte("# c\n! c\n\\\\=\\u00zz\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParsePomProperties(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if c.check() != nil || !strings.HasPrefix(c.PURL(), "pkg:maven/") {
			t.Fatalf("accepted %+v", c)
		}
	})
}

// FuzzParseManifest: no panic; what is kept is valid UTF-8, and the
// coordinates guessed from it are valid.
func FuzzParseManifest(f *testing.F) {
	for _, b := range zipEntries(f, func(n string) bool { return n == "META-INF/MANIFEST.MF" }) {
		f.Add(b)
	}
	f.Add([]byte("Implementation-Vendor-Id: g\r\nImplementation-Title: a\r\n b\r\nBundle-Version: 1 x\r\n\r\nName: y\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		for _, v := range []string{m.ImplementationTitle, m.ImplementationVersion, m.ImplementationVendorID, m.BundleSymbolicName, m.BundleVersion} {
			if !utf8.ValidString(v) || len(v) > maxManifestValue {
				t.Fatalf("kept %q", v)
			}
		}
		c, err := m.Coordinates()
		if err != nil {
			if !errors.Is(err, ErrNoCoordinates) {
				t.Fatalf("error %v does not wrap ErrNoCoordinates", err)
			}
			return
		}
		if c.check() != nil {
			t.Fatalf("guessed %+v", c)
		}
	})
}

// FuzzArchive reads bytes as an archive of the image, nested archives
// and all, with small limits: no panic, only valid packages, budgets
// never overdrawn; and wherever archive/zip reads a directory,
// countEntries counts at least as many entries as archive/zip found.
func FuzzArchive(f *testing.F) {
	for _, jar := range []string{"slf4j-nop.jar", "jul-to-slf4j.jar", "hamcrest-integration-1.3.1-SNAPSHOT.jar"} {
		f.Add(readFile(f, javaJar(jar)))
	}
	nop := readFile(f, javaJar("slf4j-nop.jar"))
	f.Add(makeZip(f, pomEntry("g", "a", "1"), entry{name: "WEB-INF/lib/x.jar", data: nop, store: true},
		entry{name: "META-INF/MANIFEST.MF", data: []byte("Implementation-Vendor-Id: g\nImplementation-Title: t\nImplementation-Version: 2\n")}))
	f.Add(append([]byte("#!/bin/sh\n"), makeZip(f, entry{name: "lib/y.jar", data: makeZip(f, pomEntry("g", "b", "1"))})...))
	f.Fuzz(func(t *testing.T, data []byte) {
		if zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data))); err == nil {
			_, actual, ok := countEntries(bytes.NewReader(data), int64(len(data)), 1<<30)
			if !ok || actual < int64(len(zr.File)) {
				t.Fatalf("countEntries = %d, %v; archive/zip read %d", actual, ok, len(zr.File))
			}
		}
		rec := &recorder{}
		lim := limits{fileBytes: 1 << 20, metaBytes: 4 << 10, depth: MaxDepth, entries: 2000, bytes: 2 << 20}
		a := &analysis{ctx: t.Context(), out: rec, lim: lim, stats: &stats{}}
		r := &reading{budget: budget{entries: lim.entries, bytes: lim.bytes}, seen: map[string]bool{}}
		if err := a.readArchive(r, bytes.NewReader(data), int64(len(data)), "/x.jar", 0); err != nil {
			t.Fatalf("readArchive: %v", err)
		}
		if r.budget.entries < 0 || r.budget.bytes < 0 {
			t.Fatalf("budget overdrawn: %+v", r.budget)
		}
		for _, p := range rec.pkgs {
			if p.Validate() != nil || p.Ecosystem != Ecosystem || len(p.Locations) != 1 ||
				!strings.HasPrefix(p.Locations[0], "/x.jar") || !utf8.ValidString(p.Locations[0]) {
				t.Fatalf("package %+v", p)
			}
		}
		for _, w := range rec.warnings {
			if w.Validate() != nil {
				t.Fatalf("warning %+v", w)
			}
		}
	})
}
