package rpm

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assayhq/assay/plugins/sdk"
)

// realDatabases are the databases of testdata, the fuzzers' seeds.
var realDatabases = []string{
	"testdata/sqlite/var/lib/rpm/rpmdb.sqlite",
	"testdata/ndb/usr/lib/sysimage/rpm/Packages.db",
	"testdata/bdb-libuuid/var/lib/rpm/Packages",
	"testdata/sle15-bci/usr/lib/sysimage/rpm/Packages.db",
}

// FuzzDatabase feeds bytes as an image's rpm database through the whole
// analysis, reader process included: whatever go-rpmdb does with them
// (panic, loop, allocate), the analysis must end without an error and
// emit only valid packages and warnings. (The reader process is not
// instrumented, so the fuzzer does not steer by go-rpmdb's coverage: this
// is a robustness check of the plugin's side more than a search of
// go-rpmdb.)
func FuzzDatabase(f *testing.F) {
	for _, name := range realDatabases {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("SQLite format 3\x00"))
	f.Add([]byte("RpmP\x00\x00\x00\x00\x01\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		root := t.TempDir()
		name := filepath.Join(root, "var/lib/rpm/Packages")
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := os.OpenRoot(root)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		emit := &validating{t: t}
		if _, err := (Analyzer{ReadTimeout: time.Second}).analyze(t.Context(), r, sdk.Request{Root: root, MaxFileBytes: 4 << 20}, emit); err != nil {
			t.Fatalf("analyze: %v", err)
		}
	})
}

// validating is an Emitter that fails the test on anything invalid.
type validating struct{ t *testing.T }

func (v *validating) Package(p sdk.Package) error {
	if err := p.Validate(); err != nil || !validField(p.Name) || !validField(p.Version) ||
		!strings.HasPrefix(p.PURL, "pkg:rpm/") || len(p.Locations) == 0 {
		v.t.Fatalf("invalid package %+v: %v", p, err)
	}
	return nil
}
func (v *validating) Finding(f sdk.Finding) error { v.t.Fatalf("finding %+v", f); return nil }
func (v *validating) Warning(w sdk.Warning) error {
	if err := w.Validate(); err != nil {
		v.t.Fatalf("invalid warning %+v: %v", w, err)
	}
	return nil
}

// FuzzParseSourceRPM: what ParseSourceRPM accepts is exactly
// <name>-<version>-<release>.src.rpm (or .nosrc.rpm) with none of the
// three empty and no "-" in version or release.
func FuzzParseSourceRPM(f *testing.F) {
	for _, dir := range []string{"sqlite", "ndb", "sle15-bci", "bdb-libuuid"} {
		b, err := os.ReadFile(filepath.Join("testdata", dir, "want.tsv"))
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(b)) {
			if c := strings.Split(strings.TrimSpace(line), "\t"); len(c) == 6 {
				f.Add(c[5])
			}
		}
	}
	f.Add("x-1-1.nosrc.rpm")
	f.Fuzz(func(t *testing.T, s string) {
		name, ver, ok := ParseSourceRPM(s)
		if !ok {
			if name != "" || ver != "" {
				t.Fatalf("not ok, yet %q %q", name, ver)
			}
			return
		}
		v, r, _ := strings.Cut(ver, "-")
		if name == "" || v == "" || r == "" || strings.Contains(r, "-") ||
			(s != name+"-"+ver+".src.rpm" && s != name+"-"+ver+".nosrc.rpm") || !validField(s) {
			t.Fatalf("ParseSourceRPM(%q) = %q, %q", s, name, ver)
		}
	})
}

// FuzzDecodeRecords: the reader's output is read without a panic, and a
// success is a complete, counted listing.
func FuzzDecodeRecords(f *testing.F) {
	var seed bytes.Buffer
	enc := json.NewEncoder(&seed)
	b, err := os.ReadFile("testdata/sle15-bci/want.tsv")
	if err != nil {
		f.Fatal(err)
	}
	n := 0
	for line := range strings.Lines(string(b)) {
		c := strings.Split(strings.TrimSpace(line), "\t")
		if len(c) == 6 {
			_ = enc.Encode(record{Name: c[0], Version: c[2], Release: c[3], Arch: c[4], SourceRPM: c[5]})
			n++
		}
	}
	_ = enc.Encode(record{End: true, Count: n})
	f.Add(seed.Bytes())
	f.Add([]byte(`{"err":"x"}` + "\n"))
	f.Add([]byte(`{"end":true}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, last, err := decodeRecords(bytes.NewReader(data))
		if err != nil && (pkgs != nil || last != (record{})) {
			t.Fatalf("error %v with %d packages, last %+v", err, len(pkgs), last)
		}
		if err == nil && last.Err == "" && (!last.End || last.Count != len(pkgs)) {
			t.Fatalf("success with %d packages, last %+v", len(pkgs), last)
		}
	})
}
