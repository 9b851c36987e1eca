package analyzers_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/assayhq/assay/analyzers"
	"github.com/assayhq/assay/analyzers/builtin"
	"github.com/assayhq/assay/plugins/sdk"
	"github.com/assayhq/assay/plugins/sdk/sdktest"
)

// The manifest's rule for plugin and extractor names (docs/plugins.md).
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

func TestNamesSortedAndUnique(t *testing.T) {
	if len(analyzers.Names) == 0 {
		t.Fatal("no analyzers")
	}
	if !slices.IsSorted(analyzers.Names) {
		t.Errorf("analyzers.Names is not sorted: %q", analyzers.Names)
	}
	if c := slices.Compact(slices.Clone(analyzers.Names)); len(c) != len(analyzers.Names) {
		t.Errorf("analyzers.Names has duplicates: %q", analyzers.Names)
	}
}

// The built-in set serves exactly analyzers.Names, in that order, each a
// conforming extractor; the plugin describes them.
func TestBuiltinServesTheNames(t *testing.T) {
	set := builtin.Set()
	if set.Name != analyzers.Plugin {
		t.Errorf("set name %q, want %q", set.Name, analyzers.Plugin)
	}
	var names []string
	for _, e := range set.New() {
		names = append(names, e.Name())
		if !nameRE.MatchString(e.Name()) {
			t.Errorf("%q is not a valid extractor name", e.Name())
		}
		t.Run(e.Name(), func(t *testing.T) { sdktest.ExtractorConformance(t, e) })
	}
	if !slices.Equal(names, analyzers.Names) {
		t.Errorf("builtin serves %q, analyzers.Names says %q", names, analyzers.Names)
	}
	d, err := sdk.LayerAnalyzer{Set: set}.Describe(t.Context())
	if err != nil || d.Validate() != nil || len(d.Extractors) != len(analyzers.Names) {
		t.Errorf("Describe = %+v, %v", d, err)
	}
	if _, err := os.Stat(filepath.Join("cmd", "assay-"+analyzers.Plugin, "main.go")); err != nil {
		t.Errorf("no command: %v", err)
	}
}
