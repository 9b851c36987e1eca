// Package plugins_test holds the dependency rules of everything under
// plugins/: plugins never import the daemon, the host never imports the
// sandbox (it arrives as Options.Runner), and what a plugin author imports
// (sdk, and the example plugin) pulls in neither the host nor the
// container machinery.
package plugins_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/assayhq/assay"

// deps lists the packages pattern and its tests depend on.
func deps(t *testing.T, pattern string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-test", pattern).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list %s: %v\n%s", pattern, err, ee.Stderr)
		}
		t.Fatalf("go list %s: %v", pattern, err)
	}
	return strings.Fields(string(out))
}

func forbid(t *testing.T, pattern string, prefixes ...string) {
	t.Helper()
	list := deps(t, pattern)
	if len(list) < 10 {
		t.Fatalf("go list %s found only %q", pattern, list)
	}
	for _, p := range list {
		for _, bad := range prefixes {
			if p == bad || strings.HasPrefix(p, bad+"/") {
				t.Errorf("%s depends on %s", pattern, p)
			}
		}
	}
}

func TestPluginsNeverImportTheDaemon(t *testing.T) {
	forbid(t, module+"/plugins/...", module+"/daemon", module+"/sandbox")
}

func TestPluginSideStaysSmall(t *testing.T) {
	for _, pattern := range []string{module + "/plugins/sdk/...", module + "/plugins/example/..."} {
		forbid(t, pattern,
			module+"/plugins/host",
			"github.com/containerd",
			"github.com/opencontainers/runc",
			"github.com/spf13/viper",
		)
	}
}
