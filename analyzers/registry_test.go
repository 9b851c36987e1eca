package analyzers_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/assayhq/assay/analyzers"
	"github.com/assayhq/assay/analyzers/apk"
	"github.com/assayhq/assay/analyzers/dpkg"
	"github.com/assayhq/assay/analyzers/gobinary"
	"github.com/assayhq/assay/analyzers/java"
	"github.com/assayhq/assay/analyzers/npm"
	"github.com/assayhq/assay/analyzers/python"
	"github.com/assayhq/assay/analyzers/rpm"
	"github.com/assayhq/assay/analyzers/ruby"
	"github.com/assayhq/assay/analyzers/rust"
	"github.com/assayhq/assay/plugins/sdk"
)

// implementations maps each name to its analyzer, so that the test can ask
// each for its description. A new analyzer goes into both lists.
var implementations = map[string]sdk.Analyzer{
	"apk":      apk.Analyzer{},
	"dpkg":     dpkg.Analyzer{},
	"gobinary": gobinary.Analyzer{},
	"java":     java.Analyzer{},
	"npm":      npm.Analyzer{},
	"python":   python.Analyzer{},
	"rpm":      rpm.Analyzer{},
	"ruby":     ruby.Analyzer{},
	"rust":     rust.Analyzer{},
}

// The manifest's rule for plugin names (docs/plugins.md).
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

func TestEachNameIsAPlugin(t *testing.T) {
	for _, name := range analyzers.Names {
		if !nameRE.MatchString(name) {
			t.Errorf("%q is not a valid plugin name", name)
		}
		a, ok := implementations[name]
		if !ok {
			t.Errorf("%s: not in this test's implementations", name)
			continue
		}
		d, err := a.Describe(t.Context())
		if err != nil || d.Validate() != nil || d.Name != name {
			t.Errorf("%s: Describe = %+v, %v", name, d, err)
		}
		if _, err := os.Stat(filepath.Join("cmd", "assay-"+name, "main.go")); err != nil {
			t.Errorf("%s: no command: %v", name, err)
		}
	}
	for name := range implementations {
		if !slices.Contains(analyzers.Names, name) {
			t.Errorf("%s is tested but not listed in analyzers.Names", name)
		}
	}
}
