package dpkg

import (
	"errors"
	"io"
	"maps"
	"net/textproto"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

func parseAll(t testing.TB, in string) ([]Paragraph, error) {
	t.Helper()
	var ps []Paragraph
	err := ParseStatus(strings.NewReader(in), func(p Paragraph) error {
		ps = append(ps, p)
		return nil
	})
	return ps, err
}

func readStatus(t testing.TB) string {
	b, err := os.ReadFile("testdata/debian-12-minbase/var/lib/dpkg/status")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseRealStatus(t *testing.T) {
	ps, err := parseAll(t, readStatus(t))
	if err != nil || len(ps) != 88 {
		t.Fatalf("%d paragraphs, %v", len(ps), err)
	}
	for i, p := range ps {
		if p.Err != nil || p.Index != i+1 {
			t.Fatalf("paragraph %d: %+v", i+1, p)
		}
		e, err := entryFromFields(p.Fields)
		if err != nil || !e.Installed() {
			t.Fatalf("paragraph %d: %+v, %v", i+1, e, err)
		}
	}
	bash := ps[slices.IndexFunc(ps, func(p Paragraph) bool { return p.Fields.Get("Package") == "bash" })]
	// Continuation lines are joined with single spaces.
	if d := bash.Fields.Get("Description"); !strings.HasPrefix(d, "GNU Bourne Again SHell Bash is an sh-compatible") {
		t.Errorf("bash's Description = %q", d)
	}
	if e, _ := entryFromFields(bash.Fields); e != (Entry{Package: "bash", Version: "5.2.15-2+b13", Architecture: "amd64", Status: "install ok installed", SourceName: "bash", SourceVersion: "5.2.15-2"}) {
		t.Errorf("bash = %+v", e)
	}
}

func TestParseStatusSyntax(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string // Package of each paragraph, "!" for a malformed one
	}{
		{"empty", "", nil},
		{"blank lines only", "\n\n\n", nil},
		{"no final newline", "Package: a\nVersion: 1", []string{"a"}},
		{"CRLF", "Package: a\r\nVersion: 1\r\n\r\nPackage: b\r\n", []string{"a", "b"}},
		{"several blank lines between", "Package: a\n\n\n\nPackage: b\n\n", []string{"a", "b"}},
		{"lower-case field names", "package: a\nVERSION: 1\n", []string{"a"}},
		{"continuation at the start", " x\nPackage: a\n\nPackage: b\n", []string{"!", "b"}},
		{"a long continuation at the start", " " + strings.Repeat("0", 100000) + "\nPackage: a\n\nPackage: b\n", []string{"!", "b"}},
		{"blank lines with spaces between", "Package: a\n\n  \n\t\n\nPackage: b\n \n", []string{"a", "b"}},
		{"only spaces", "  \n \t ", nil},
		{"no colon", "Package: a\njunk\n more junk\nVersion: 1\n\nPackage: b\n", []string{"!", "b"}},
		{"space in a field name", "Package : a\n\nPackage: b\n", []string{"!", "b"}},
		{"control character", "Package: a\x01\n\nPackage: b\n", []string{"!", "b"}},
		{"malformed last paragraph without newline", "Package: a\n\njunk", []string{"a", "!"}},
		{"a long garbage line", "Package: a\n\n" + strings.Repeat("\x00", 1<<20) + "\n\nPackage: b\n", []string{"a", "!", "b"}},
	} {
		ps, err := parseAll(t, tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		var got []string
		for i, p := range ps {
			if p.Index != i+1 {
				t.Errorf("%s: paragraph %d has index %d", tc.name, i+1, p.Index)
			}
			if p.Err != nil {
				if !errors.Is(p.Err, ErrMalformed) || p.Fields != nil {
					t.Errorf("%s: %+v", tc.name, p)
				}
				got = append(got, "!")
				continue
			}
			got = append(got, p.Fields.Get("Package"))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestParseStatusErrors(t *testing.T) {
	stop := errors.New("stop")
	n := 0
	err := ParseStatus(strings.NewReader(readStatus(t)), func(Paragraph) error {
		if n++; n == 2 {
			return stop
		}
		return nil
	})
	if err != stop || n != 2 {
		t.Errorf("ParseStatus = %v after %d paragraphs; want the callback's error after 2", err, n)
	}
	failing := io.MultiReader(strings.NewReader("Package: a\n\nPackage: b\nVer"), iotest.ErrReader(errors.New("disk on fire")))
	var got []string
	err = ParseStatus(failing, func(p Paragraph) error {
		if p.Err != nil {
			got = append(got, "!")
		} else {
			got = append(got, p.Fields.Get("Package"))
		}
		return nil
	})
	// "Ver" was cut by the error: malformed, then the error.
	if err == nil || !strings.Contains(err.Error(), "disk on fire") || !slices.Equal(got, []string{"a", "!"}) {
		t.Errorf("ParseStatus = %v after %q", err, got)
	}
}

func TestSource(t *testing.T) {
	for _, tc := range []struct {
		in, name, version string
		ok                bool
	}{
		{"bash (5.2.15-2)", "bash", "5.2.15-2", true},
		{"util-linux (2.38.1-5+deb12u3)", "util-linux", "2.38.1-5+deb12u3", true},
		{"libcap2 (1:2.66-4+deb12u3)", "libcap2", "1:2.66-4+deb12u3", true},
		{"gcc-12", "gcc-12", "", true},
		{"  spaced   ( 1.0 ) ", "spaced", "1.0", true},
		{"bash (5.2", "", "", false},
		{"bash 5.2", "", "", false},
		{"bash (5 2)", "", "", false},
		{"(1.0)", "", "", false},
	} {
		name, version, ok := parseSource(tc.in)
		if name != tc.name || version != tc.version || ok != tc.ok {
			t.Errorf("parseSource(%q) = %q, %q, %v", tc.in, name, version, ok)
		}
	}
}

// FuzzParseStatus checks, on any input, that ParseStatus ends without an
// error (it reads from memory), numbers the paragraphs 1, 2, 3..., that
// each well-formed paragraph written back as "Field: value" lines parses
// to the same fields, and that what entryFromFields accepts is valid for
// the protocol (non-empty, ASCII).
func FuzzParseStatus(f *testing.F) {
	f.Add(readStatus(f))
	for _, name := range []string{"base-files", "tzdata"} {
		b, err := os.ReadFile("testdata/distroless-style/var/lib/dpkg/status.d/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("Package: a\nVersion: 1\nSource: b (2)\nStatus: install ok installed\n\n junk\nx\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		ps, err := parseAll(t, in)
		if err != nil {
			t.Fatalf("ParseStatus: %v", err)
		}
		if len(ps) > strings.Count(in, "\n")+1 {
			t.Fatalf("%d paragraphs from %d lines", len(ps), strings.Count(in, "\n")+1)
		}
		for i, p := range ps {
			if p.Index != i+1 {
				t.Fatalf("paragraph %d has index %d", i+1, p.Index)
			}
			if p.Err != nil {
				if p.Fields != nil || !errors.Is(p.Err, ErrMalformed) {
					t.Fatalf("malformed paragraph %+v", p)
				}
				continue
			}
			if len(p.Fields) == 0 {
				t.Fatalf("paragraph %d is empty", p.Index)
			}
			again, err := parseAll(t, render(p.Fields))
			if err != nil || len(again) != 1 || again[0].Err != nil || !maps.EqualFunc(p.Fields, again[0].Fields, slices.Equal) {
				t.Fatalf("round trip of %q: %+v, %v", render(p.Fields), again, err)
			}
			e, err := entryFromFields(p.Fields)
			if err != nil {
				continue
			}
			for _, s := range []string{e.Package, e.Version, e.SourceName, e.SourceVersion} {
				if s == "" || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
					t.Fatalf("entry %+v has an empty or non-ASCII field", e)
				}
			}
			_ = e.Installed()
		}
	})
}

// render writes fields as one paragraph, keys sorted.
func render(h textproto.MIMEHeader) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(h)) {
		for _, v := range h[k] {
			b.WriteString(k + ": " + v + "\n")
		}
	}
	return b.String()
}
