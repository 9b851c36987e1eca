package rust

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"github.com/BurntSushi/toml"
)

// maxFuzzKeyParts bounds the parts of any key path of a file checkShape
// accepts: a header of at most maxKeyDots+1 parts, and in it keys of as
// many parts in up to maxNesting inline tables.
const maxFuzzKeyParts = (maxKeyDots + 1) * (maxNesting + 2)

// FuzzParseCargoLock feeds bytes to ParseCargoLock: it must not panic,
// what it refuses must wrap ErrMalformed, what it accepts must be valid,
// and whatever checkShape lets through must have no key path long enough
// to make the TOML decoder slow (checked against the decoder's own key
// list, so that a string or comment the shape check lexes differently
// from the decoder is found).
func FuzzParseCargoLock(f *testing.F) {
	locks, _ := filepath.Glob(filepath.Join("testdata", "image", "*", "*", "Cargo.lock"))
	if len(locks) < 4 {
		f.Fatalf("seed lockfiles: %q", locks)
	}
	for _, name := range locks {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("a.b.c.d = 1\n[x.y]\nz = {p = {q = [1, {r = 2}]}}\n"))
	f.Add([]byte("s = \"\"\"a\\\"\"\"\"\"\n'k.k' = '''x'''''\n# [[[\n"))
	f.Add([]byte("[[package]]\nname = \"\\u0041\"\nversion = \"1\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lf, err := ParseCargoLock(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
		} else {
			for _, p := range lf.Packages {
				for _, v := range []string{p.Name, p.Version} {
					if v == "" || len(v) > maxValueLen || strings.ContainsFunc(v, unicode.IsControl) {
						t.Fatalf("accepted %q", v)
					}
				}
				if pu := purl(p.Name, p.Version); !strings.HasPrefix(pu, "pkg:cargo/") {
					t.Fatalf("purl %q", pu)
				}
			}
		}
		if checkShape(data) != nil {
			return
		}
		var v map[string]any
		md, err := toml.Decode(string(data), &v)
		if err != nil {
			return
		}
		for _, k := range md.Keys() {
			if len(k) > maxFuzzKeyParts {
				t.Fatalf("checkShape let through a key of %d parts", len(k))
			}
		}
	})
}

// FuzzDepInfo feeds bytes through readDepInfo (the
// bounded section check, then go-rustaudit), and what it returns through
// the reporting rule: none may panic or read without a bound.
func FuzzDepInfo(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "seed", "*.elf"))
	if len(seeds) < 2 {
		f.Fatalf("seeds: %q", seeds)
	}
	for _, name := range seeds {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		if info, found, err := readDepInfo(bytes.NewReader(b), int64(len(b))); !found || err != nil || len(info.Packages) == 0 {
			f.Fatalf("seed %s: %+v, %v, %v", name, info, found, err)
		}
		f.Add(b)
	}
	f.Add([]byte("\x7fELF"))
	f.Fuzz(func(t *testing.T, data []byte) {
		info, found, err := readDepInfo(bytes.NewReader(data), int64(len(data)))
		if found && !isELF(data) {
			t.Fatal("a section in a file without the ELF magic")
		}
		if !found && len(info.Packages) > 0 {
			t.Fatalf("packages without a section: %+v", info)
		}
		if err != nil && len(info.Packages) > 0 {
			t.Fatalf("packages and an error: %v", err)
		}
		for _, p := range info.Packages {
			_ = auditOrigin(p.Source)
			_ = IsRelease(p.Version)
		}
	})
}
