package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
)

// buildPlugin builds a static plugin binary into dir with its manifest.
func buildPlugin(t *testing.T, dir, name, pkg string, ldflags string) {
	t.Helper()
	bin := filepath.Join(dir, "assay-"+name)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags, "-o", bin, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, out)
	}
	data, _ := os.ReadFile(bin)
	sum := sha256.Sum256(data)
	m, _ := json.Marshal(map[string]string{"name": name, "version": "1", "binary": "assay-" + name, "sha256": hex.EncodeToString(sum[:])})
	if err := os.WriteFile(filepath.Join(dir, name+".plugin.json"), m, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Hostile analyzer plugins attack their sandboxes while assayd scans the
// real Debian image: every attack fails, every limit holds, each analyzer
// is reported with the right status and reason, assayd keeps serving, and
// nothing is left behind.
func TestHostilePluginsAreContained(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Close()
			accepted <- struct{}{}
		}
	}()
	_, port, _ := net.SplitHostPort(l.Addr().String())

	plugins := shortTempDir(t)
	modes := []string{"escape", "filltmp", "tcp", "forkbomb", "alloc", "spin", "crash", "nohandshake"}
	var enabled []string
	for _, m := range modes {
		buildPlugin(t, plugins, "hostile-"+m, "./testdata/hostile", fmt.Sprintf("-X main.mode=%s -X main.port=%s", m, port))
		enabled = append(enabled, "hostile-"+m)
	}
	buildPlugin(t, plugins, "example", "../plugins/example/cmd/assay-example", "")
	enabled = append(enabled, "example")

	reg := newRegistry(t)
	img := loadDebian(t)
	ref, digest := reg.pushImage(t, "library/debian:12", img)
	d := startDaemon(t, daemonOpts{args: []string{
		"--plugins.dir", plugins,
		"--plugins.enabled", strings.Join(enabled, ","),
		"--sandbox.timeout", "5s",
		"--sandbox.start_timeout", "3s",
		"--sandbox.memory", "128MiB",
		"--sandbox.pids", "32",
		"--sandbox.tmpfs_bytes", "8MiB",
	}})
	sc := d.waitStatus(d.submit(ref).ID, scans.Done, 3*time.Minute)
	rep, err := d.Client.Report(context.Background(), digest)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Verdict != report.Incomplete || rep.Verdict != report.Incomplete {
		t.Fatalf("verdict %s, want incomplete (analyzers failed)", rep.Verdict)
	}
	status := map[string]report.Analyzer{}
	for _, a := range rep.Analyzers {
		status[a.Name] = a
		t.Logf("analyzer %-20s %-8s %s", a.Name, a.Status, a.Error)
	}
	want := map[string]report.AnalyzerStatus{
		"hostile-escape":      report.AnalyzerOK,
		"hostile-tcp":         report.AnalyzerOK,
		"hostile-filltmp":     report.AnalyzerOK,
		"hostile-forkbomb":    "", // contained: failed or timeout
		"hostile-alloc":       report.AnalyzerFailed,
		"hostile-spin":        report.AnalyzerTimeout,
		"hostile-crash":       report.AnalyzerFailed,
		"hostile-nohandshake": report.AnalyzerFailed,
		"example":             report.AnalyzerOK,
	}
	for name, st := range want {
		a, ok := status[name]
		if !ok {
			t.Errorf("analyzer %s missing from the report", name)
			continue
		}
		if st != "" && a.Status != st {
			t.Errorf("analyzer %s: %s (%s), want %s", name, a.Status, a.Error, st)
		}
		if st == "" && a.Status == report.AnalyzerOK {
			t.Errorf("analyzer %s ended ok", name)
		}
	}
	if e := status["hostile-alloc"].Error; !strings.Contains(e, "out of memory (limit 128 MiB)") {
		t.Errorf("alloc reason %q does not name the memory limit", e)
	}
	if e := status["hostile-crash"].Error; !strings.Contains(e, "crash") {
		t.Errorf("crash reason %q", e)
	}
	if e := status["hostile-nohandshake"].Error; !strings.Contains(e, "handshake") {
		t.Errorf("nohandshake reason %q", e)
	}
	warnings := strings.Join(report.WarningStrings(rep.Warnings), "\n")
	t.Logf("warnings:\n%s", warnings)
	for _, w := range report.WarningStrings(rep.Warnings) {
		name, rest, _ := strings.Cut(w, ": ")
		if name != "hostile-escape" && name != "hostile-tcp" && name != "hostile-filltmp" {
			continue
		}
		what, result, _ := strings.Cut(rest, ": ")
		if what == "read-image-shadow" {
			if result != "ok" {
				t.Errorf("the image's root-only /etc/shadow was not readable in the sandbox: %s", result)
			}
			continue
		}
		if result == "ok" {
			t.Errorf("attack %s succeeded inside the sandbox", what)
		}
	}
	for _, what := range []string{"write-target", "chown-caps", "mount", "ptrace", "keyctl", "unshare", "bpf", "mknod", "tcp-host", "read-image-shadow"} {
		if !strings.Contains(warnings, what+": ") {
			t.Errorf("no result for %s", what)
		}
	}
	if !strings.Contains(warnings, "no space left on device after 8 MiB") {
		t.Errorf("/tmp was not stopped at sandbox.tmpfs_bytes (8 MiB)")
	}
	if !strings.Contains(warnings, "Debian GNU/Linux 12") {
		t.Errorf("the example analyzer did not read os-release through the sandbox")
	}
	select {
	case <-accepted:
		t.Error("a plugin reached a TCP listener on the host")
	default:
	}
	if _, err := d.Client.Health(context.Background()); err != nil {
		t.Fatalf("assayd unhealthy after the hostile plugins: %v", err)
	}
	// Nothing left: no plugin process, no mount under the state dir, no
	// sandbox dir.
	waitFor(t, 10*time.Second, "plugin processes to end", func() bool {
		out, _ := exec.Command("pgrep", "-f", "assay-hostile").Output()
		return len(strings.TrimSpace(string(out))) == 0
	})
	// While assayd runs, only its sandbox state dir itself is a mount
	// point (the sandbox manager makes it one); nothing below it or below
	// the views dir may remain.
	mi, _ := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", d.cmd.Process.Pid))
	for _, line := range strings.Split(string(mi), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || !strings.HasPrefix(f[4], d.State+"/") || f[4] == filepath.Join(d.State, "sandbox") {
			continue
		}
		t.Errorf("mount left: %s", line)
	}
	assertNoLeftovers(t, d)
}

// The dpkg analyzer, as built into bin/plugins, inventories the real Debian
// image inside its sandbox: the report's packages are exactly what
// dpkg-query says of the image's status file (want.tsv).
func TestDebianInventoryInSandbox(t *testing.T) {
	reg := newRegistry(t)
	ref, digest := reg.pushImage(t, "library/debian:12", loadDebian(t))
	d := startDaemon(t, daemonOpts{args: []string{
		"--plugins.dir", filepath.Join(binDir, "plugins"),
		"--plugins.enabled", "dpkg",
	}})
	d.waitStatus(d.submit(ref).ID, scans.Done, 2*time.Minute)
	rep, err := d.Client.Report(context.Background(), digest)
	if err != nil {
		t.Fatal(err)
	}
	// dpkg, and os-release, which runs with every built-in extractor.
	if len(rep.Analyzers) != 2 || rep.Analyzers[0].Name != "dpkg" || rep.Analyzers[1].Name != "os-release" ||
		rep.Analyzers[0].Status != report.AnalyzerOK || rep.Analyzers[1].Status != report.AnalyzerOK {
		t.Fatalf("analyzers: %+v", rep.Analyzers)
	}
	// The database is empty here: an inventory matched against nothing is
	// never "healthy".
	if rep.Verdict != report.Incomplete {
		t.Fatalf("verdict %s", rep.Verdict)
	}
	want, err := os.ReadFile("../analyzers/dpkg/testdata/debian-12-minbase/want.tsv")
	if err != nil {
		t.Fatal(err)
	}
	wantSet := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(want)), "\n") {
		f := strings.Split(line, "\t")
		wantSet[strings.Join(f[:4], "\t")] = true
	}
	got := map[string]bool{}
	for _, p := range rep.Packages {
		if p.Ecosystem != "Debian:12" || p.Source == nil || !strings.HasPrefix(p.PURL, "pkg:deb/debian/") {
			t.Fatalf("package %+v", p)
		}
		got[strings.Join([]string{p.Name, p.Version, p.Source.Name, p.Source.Version}, "\t")] = true
	}
	if len(got) != len(wantSet) || len(got) != 88 {
		t.Fatalf("%d packages, dpkg-query says %d", len(got), len(wantSet))
	}
	for k := range wantSet {
		if !got[k] {
			t.Errorf("missing %q", k)
		}
	}
	assertNoLeftovers(t, d)
}

// The gobinary analyzer in its sandbox finds the modules of a real Go
// binary (assay's own CLI) in an image, as `go version -m` lists them.
func TestGoBinaryInventoryInSandbox(t *testing.T) {
	cli := filepath.Join(binDir, "assay")
	want := goModules(t, cli)
	reg := newRegistry(t)
	ref, digest := reg.pushImage(t, "demo/cli:1", imageWithFile(t, cli, "usr/local/bin/assay"))
	d := startDaemon(t, daemonOpts{args: []string{
		"--plugins.dir", filepath.Join(binDir, "plugins"),
		"--plugins.enabled", "gobinary",
	}})
	d.waitStatus(d.submit(ref).ID, scans.Done, 2*time.Minute)
	rep, err := d.Client.Report(context.Background(), digest)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Analyzers) != 2 || rep.Analyzers[0].Name != "gobinary" || rep.Analyzers[0].Status != report.AnalyzerOK || rep.Analyzers[1].Status != report.AnalyzerOK {
		t.Fatalf("analyzers: %+v", rep.Analyzers)
	}
	got := map[string]bool{}
	for _, p := range rep.Packages {
		if p.Ecosystem != "Go" || len(p.Locations) != 1 || p.Locations[0] != "/usr/local/bin/assay" {
			t.Fatalf("package %+v", p)
		}
		got[p.Name+" "+p.Version] = true
	}
	for k := range want {
		if !got[k] {
			t.Errorf("go version -m lists %q, the report does not", k)
		}
	}
	for k := range got {
		if !want[k] {
			t.Errorf("the report lists %q, go version -m does not", k)
		}
	}
	t.Logf("%d Go packages, as go version -m", len(got))
}

// An image built here with extra layers over the real Debian base (an npm
// app, a Go binary, Debian's Python packages, then a layer that whites one
// of them out) comes out of assayd's sandboxed analyzers with each
// ecosystem's packages, and without the whited-out one.
func TestMultiLayerInventory(t *testing.T) {
	base := loadDebian(t)
	img, err := mutate.AppendLayers(base,
		dirLayer(t, "../analyzers/npm/testdata/app", "app"),
		fileLayer(t, filepath.Join(binDir, "assay"), "usr/local/bin/assay"),
		dirLayer(t, "../analyzers/python/testdata/debian", ""),
		whiteoutLayer(t, "usr/lib/python3/dist-packages/six-1.16.0.egg-info"),
	)
	if err != nil {
		t.Fatal(err)
	}
	reg := newRegistry(t)
	ref, digest := reg.pushImage(t, "demo/multi:1", img)
	d := startDaemon(t, daemonOpts{args: []string{
		"--plugins.dir", filepath.Join(binDir, "plugins"),
		"--plugins.enabled", "dpkg,gobinary,npm,python",
	}})
	d.waitStatus(d.submit(ref).ID, scans.Done, 3*time.Minute)
	rep, err := d.Client.Report(context.Background(), digest)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range rep.Analyzers {
		if a.Status != report.AnalyzerOK {
			t.Errorf("analyzer %s: %s %s", a.Name, a.Status, a.Error)
		}
	}
	count := map[string]int{}
	for _, p := range rep.Packages {
		count[p.Ecosystem]++
		if p.Ecosystem == "PyPI" {
			if p.Name == "six" {
				t.Errorf("the whited-out python package six was reported: %+v", p)
			}
			if p.Owner == "" {
				t.Errorf("python package %s has no Debian owner", p.Name)
			}
		}
	}
	t.Logf("packages per ecosystem: %v", count)
	want := map[string]int{"Debian:12": 88, "Go": len(goModules(t, filepath.Join(binDir, "assay"))), "npm": 3, "PyPI": 5}
	for eco, n := range want {
		if count[eco] != n {
			t.Errorf("%s: %d packages, want %d", eco, count[eco], n)
		}
	}
}

// goModules is what `go version -m bin` lists, as "path version" (the
// toolchain as "stdlib <version>", replacements applied).
func goModules(t *testing.T, bin string) map[string]bool {
	t.Helper()
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	goVersion := strings.TrimPrefix(strings.Fields(lines[0])[1], "go")
	want["stdlib "+goVersion] = true
	for i, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "dep" {
			if i+2 < len(lines) {
				if r := strings.Fields(lines[i+2]); len(r) >= 3 && r[0] == "=>" {
					want[r[1]+" "+r[2]] = true
					continue
				}
			}
			want[f[1]+" "+f[2]] = true
		}
	}
	return want
}
