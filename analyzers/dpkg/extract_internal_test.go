package dpkg

import (
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/assayhq/assay/plugins/sdk"
)

type discard struct{}

func (discard) Package(sdk.Package) error       { return nil }
func (discard) Finding(sdk.Finding) error       { return nil }
func (discard) Warning(sdk.Warning) error       { return nil }
func (discard) OwnedFiles(sdk.OwnedFiles) error { return nil }
func (discard) OSRelease(sdk.OSRelease) error   { return nil }

// Packages that are not installed are counted by state, those with nothing
// on disk but configuration without a warning.
func TestNotInstalledAreCounted(t *testing.T) {
	status := "Package: a\nVersion: 1\nStatus: deinstall ok config-files\n\n" +
		"Package: b\nVersion: 1\nStatus: purge ok not-installed\n\n" +
		"Package: c\nVersion: 1\nStatus: deinstall ok config-files\n\n" +
		"Package: d\nVersion: 1\nStatus: install ok half-configured\n\n" +
		"Package: e\nVersion: 1\n\n" +
		"Package: f\nVersion: 1\nStatus: install ok\n\n" +
		"Package: g\nVersion: 1\nStatus: deinstall ok installed\n"
	e := newExtractor()
	fi := sdk.FileInfo{Path: StatusFile, Mode: 0o644, Size: int64(len(status))}
	if !e.Required(fi) {
		t.Fatal("the status file is not required")
	}
	if err := e.Extract(t.Context(), fi, strings.NewReader(status), discard{}); err != nil {
		t.Fatal(err)
	}
	st := e.stats
	want := map[string]int{"config-files": 2, "not-installed": 1, "half-configured": 1, "no-status": 1}
	if !maps.Equal(st.NotInstalled, want) || st.Packages != 1 || st.Malformed != 1 || st.Files != 1 {
		t.Errorf("stats %+v, want %v not installed, 1 package, 1 malformed, 1 file", st, want)
	}
}

// At most maxFiles status.d files of a layer are read; a warning says so
// when the layer ends.
func TestStatusDirFileLimit(t *testing.T) {
	e := newExtractor()
	e.maxFiles = 4
	for i := range 10 {
		body := fmt.Sprintf("Package: p%d\nVersion: 1\n", i)
		fi := sdk.FileInfo{Path: fmt.Sprintf("%s/p%d", StatusDir, i), Mode: 0o644, Size: int64(len(body))}
		if err := e.Extract(t.Context(), fi, strings.NewReader(body), discard{}); err != nil {
			t.Fatal(err)
		}
	}
	var out sdktestOutput
	if err := e.Finish(t.Context(), nil, &out); err != nil {
		t.Fatal(err)
	}
	want := "/var/lib/dpkg/status.d: more than 4 entries: only the first 4 (in layer order) were read"
	if e.stats.Packages != 4 || len(out.warnings) != 1 || out.warnings[0] != want {
		t.Errorf("%d packages, warnings %q", e.stats.Packages, out.warnings)
	}
}

type sdktestOutput struct {
	discard
	warnings []string
}

func (o *sdktestOutput) Warning(w sdk.Warning) error {
	o.warnings = append(o.warnings, w.Path+": "+w.Message)
	return nil
}
