package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// make install puts a working assayd in place: run from its installed
// path on its defaults, it finds its containerd and its plugins next to
// itself; a config already there is kept; make uninstall removes the rest.
func TestMakeInstall(t *testing.T) {
	dest := t.TempDir()
	os.MkdirAll(filepath.Join(dest, "etc/assay"), 0o755)
	os.WriteFile(filepath.Join(dest, "etc/assay/assayd.yaml"), []byte("# mine\n"), 0o644)
	make := func(target string) {
		t.Helper()
		out, err := exec.Command("make", "-C", "..", target, "DESTDIR="+dest).CombinedOutput()
		if err != nil {
			t.Fatalf("make %s: %v\n%s", target, err, out)
		}
	}
	make("install")
	for _, f := range []string{"usr/local/bin/assay", "usr/local/lib/assay/containerd", "usr/local/lib/assay/plugins/builtin.plugin.json",
		"usr/local/lib/systemd/system/assayd.service", "usr/local/lib/systemd/system/assayd.socket",
		"usr/local/lib/sysusers.d/assay.conf", "usr/local/lib/tmpfiles.d/assay.conf"} {
		if _, err := os.Stat(filepath.Join(dest, f)); err != nil {
			t.Errorf("not installed: %v", err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "etc/assay/assayd.yaml")); string(b) != "# mine\n" {
		t.Errorf("the existing config was replaced: %q", b)
	}
	// The installed assayd, through its bin/ symlink, on its defaults.
	d := startDaemon(t, daemonOpts{bin: filepath.Join(dest, "usr/local/bin/assayd"), defaults: true})
	out, errOut, code := d.assay("health", "-o", "json")
	var h struct {
		Analyzers []struct{ Name string } `json:"analyzers"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &h) != nil || !slices.ContainsFunc(h.Analyzers, func(a struct{ Name string }) bool { return a.Name == "builtin" }) {
		t.Errorf("the installed assayd: health %s %s (exit %d)", out, errOut, code)
	}
	d.kill()
	make("uninstall")
	var left []string
	filepath.Walk(filepath.Join(dest, "usr"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			left = append(left, p)
		}
		return nil
	})
	if len(left) != 0 {
		t.Errorf("left after make uninstall: %v", left)
	}
	if _, err := os.Stat(filepath.Join(dest, "etc/assay/assayd.yaml")); err != nil {
		t.Errorf("make uninstall removed the config: %v", err)
	}
}
