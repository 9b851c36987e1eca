package npm

import (
	"os"
	"strings"
	"testing"
)

// FuzzParseLockfile: parseLockfile never panics, and what it returns is
// sorted, deduplicated, named and versioned, and yields valid purls.
func FuzzParseLockfile(f *testing.F) {
	for _, p := range []string{"testdata/app/package-lock.json", "testdata/lockfile-v1/package-lock.json", "testdata/lockfile-v2/package-lock.json"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"lockfileVersion":1,"dependencies":{"a":{"version":"npm:@s/b@1.0.0","dependencies":{"a":{"version":"file:x"}}}}}`))
	f.Add([]byte(`{"lockfileVersion":3,"packages":{"":{},"node_modules/x":{"link":true},"node_modules/@s/y":{"version":"1"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := parseLockfile(data)
		if err != nil {
			if entries != nil {
				t.Fatalf("entries with an error")
			}
			return
		}
		for i, e := range entries {
			if e.Name == "" || e.Version == "" {
				t.Fatalf("entry %+v", e)
			}
			if i > 0 && !(entries[i-1].Name < e.Name || entries[i-1].Name == e.Name && entries[i-1].Version < e.Version) {
				t.Fatalf("not sorted or duplicate: %+v %+v", entries[i-1], e)
			}
			if !strings.HasPrefix(purl(e.Name, e.Version), "pkg:npm/") {
				t.Fatalf("purl %s", purl(e.Name, e.Version))
			}
		}
	})
}
