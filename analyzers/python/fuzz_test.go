package python

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzParseMetadata feeds bytes to ParseMetadata: it must not panic, and
// what it accepts must be a valid name and version.
func FuzzParseMetadata(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "debian", "usr", "lib", "python3", "dist-packages", "*", "*"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("Name: a\nVersion: 1\n"))
	f.Add([]byte("Name: a\n  b\nVersion: 1\r\n\r\n"))
	f.Add([]byte(" x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMetadata(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		for _, v := range []string{m.Name, m.Version} {
			if v == "" || !utf8.ValidString(v) || strings.ContainsFunc(v, unicode.IsControl) || len(v) > maxValueLen {
				t.Fatalf("accepted %q", v)
			}
		}
		if p := purl(m.Name, m.Version); !strings.HasPrefix(p, "pkg:pypi/") {
			t.Fatalf("purl %q", p)
		}
	})
}
