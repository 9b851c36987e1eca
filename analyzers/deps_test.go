package analyzers_test

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/assayhq/assay/analyzers"
)

const module = "github.com/assayhq/assay"

// goList returns what `go list -deps [-test] pattern` lists.
func goList(t *testing.T, withTests bool, pattern string) []string {
	t.Helper()
	args := []string{"list", "-deps"}
	if withTests {
		args = append(args, "-test")
	}
	out, err := exec.Command("go", append(args, pattern)...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	// One package a line; with -test, a test variant is followed by
	// " [its test binary]".
	var list []string
	for l := range strings.Lines(string(out)) {
		if f := strings.Fields(l); len(f) > 0 {
			list = append(list, f[0])
		}
	}
	if len(list) < 10 {
		t.Fatalf("go list %s found only %q", pattern, list)
	}
	return list
}

func under(p, prefix string) bool { return p == prefix || strings.HasPrefix(p, prefix+"/") }

// Analyzers run in the sandbox on an untrusted image: they import the SDK
// and nothing of the daemon, the plugin host, the sandbox, containerd or
// runc, and of this module only the SDK (with its generated protocol) and
// other analyzers. Their tests included: sdktest is the SDK's.
func TestAnalyzersImportOnlyTheSDK(t *testing.T) {
	forbidden := []string{
		module + "/daemon",
		module + "/plugins/host",
		module + "/sandbox",
		"github.com/containerd",
		"github.com/opencontainers/runc",
		"github.com/spf13/viper",
	}
	allowed := []string{module + "/analyzers", module + "/plugins/sdk", module + "/plugins/proto"}
	for _, withTests := range []bool{false, true} {
		for _, p := range goList(t, withTests, module+"/analyzers/...") {
			for _, bad := range forbidden {
				if under(p, bad) {
					t.Errorf("analyzers depend on %s (tests included: %v)", p, withTests)
				}
			}
			if under(p, module) {
				// The test binaries and external test packages of
				// analyzers are analyzers too.
				base := strings.TrimSuffix(strings.TrimSuffix(p, ".test"), "_test")
				ok := false
				for _, a := range allowed {
					ok = ok || under(base, a)
				}
				if !ok {
					t.Errorf("analyzers depend on %s, which is neither the SDK nor an analyzer (tests included: %v)", p, withTests)
				}
			}
		}
	}
}

// Each plugin builds as a static binary with CGO_ENABLED=0 -trimpath: the
// sandbox has no libraries.
func TestPluginsBuildStatic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	dir := t.TempDir()
	for _, name := range []string{analyzers.Plugin} {
		bin := filepath.Join(dir, "assay-"+name)
		cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/assay-"+name)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("assay-%s is dynamically linked", name)
			}
		}
		f.Close()
	}
}
