package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
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

// make deb builds a Debian package of the same tree: the config a
// conffile, the maintainer scripts that create the group and enable the
// socket, and binaries that work where the package puts them (extracted
// here; the scripts are not run: they would change this host).
func TestDebPackage(t *testing.T) {
	out, err := exec.Command("make", "-C", "..", "deb").CombinedOutput()
	if err != nil {
		t.Fatalf("make deb: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob("../bin/assay_*_amd64.deb")
	if len(debs) == 0 {
		t.Fatalf("no package in bin/:\n%s", out)
	}
	deb := debs[len(debs)-1]
	info, err := exec.Command("dpkg-deb", "-I", deb).CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Package: assay", "Depends: libseccomp2", "conffiles", "postinst", "prerm", "postrm"} {
		if !strings.Contains(string(info), want) {
			t.Errorf("dpkg-deb -I lacks %q:\n%s", want, info)
		}
	}
	ctl := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "-e", deb, ctl).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -e: %v %s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(ctl, "conffiles")); strings.TrimSpace(string(b)) != "/etc/assay/assayd.yaml" {
		t.Errorf("conffiles: %q", b)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		if out, err := exec.Command("sh", "-n", filepath.Join(ctl, s)).CombinedOutput(); err != nil {
			t.Errorf("%s does not parse: %v %s", s, err, out)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(ctl, "postinst")); !strings.Contains(string(b), "systemd-sysusers") || !strings.Contains(string(b), "enable --now assayd.socket") {
		t.Errorf("postinst creates no group or enables no socket:\n%s", b)
	}
	root := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "-x", deb, root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v %s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "usr/lib/systemd/system/assayd.service")); !strings.Contains(string(b), "ExecStart=/usr/bin/assayd ") {
		t.Error("the packaged unit does not start /usr/bin/assayd")
	}
	d := startDaemon(t, daemonOpts{bin: filepath.Join(root, "usr/bin/assayd"), defaults: true})
	health, errOut, code := d.assay("health", "-o", "json")
	if code != 0 || !strings.Contains(health, `"builtin"`) {
		t.Errorf("the packaged assayd: health %s %s (exit %d)", health, errOut, code)
	}
}
