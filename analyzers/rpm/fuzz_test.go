package rpm

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/assayhq/assay/plugins/sdk"
	"github.com/assayhq/assay/plugins/sdk/sdktest"
)

// realDatabases are the databases of testdata, the fuzzers' seeds.
var realDatabases = []string{
	"testdata/sqlite/var/lib/rpm/rpmdb.sqlite",
	"testdata/ndb/usr/lib/sysimage/rpm/Packages.db",
	"testdata/bdb-libuuid/var/lib/rpm/Packages",
	"testdata/sle15-bci/usr/lib/sysimage/rpm/Packages.db",
}

// FuzzDatabase feeds bytes as a layer's rpm database through the whole
// extractor, reader process included: whatever go-rpmdb does with them
// (panic, loop, allocate), the layer must end without an error and with
// only valid items. (The reader process is not instrumented, so the
// fuzzer does not steer by go-rpmdb's coverage: this is a robustness
// check of the plugin's side more than a search of go-rpmdb.)
func FuzzDatabase(f *testing.F) {
	for _, name := range realDatabases {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("SQLite format 3\x00"))
	f.Add([]byte("RpmP\x00\x00\x00\x00\x01\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		if err := tw.WriteHeader(&tar.Header{Name: "var/lib/rpm/Packages", Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
		tw.Close()
		items, err := sdktest.ExtractErr(t.Context(), buf.Bytes(), sdk.LayerLimits{MaxFileBytes: map[string]int64{Name: 4 << 20}}, &Extractor{ReadTimeout: time.Second})
		if err != nil {
			t.Fatalf("extract: %v", err)
		}
		for _, it := range items {
			if err := it.Validate(); err != nil {
				t.Fatalf("invalid item %+v: %v", it, err)
			}
			if p := it.Package; p != nil && (!validField(p.Name) || !validField(p.Version) || p.OS != "rpm" || len(p.Locations) == 0) {
				t.Fatalf("invalid package %+v", p)
			}
			if o := it.Owned; o != nil && slices.ContainsFunc(o.Paths, func(p string) bool { return !validPath(p) }) {
				t.Fatalf("invalid owned files %+v", o)
			}
			if it.Finding != nil {
				t.Fatalf("finding %+v", it.Finding)
			}
		}
	})
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
		if err != nil && (pkgs != nil || last.End || last.Err != "" || last.Count != 0) {
			t.Fatalf("error %v with %d packages, last %+v", err, len(pkgs), last)
		}
		if err == nil && last.Err == "" && (!last.End || last.Count != len(pkgs)) {
			t.Fatalf("success with %d packages, last %+v", len(pkgs), last)
		}
	})
}
