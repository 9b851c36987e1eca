package analyze

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assayhq/assay/daemon/images"
	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/plugins/host"
)

var pluginsDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "assay-analyze-")
	if err != nil {
		panic(err)
	}
	pluginsDir = dir
	bin := filepath.Join(dir, "assay-example")
	cmd := exec.Command("go", "build", "-o", bin, "../../plugins/example/cmd/assay-example")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Printf("building the example plugin: %v\n%s", err, out)
		os.Exit(1)
	}
	data, _ := os.ReadFile(bin)
	sum := sha256.Sum256(data)
	manifest, _ := json.Marshal(host.Manifest{Name: "example", Version: "0.1.0", Binary: "assay-example", SHA256: hex.EncodeToString(sum[:])})
	os.WriteFile(filepath.Join(dir, "example.plugin.json"), manifest, 0o644)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// plainSandbox runs plugins as plain child processes (host's nil runner):
// it tests the conversion and bookkeeping here, not isolation, which the
// sandbox package and the e2e tests prove.
type plainSandbox struct{ target string }

func (p plainSandbox) RunnerFunc([]string) host.RunnerFunc        { return nil }
func (p plainSandbox) Target() string                             { return p.target }
func (p plainSandbox) RunnerFuncFiles([]*os.File) host.RunnerFunc { return nil }

func TestRunRecordsAnalyzersAndWarnings(t *testing.T) {
	target := t.TempDir()
	os.MkdirAll(filepath.Join(target, "etc"), 0o755)
	os.WriteFile(filepath.Join(target, "etc/os-release"), []byte("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n"), 0o644)
	cache, _ := os.MkdirTemp("/tmp", "an-")
	defer os.RemoveAll(cache)
	a, err := New(Options{PluginsDir: pluginsDir, CacheDir: cache, Enabled: []string{"example"}, Sandbox: plainSandbox{target}, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.Run(context.Background(), &images.Image{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Analyzers) != 1 || res.Analyzers[0].Status != report.AnalyzerOK || res.Analyzers[0].Version != "0.1.0" {
		t.Fatalf("analyzers: %+v", res.Analyzers)
	}
	if len(res.Warnings) == 0 || !strings.Contains(strings.Join(report.WarningStrings(res.Warnings), "\n"), "Debian GNU/Linux 12") {
		t.Fatalf("warnings: %v", res.Warnings)
	}
	if report.DecideVerdict(res.Analyzers, 0) != report.Healthy {
		t.Fatal("an ok analyzer with no findings must give healthy")
	}
}

func TestRunFailedPluginIsRecorded(t *testing.T) {
	cache, _ := os.MkdirTemp("/tmp", "an-")
	defer os.RemoveAll(cache)
	// A target that does not exist: the plugin's Analyze fails.
	a, err := New(Options{PluginsDir: pluginsDir, CacheDir: cache, Enabled: []string{"example"}, Sandbox: plainSandbox{"/nonexistent-target"}, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.Run(context.Background(), &images.Image{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Analyzers[0].Status != report.AnalyzerFailed || res.Analyzers[0].Error == "" {
		t.Fatalf("analyzer record: %+v", res.Analyzers[0])
	}
	if report.DecideVerdict(res.Analyzers, 0) != report.Incomplete {
		t.Fatal("a failed analyzer must make the verdict incomplete")
	}
}

func TestEnabledPluginMustExist(t *testing.T) {
	_, err := New(Options{PluginsDir: pluginsDir, CacheDir: t.TempDir(), Enabled: []string{"nope"}, Sandbox: plainSandbox{}})
	if err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("missing plugin: %v", err)
	}
	a, err := New(Options{PluginsDir: "/nonexistent", Enabled: nil})
	if err != nil || len(a.EnabledPlugins()) != 0 {
		t.Fatalf("no plugins enabled: %v", err)
	}
}
