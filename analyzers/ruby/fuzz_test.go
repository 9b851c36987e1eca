package ruby

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseGemspec feeds bytes to ParseGemspec: it must not panic, what it
// refuses must wrap ErrMalformed (reading from memory cannot fail), and
// what it accepts must pass RubyGems' patterns.
func FuzzParseGemspec(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "image", "usr", "share", "rubygems-integration", "all", "specifications", "*.gemspec"))
	more, _ := filepath.Glob(filepath.Join("testdata", "image", "usr", "local", "bundle", "specifications", "*.gemspec"))
	seeds = append(seeds, more...)
	if len(seeds) < 5 {
		f.Fatalf("seeds: %q", seeds)
	}
	for _, name := range seeds {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		// The same without its stub line, as RubyGems before 2.1 wrote it.
		if _, rest, ok := bytes.Cut(b, []byte("\n# stub: ")); ok {
			if _, body, ok := bytes.Cut(rest, []byte("\n")); ok {
				f.Add(append([]byte("# -*- encoding: utf-8 -*-\n"), body...))
			}
		}
	}
	f.Add([]byte("Gem::Specification.new { |s|\n s.name = %q{a}\n s.version = Gem::Version.new('1')\n s.platform = Gem::Platform::RUBY\n}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := ParseGemspec(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if !validName.MatchString(g.Name) || !validVersion.MatchString(g.Version) || !validPlatform.MatchString(g.Platform) {
			t.Fatalf("accepted %+v", g)
		}
		if p := purl(g); !strings.HasPrefix(p, "pkg:gem/") {
			t.Fatalf("purl %q", p)
		}
	})
}
