package vulndb

import (
	"bytes"
	"encoding/json"
	"github.com/assayhq/assay/daemon/match"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzParseRecord: the parser never panics, and what it accepts is stored
// in a form it accepts again, identically.
func FuzzParseRecord(f *testing.F) {
	for _, p := range []string{
		"go/GO-2020-0001.json", "go/GO-2026-6115.json", // withdrawn, three packages
		"pypi/PYSEC-2020-341.json", "pypi/PYSEC-2021-13.json",
		"debian/DEBCL-CVE-2023-47038.json",
		"samples/DSA-3029-1.json", "samples/USN-7234-1.json", "samples/CVE-2021-44228.json", "samples/DLA-3623-1.json",
	} {
		b, err := os.ReadFile(filepath.Join(osvDir, p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// A PyPI record with GIT ranges.
	if m, _ := filepath.Glob(filepath.Join(osvDir, "pypi", "*.json")); len(m) > 0 {
		for _, p := range m {
			b, _ := os.ReadFile(p)
			if bytes.Contains(b, []byte(`"GIT"`)) {
				f.Add(b)
				break
			}
		}
	}
	for _, s := range []string{``, `{}`, `null`, `[]`, `{"id":""}`, `{"id":"A","withdrawn":"x"}`, `{"id":"A\u0000"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := parseRecord(data)
		if err != nil {
			return
		}
		if r.id == "" || !json.Valid(r.raw) {
			t.Fatalf("accepted %q as id %q, raw %q", data, r.id, r.raw)
		}
		again, err := parseRecord(r.raw)
		if err != nil {
			t.Fatalf("stored form %q refused: %v", r.raw, err)
		}
		if again.id != r.id || again.withdrawn != r.withdrawn || !bytes.Equal(again.raw, r.raw) ||
			!reflect.DeepEqual(again.packages, r.packages) || !reflect.DeepEqual(again.aliases, r.aliases) {
			t.Fatalf("reparse differs:\n%+v\n%+v", r, again)
		}
		for _, p := range r.packages {
			if match.NormalizeName(p.Ecosystem, p.Name) != p.Name {
				t.Fatalf("index name %q not normalized", p.Name)
			}
		}
		if _, err := decodeRecord(r.id, r.raw); err != nil {
			t.Fatal(err)
		}
	})
}
