package apk

import (
	"errors"
	"os"
	"path"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

func parseAll(t testing.TB, in string) ([]Paragraph, error) {
	t.Helper()
	var ps []Paragraph
	err := ParseInstalled(strings.NewReader(in), func(p Paragraph) error {
		ps = append(ps, p)
		return nil
	})
	return ps, err
}

func readInstalled(t testing.TB) string {
	b, err := os.ReadFile("testdata/trivy-fixture/lib/apk/db/installed")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseRealInstalled(t *testing.T) {
	ps, err := parseAll(t, readInstalled(t))
	if err != nil || len(ps) != 16 {
		t.Fatalf("%d paragraphs, %v", len(ps), err)
	}
	for i, p := range ps {
		if p.Index != i+1 || (p.Err != nil) != (i == 1) {
			t.Fatalf("paragraph %d: %+v", i+1, p)
		}
	}
	if want := (Paragraph{Index: 7, Name: "libcrypto1.0", Version: "1.0.2h-r1", Arch: "x86_64", Origin: "openssl"}); ps[6] != want {
		t.Errorf("paragraph 7 = %+v, want %+v", ps[6], want)
	}
}

func TestParseInstalledSyntax(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string // Name of each paragraph, "!" for a malformed one
	}{
		{"empty", "", nil},
		{"blank lines only", "\n\n\n", nil},
		{"no final newline", "P:a\nV:1", []string{"a"}},
		{"CRLF", "P:a\r\nV:1\r\n\r\nP:b\r\nV:2\r\n", []string{"a", "b"}},
		{"several blank lines between", "P:a\nV:1\n\n\n\nP:b\nV:1\n\n", []string{"a", "b"}},
		{"unknown keys ignored", "C:Q1x=\nP:a\nV:1\nZ:Q1y=\nR:some file\nT:a description with spaces\n", []string{"a"}},
		{"a blank line with spaces is a bad line", "P:a\nV:1\n \nP:b\nV:1\n\nP:c\nV:1\n", []string{"!", "c"}},
		{"no colon", "P:a\njunk\nV:1\n\nP:b\nV:1\n", []string{"!", "b"}},
		{"key longer than a letter", "P:a\nVV:1\nV:1\n\nP:b\nV:1\n", []string{"!", "b"}},
		{"one-byte line", "P:a\nV:1\nx\n\nP:b\nV:1\n", []string{"!", "b"}},
		{"no name", "V:1\n\nP:b\nV:1\n", []string{"!", "b"}},
		{"no version", "P:a\n\nP:b\nV:1\n", []string{"!", "b"}},
		{"empty version", "P:a\nV:\n", []string{"!"}},
		{"twice", "P:a\nV:1\nV:1\n", []string{"!"}},
		{"origin twice", "P:a\nV:1\no:x\no:x\n", []string{"!"}},
		{"space in a name", "P:a b\nV:1\n", []string{"!"}},
		{"control character", "P:a\x01\nV:1\n\nP:b\nV:1\n", []string{"!", "b"}},
		{"non-ASCII", "P:\xc3\xa9\nV:1\n", []string{"!"}},
		{"malformed last paragraph without newline", "P:a\nV:1\n\njunk", []string{"a", "!"}},
		{"a long line", "P:a\nT:" + strings.Repeat("x", MaxLineBytes+1) + "\nV:1\n\nP:b\nV:1\n", []string{"!", "b"}},
		{"a line of exactly the limit", "P:a\nT:" + strings.Repeat("x", MaxLineBytes-2) + "\nV:1\n", []string{"a"}},
		{"a long last line", "P:a\nV:1\n\n" + strings.Repeat("\x00", 1<<20), []string{"a", "!"}},
	} {
		ps, err := parseAll(t, tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		var got []string
		for _, p := range ps {
			if p.Err != nil {
				got = append(got, "!")
				if !errors.Is(p.Err, ErrMalformed) {
					t.Errorf("%s: %v", tc.name, p.Err)
				}
			} else {
				got = append(got, p.Name)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestParseInstalledErrors(t *testing.T) {
	errStop := errors.New("stop")
	n := 0
	err := ParseInstalled(strings.NewReader(readInstalled(t)), func(Paragraph) error {
		n++
		return errStop
	})
	if err != errStop || n != 1 {
		t.Errorf("stop: %v after %d", err, n)
	}
	err = ParseInstalled(iotest.TimeoutReader(iotest.OneByteReader(strings.NewReader("P:a\nV:1\n\nP:b\n"))), func(Paragraph) error { return nil })
	if !errors.Is(err, iotest.ErrTimeout) || !strings.HasPrefix(err.Error(), "apk: reading: ") {
		t.Errorf("read error: %v", err)
	}
}

// FuzzParseInstalled checks, on any input, that ParseInstalled ends without
// an error (it reads from memory), numbers the paragraphs 1, 2, 3..., that
// no more paragraphs come out than there are lines, that each well-formed
// paragraph has printable ASCII fields and written back as "K:value" lines
// parses to the same paragraph, and that errors never quote the input.
func FuzzParseInstalled(f *testing.F) {
	f.Add(readInstalled(f))
	f.Add("P:a\nV:1\nA:x86_64\no:b\n\n junk\nx\n\nP:c\r\nV:2\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		ps, err := parseAll(t, in)
		if err != nil {
			t.Fatalf("ParseInstalled: %v", err)
		}
		if len(ps) > strings.Count(in, "\n")+1 {
			t.Fatalf("%d paragraphs from %d lines", len(ps), strings.Count(in, "\n")+1)
		}
		for i, p := range ps {
			if p.Index != i+1 {
				t.Fatalf("paragraph %d has index %d", i+1, p.Index)
			}
			if p.Err != nil {
				if !errors.Is(p.Err, ErrMalformed) || p.Name != "" || p.Version != "" {
					t.Fatalf("malformed paragraph %+v", p)
				}
				continue
			}
			for _, s := range []string{p.Name, p.Version} {
				if !token([]byte(s)) {
					t.Fatalf("paragraph %+v has an empty or non-ASCII field", p)
				}
			}
			for _, s := range []string{p.Arch, p.Origin} {
				if s != "" && !token([]byte(s)) {
					t.Fatalf("paragraph %+v has a non-ASCII field", p)
				}
			}
			r := "P:" + p.Name + "\nV:" + p.Version + "\n"
			if p.Arch != "" {
				r += "A:" + p.Arch + "\n"
			}
			if p.Origin != "" {
				r += "o:" + p.Origin + "\n"
			}
			again, err := parseAll(t, r)
			if err != nil || len(again) != 1 || again[0] != (Paragraph{Index: 1, Name: p.Name, Version: p.Version, Arch: p.Arch, Origin: p.Origin}) {
				t.Fatalf("round trip of %q: %+v, %v", r, again, err)
			}
		}
	})
}

func parseFiles(t testing.TB, in string, lim FileLimits) ([]Paragraph, []Files, error) {
	t.Helper()
	var ps []Paragraph
	var fs []Files
	err := ParseInstalledFiles(strings.NewReader(in), lim, func(p Paragraph, f Files) error {
		ps = append(ps, p)
		fs = append(fs, f)
		return nil
	})
	return ps, fs, err
}

var noLimit = FileLimits{Paths: 1 << 30, Bytes: 1 << 30}

func TestParseInstalledFiles(t *testing.T) {
	for _, tc := range []struct {
		name, in     string
		lim          FileLimits
		paths        [][]string // per paragraph
		dropped, bad []int
	}{
		{"no files", "P:a\nV:1\n", noLimit, [][]string{nil}, []int{0}, []int{0}},
		{"the root and nested directories", "P:a\nV:1\nF:\nR:init\nF:usr/bin\nR:ls\nR:a b\nF:usr/lib/\nR:libz.so.1\n", noLimit,
			[][]string{{"/init", "/usr/bin/ls", "/usr/bin/a b", "/usr/lib/libz.so.1"}}, []int{0}, []int{0}},
		{"a directory per paragraph", "P:a\nV:1\nF:bin\nR:x\n\nP:b\nV:1\nR:y\nF:sbin\nR:z\n", noLimit,
			[][]string{{"/bin/x"}, {"/sbin/z"}}, []int{0, 0}, []int{0, 1}},
		{"bad directories and names", "P:a\nV:1\nF:../etc\nR:shadow\nF:usr/./bin\nR:x\nF:ok\nR:..\nR:a/b\nR:\nR:\x7f\nR:fine\n", noLimit,
			[][]string{{"/ok/fine"}}, []int{0}, []int{6}},
		{"a malformed paragraph owns nothing and gives its share back", "P:a\nF:bin\nR:x\nR:y\n\nP:b\nV:1\nF:bin\nR:z\nR:w\n", FileLimits{Paths: 2, Bytes: 100},
			[][]string{nil, {"/bin/z", "/bin/w"}}, []int{0, 0}, []int{0, 0}},
		{"the path limit", "P:a\nV:1\nF:bin\nR:x\nR:y\nR:z\n\nP:b\nV:1\nF:bin\nR:w\n", FileLimits{Paths: 2, Bytes: 100},
			[][]string{{"/bin/x", "/bin/y"}, nil}, []int{1, 1}, []int{0, 0}},
		{"the byte limit", "P:a\nV:1\nF:bin\nR:x\nR:yy\nR:z\n", FileLimits{Paths: 10, Bytes: 13},
			[][]string{{"/bin/x", "/bin/yy"}}, []int{1}, []int{0}},
		{"a path over MaxPathBytes", "P:a\nV:1\nF:" + strings.Repeat("d", MaxPathBytes) + "\nR:x\n", noLimit,
			[][]string{nil}, []int{0}, []int{1}},
	} {
		ps, fs, err := parseFiles(t, tc.in, tc.lim)
		if err != nil || len(ps) != len(tc.paths) {
			t.Errorf("%s: %d paragraphs, %v", tc.name, len(ps), err)
			continue
		}
		for i, f := range fs {
			if !slices.Equal(f.Paths, tc.paths[i]) || f.Dropped != tc.dropped[i] || f.Bad != tc.bad[i] {
				t.Errorf("%s: paragraph %d: %+v, want %q, %d dropped, %d bad", tc.name, i+1, f, tc.paths[i], tc.dropped[i], tc.bad[i])
			}
		}
	}
}

// FuzzParseInstalledFiles checks, on any input, that ParseInstalledFiles
// gives the paragraphs ParseInstalled gives, that every path is absolute,
// clean, valid UTF-8 and within MaxPathBytes, that malformed paragraphs
// own nothing, and that the limits hold.
func FuzzParseInstalledFiles(f *testing.F) {
	f.Add(readInstalled(f), 100, 1000)
	f.Add("P:a\nV:1\nF:usr/bin\nR:x\nR:../y\nF:\nR:z\n\nP:b\nF:a\nR:b\n", 1, 10)
	f.Fuzz(func(t *testing.T, in string, maxPaths, maxBytes int) {
		lim := FileLimits{Paths: maxPaths, Bytes: maxBytes}
		want, err := parseAll(t, in)
		if err != nil {
			t.Fatal(err)
		}
		ps, fs, err := parseFiles(t, in, lim)
		if err != nil {
			t.Fatalf("ParseInstalledFiles: %v", err)
		}
		if len(ps) != len(want) {
			t.Fatalf("%d paragraphs, ParseInstalled gives %d", len(ps), len(want))
		}
		n, size := 0, 0
		for i, p := range ps {
			if p.Index != want[i].Index || p.Name != want[i].Name || p.Version != want[i].Version || (p.Err == nil) != (want[i].Err == nil) {
				t.Fatalf("paragraph %+v, ParseInstalled gives %+v", p, want[i])
			}
			if p.Err != nil && (len(fs[i].Paths) > 0 || fs[i].Dropped > 0 || fs[i].Bad > 0) {
				t.Fatalf("malformed paragraph with files %+v", fs[i])
			}
			for _, q := range fs[i].Paths {
				if !strings.HasPrefix(q, "/") || path.Clean(q) != q || q == "/" || !utf8.ValidString(q) || len(q) > MaxPathBytes {
					t.Fatalf("path %q", q)
				}
				n++
				size += len(q)
			}
		}
		if n > max(maxPaths, 0) || size > max(maxBytes, 0) {
			t.Fatalf("%d paths, %d bytes, over %+v", n, size, lim)
		}
	})
}
