package dpkg

import (
	"maps"
	"os"
	"path/filepath"
	"testing"

	"github.com/assayhq/assay/plugins/sdk"
)

type discard struct{}

func (discard) Package(sdk.Package) error { return nil }
func (discard) Finding(sdk.Finding) error { return nil }
func (discard) Warning(sdk.Warning) error { return nil }

// Packages that are not installed are counted by state, those with nothing
// on disk but configuration without a warning.
func TestNotInstalledAreCounted(t *testing.T) {
	dir := t.TempDir()
	status := filepath.Join(dir, "var/lib/dpkg/status")
	if err := os.MkdirAll(filepath.Dir(status), 0o755); err != nil {
		t.Fatal(err)
	}
	err := os.WriteFile(status, []byte(
		"Package: a\nVersion: 1\nStatus: deinstall ok config-files\n\n"+
			"Package: b\nVersion: 1\nStatus: purge ok not-installed\n\n"+
			"Package: c\nVersion: 1\nStatus: deinstall ok config-files\n\n"+
			"Package: d\nVersion: 1\nStatus: install ok half-configured\n\n"+
			"Package: e\nVersion: 1\n\n"+
			"Package: f\nVersion: 1\nStatus: install ok\n\n"+
			"Package: g\nVersion: 1\nStatus: deinstall ok installed\n"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	st, err := analyze(t.Context(), root, sdk.Request{}, discard{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"config-files": 2, "not-installed": 1, "half-configured": 1, "no-status": 1}
	if !maps.Equal(st.NotInstalled, want) || st.Packages != 1 || st.Malformed != 1 || st.Files != 1 {
		t.Errorf("stats %+v, want %v not installed, 1 package, 1 malformed, 1 file", st, want)
	}
}
