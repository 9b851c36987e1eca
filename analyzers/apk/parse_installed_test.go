package apk

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
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
