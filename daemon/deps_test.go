package daemon_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/assayhq/assay"

// imports lists every package of the module with its direct imports.
func imports(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	m := map[string][]string{}
	for l := range strings.Lines(string(out)) {
		f := strings.Fields(l)
		if len(f) > 0 {
			m[f[0]] = f[1:]
		}
	}
	if len(m) < 20 {
		t.Fatalf("go list found only %d packages", len(m))
	}
	return m
}

// The import table: each dependency that touches the host, the disk
// format or the plugin channel is used by the one package made for it,
// so that a change of it (or a review of it) has one place to look.
func TestImportTable(t *testing.T) {
	table := []struct {
		prefix  string   // an import path, its packages below, or (ending in /) a prefix
		allowed []string // the packages that may import it (module-relative)
		exact   bool     // the path itself only, not the packages below it
	}{
		{"github.com/containerd/containerd/v2/contrib/seccomp", []string{"sandbox"}, false},
		{"github.com/containerd/containerd/v2/client", []string{"daemon/images", "daemon"}, false},
		{"github.com/containerd/", []string{"daemon/images"}, false},
		{"github.com/opencontainers/runc", []string{"sandbox"}, false},
		{"github.com/opencontainers/cgroups", []string{"sandbox"}, false},
		{"github.com/spf13/viper", []string{"daemon/config"}, false},
		{"go.etcd.io/bbolt", []string{"daemon/store", "daemon/vulndb"}, false},
		{"github.com/hashicorp/go-plugin/runner", []string{"sandbox", "plugins/host"}, false},
		{"github.com/hashicorp/go-plugin", []string{"plugins/host", "plugins/sdk", "plugins/sdk/sdktest"}, false},
		// The wiring package is imported by assayd's main alone.
		{module + "/daemon", []string{"daemon/cmd/assayd"}, true},
	}
	for pkg, imps := range imports(t) {
		rel := strings.TrimPrefix(strings.TrimPrefix(pkg, module), "/")
		if strings.Contains(rel, "testdata") || strings.HasPrefix(rel, "e2e") {
			continue
		}
		for _, imp := range imps {
			for _, rule := range table {
				match := imp == rule.prefix || !rule.exact && strings.HasPrefix(imp, strings.TrimSuffix(rule.prefix, "/")+"/")
				if !match {
					continue
				}
				if !slices.Contains(rule.allowed, rel) {
					t.Errorf("%s imports %s: only %v may (the import table in daemon/deps_test.go)", rel, imp, rule.allowed)
				}
				break // the first, most specific rule decides
			}
		}
	}
}

// The CLI is a client: it links neither the store nor bbolt nor the
// server's packages (it decodes the API's answers into its own types).
func TestCLIStaysAClient(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", module+"/daemon/cmd/assay").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for dep := range strings.Lines(string(out)) {
		dep = strings.TrimSpace(dep)
		for _, banned := range []string{"go.etcd.io/bbolt", module + "/daemon/store", module + "/daemon/notify", module + "/daemon/api", "github.com/cloudevents/"} {
			if dep == banned || strings.HasPrefix(dep, strings.TrimSuffix(banned, "/")+"/") {
				t.Errorf("daemon/cmd/assay links %s", dep)
			}
		}
	}
}
