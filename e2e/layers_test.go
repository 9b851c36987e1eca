package e2e

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
)

// regFile writes one regular file into a test layer.
func regFile(tw *tar.Writer, name string, mode int64, data []byte) {
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data))})
	tw.Write(data)
}

// layeredImage is the shared Debian image with layers that exercise the
// merge: a replaced file, an opaque directory, a hard link to a file of a
// lower layer, and a Go binary a dpkg package ships (status and .list).
func layeredImage(t *testing.T, goProg string) v1.Image {
	t.Helper()
	prog, err := os.ReadFile(goProg)
	if err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile("../analyzers/dpkg/testdata/debian-12-minbase/var/lib/dpkg/status")
	if err != nil {
		t.Fatal(err)
	}
	status = append(status, []byte("\nPackage: mytool\nStatus: install ok installed\nPriority: optional\nSection: devel\nInstalled-Size: 100\nMaintainer: Test <test@example.org>\nArchitecture: amd64\nVersion: 1.0-1\nDescription: a Go program packaged for Debian\n")...)
	l3 := tarLayer(t, func(tw *tar.Writer) {
		// A newer lodash replaces the npm layer's.
		regFile(tw, "app/node_modules/lodash/package.json", 0o644, []byte(`{"name":"lodash","version":"4.17.21"}`))
		regFile(tw, "opt/old/node_modules/left/package.json", 0o644, []byte(`{"name":"left","version":"1.0.0"}`))
		regFile(tw, "usr/bin/mytool", 0o755, prog)
		regFile(tw, "var/lib/dpkg/status", 0o644, status)
		regFile(tw, "var/lib/dpkg/info/mytool.list", 0o644, []byte("/.\n/usr\n/usr/bin\n/usr/bin/mytool\n"))
	})
	l4 := tarLayer(t, func(tw *tar.Writer) {
		// /opt/old is opaque: left goes, right stays.
		regFile(tw, "opt/old/.wh..wh..opq", 0o644, nil)
		regFile(tw, "opt/old/new/node_modules/right/package.json", 0o644, []byte(`{"name":"right","version":"2.0.0"}`))
		// A hard link to a file of the layer below.
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeLink, Name: "usr/local/bin/tool-link", Linkname: "usr/bin/mytool", Mode: 0o755})
	})
	img, err := mutate.AppendLayers(loadDebian(t), dirLayer(t, "../analyzers/npm/testdata/app", "app"), l3, l4)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestLayerMerge scans an image whose layers replace, hide, link and own
// each other's files, as the layer path merges them on the host.
func TestLayerMerge(t *testing.T) {
	reg := newRegistry(t)
	ref, digest := reg.pushImage(t, "demo/layers:1", layeredImage(t, buildGoProg(t)))
	d := startDaemon(t, daemonOpts{args: []string{
		"--plugins.dir", filepath.Join(binDir, "plugins"),
		"--plugins.enabled", "builtin",
	}})
	importGo := false
	if _, err := os.Stat("../../shared/testdata/osv/go"); err == nil {
		if out, errOut, code := d.assay("db", "import", "../../shared/testdata/osv/go"); code != 0 {
			t.Fatalf("assay db import: exit %d\n%s%s", code, out, errOut)
		}
		importGo = true
	}
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
	npm := map[string]string{}
	goAt := map[string]string{} // location → owner
	debian := 0
	for _, p := range rep.Packages {
		switch p.Ecosystem {
		case "npm":
			if old, dup := npm[p.Name]; dup {
				t.Errorf("npm %s twice: %s and %s", p.Name, old, p.Version)
			}
			npm[p.Name] = p.Version
		case "Go":
			goAt[p.Locations[0]] = p.Owner
		case "Debian:12":
			debian++
		}
	}
	if npm["lodash"] != "4.17.21" {
		t.Errorf("lodash %q: the higher layer's 4.17.21 replaces 4.17.20", npm["lodash"])
	}
	if _, ok := npm["left"]; ok {
		t.Error("left, under a directory made opaque above it, was reported")
	}
	if npm["right"] != "2.0.0" {
		t.Errorf("right %q, want 2.0.0", npm["right"])
	}
	if debian != 89 {
		t.Errorf("%d Debian packages, want the image's 88 and mytool", debian)
	}
	for _, loc := range []string{"/usr/bin/mytool", "/usr/local/bin/tool-link"} {
		if owner, ok := goAt[loc]; !ok || owner != "mytool" {
			t.Errorf("Go packages at %s: found %v, owner %q; want owner mytool (%v)", loc, ok, owner, goAt)
		}
	}
	if !importGo {
		t.Log("no ../shared: the Go findings part is skipped")
		return
	}
	goFindings := func(r *report.Report) int {
		n := 0
		for _, f := range r.Findings {
			if f.Package.Ecosystem == "Go" {
				n++
			}
		}
		return n
	}
	if n := goFindings(rep); n != 0 {
		t.Errorf("%d Go findings for a Go binary Debian's mytool ships; OS-owned packages are matched through the OS package", n)
	}
	// The control: matching OS-owned language packages finds them.
	d.kill()
	d.args = append(d.args, "--match.os_owned_language_packages")
	d.start()
	d.waitStatus(d.submit(ref).ID, scans.Done, 3*time.Minute)
	rep, err = d.Client.Report(context.Background(), digest)
	if err != nil {
		t.Fatal(err)
	}
	if n := goFindings(rep); n == 0 {
		t.Error("no Go findings even with match.os_owned_language_packages: the test proves nothing")
	}
}

// packagesOf is a report's packages, sorted, for comparing reports.
func packagesOf(t *testing.T, r *report.Report) string {
	t.Helper()
	var lines []string
	for _, p := range r.Packages {
		b, _ := json.Marshal(p)
		lines = append(lines, string(b))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

var layersAnalyzedRE = regexp.MustCompile(`msg="layers analyzed" plugin=builtin layers=(\d+) cached=(\d+)`)

// lastLayersAnalyzed is the last "layers analyzed" log line's counts.
func (d *daemonProc) lastLayersAnalyzed(t *testing.T) (read, cached string) {
	t.Helper()
	m := layersAnalyzedRE.FindAllStringSubmatch(d.log.String(), -1)
	if len(m) == 0 {
		t.Fatal("no layers analyzed line in the log")
	}
	return m[len(m)-1][1], m[len(m)-1][2]
}

// TestLayerCache: a layer seen before is neither fetched nor read again;
// an image sharing a base reads only its new layer; a changed plugin
// binary misses.
func TestLayerCache(t *testing.T) {
	base, err := mutate.AppendLayers(loadDebian(t), dirLayer(t, "../analyzers/npm/testdata/app", "app"), fileLayer(t, buildGoProg(t), "usr/local/bin/prog"))
	if err != nil {
		t.Fatal(err)
	}
	reg := newRegistry(t)
	ref1, dig1 := reg.pushImage(t, "demo/cache:1", base)
	// Same layers, a new manifest digest (a changed config label).
	relabelled, err := mutate.Config(base, v1.Config{Labels: map[string]string{"build": "2"}})
	if err != nil {
		t.Fatal(err)
	}
	ref2, dig2 := reg.pushImage(t, "demo/cache:2", relabelled)
	// The same base and one small new layer.
	grown, err := mutate.AppendLayers(base, tarLayer(t, func(tw *tar.Writer) {
		regFile(tw, "srv/node_modules/minimist/package.json", 0o644, []byte(`{"name":"minimist","version":"1.2.0"}`))
	}))
	if err != nil {
		t.Fatal(err)
	}
	ref3, dig3 := reg.pushImage(t, "demo/cache:3", grown)

	plugins := filepath.Join(binDir, "plugins")
	d := startDaemon(t, daemonOpts{args: []string{"--plugins.dir", plugins, "--plugins.enabled", "builtin"}})
	scanOf := func(ref, digest string) *report.Report {
		t.Helper()
		sc := d.waitStatus(d.submit(ref).ID, scans.Done, 3*time.Minute)
		rep, err := d.Client.Report(context.Background(), digest)
		if err != nil || rep.ScanID != sc.ID {
			t.Fatalf("report of %s: %v (scan %s)", ref, err, sc.ID)
		}
		return rep
	}
	before := reg.blobs()
	rep1 := scanOf(ref1, dig1)
	cold := reg.blobs() - before
	if n, c := d.lastLayersAnalyzed(t); n != "3" || c != "0" {
		t.Errorf("cold scan read %s layers, %s cached; want 3, 0", n, c)
	}
	if cold != 4 {
		t.Errorf("cold scan: %d blob GETs, want 4 (config and 3 layers)", cold)
	}

	before = reg.blobs()
	rep2 := scanOf(ref2, dig2)
	if got := reg.blobs() - before; got != 1 {
		t.Errorf("warm scan: %d blob GETs, want 1 (the new config only, no layer)", got)
	}
	if n, c := d.lastLayersAnalyzed(t); n != "0" || c != "3" {
		t.Errorf("warm scan read %s layers, %s cached; want 0, 3", n, c)
	}
	if a, b := packagesOf(t, rep1), packagesOf(t, rep2); a != b {
		t.Errorf("the cached report differs:\n%s\n---\n%s", a, b)
	}

	before = reg.blobs()
	rep3 := scanOf(ref3, dig3)
	if !strings.Contains(packagesOf(t, rep3), `"name":"minimist"`) {
		t.Error("the new layer's package is missing")
	}
	if got := reg.blobs() - before; got != 2 {
		t.Errorf("one new layer: %d blob GETs, want 2 (config and the new layer)", got)
	}
	if n, c := d.lastLayersAnalyzed(t); n != "1" || c != "3" {
		t.Errorf("one new layer: read %s layers, %s cached; want 1, 3", n, c)
	}

	// A changed plugin binary (same code, other bytes) misses every entry.
	changed := t.TempDir()
	bin, err := os.ReadFile(filepath.Join(plugins, "assay-builtin"))
	if err != nil {
		t.Fatal(err)
	}
	bin = append(bin, []byte("\x00changed")...)
	os.WriteFile(filepath.Join(changed, "assay-builtin"), bin, 0o755)
	var man map[string]any
	raw, _ := os.ReadFile(filepath.Join(plugins, "builtin.plugin.json"))
	json.Unmarshal(raw, &man)
	sum := sha256.Sum256(bin)
	man["sha256"] = hex.EncodeToString(sum[:])
	raw, _ = json.Marshal(man)
	os.WriteFile(filepath.Join(changed, "builtin.plugin.json"), raw, 0o644)
	d.kill()
	d.args = []string{"--plugins.dir", changed, "--plugins.enabled", "builtin"}
	d.start()
	rep4 := scanOf(ref2, dig2)
	if n, c := d.lastLayersAnalyzed(t); n != "3" || c != "0" {
		t.Errorf("after the binary changed: read %s layers, %s cached; want 3, 0", n, c)
	}
	if a, b := packagesOf(t, rep1), packagesOf(t, rep4); a != b {
		t.Errorf("the report after the binary changed differs:\n%s\n---\n%s", a, b)
	}
	// The cache's figures are in /v1/metrics: this daemon missed three
	// layers' entries (two extractors' and the layer's own, at least).
	if v := metric(t, d, "assay_layer_cache_misses_total"); v < 3 {
		t.Errorf("assay_layer_cache_misses_total = %v", v)
	}
	if v := metric(t, d, "assay_layer_cache_entries"); v < 3 {
		t.Errorf("assay_layer_cache_entries = %v", v)
	}
	metric(t, d, "assay_layer_cache_hits_total")
	metric(t, d, "assay_layer_cache_bytes")
	metric(t, d, "assay_layer_cache_evictions_total")

	// assay cache status and prune.
	out, errOut, code := d.assay("cache", "status", "-o", "json")
	var st struct {
		Entries int   `json:"entries"`
		Bytes   int64 `json:"bytes"`
		Misses  int64 `json:"misses"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Entries < 3 || st.Bytes <= 0 || st.Misses < 3 {
		t.Errorf("assay cache status: exit %d %s %s", code, out, errOut)
	}
	out, errOut, code = d.assay("cache", "prune")
	if code != 0 || !strings.Contains(out, "Pruned:") || !strings.Contains(out, "Entries:") {
		t.Errorf("assay cache prune: exit %d %s %s", code, out, errOut)
	}
	// --all empties it: the next scan reads every layer again.
	out, errOut, code = d.assay("cache", "prune", "--all", "-o", "json")
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Entries != 0 {
		t.Errorf("assay cache prune --all: exit %d %s %s", code, out, errOut)
	}
	scanOf(ref1, dig1)
	if n, c := d.lastLayersAnalyzed(t); n != "3" || c != "0" {
		t.Errorf("after prune --all: read %s layers, %s cached; want 3, 0", n, c)
	}
}

// TestLayerCacheSurvivesKill kills assayd with SIGKILL at points spread
// over the analysis of a cold scan, up to and past the moment its layers'
// results are stored (in one transaction), and checks that whatever the
// cache kept gives, after the restart, the same report as a clean scan:
// no entry is half-written and trusted.
func TestLayerCacheSurvivesKill(t *testing.T) {
	base, err := mutate.AppendLayers(loadDebian(t), dirLayer(t, "../analyzers/npm/testdata/app", "app"), fileLayer(t, buildGoProg(t), "usr/local/bin/prog"))
	if err != nil {
		t.Fatal(err)
	}
	reg := newRegistry(t)
	d := startDaemon(t, daemonOpts{args: []string{"--plugins.dir", filepath.Join(binDir, "plugins"), "--plugins.enabled", "builtin"}})
	cacheFile := filepath.Join(d.State, "layers.db")
	// A scan, timed from "analyzing" to "matching": the window in which
	// the plugin streams the layers and their results are stored.
	ref, digest := reg.pushImage(t, "demo/killcache:0", base)
	sc := d.submit(ref)
	analyzing := waitScanStatus(t, d, sc.ID, scans.Analyzing)
	matching := waitScanStatus(t, d, sc.ID, scans.Matching)
	window := matching.Sub(analyzing)
	d.waitStatus(sc.ID, scans.Done, 3*time.Minute)
	want, err := d.Client.Report(context.Background(), digest)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("analysis window of a cold scan: %s", window)
	var before, after int // restarts that found nothing cached, everything
	// frac < 0: kill as soon as the results are stored.
	for i, frac := range []float64{0, 0.3, 0.6, 0.9, -1} {
		// A clean cache, a new manifest digest over the same layers.
		d.kill()
		if err := os.Remove(cacheFile); err != nil {
			t.Fatal(err)
		}
		d.start()
		img, err := mutate.Config(base, v1.Config{Labels: map[string]string{"run": strings.Repeat("x", i+1)}})
		if err != nil {
			t.Fatal(err)
		}
		ref, digest := reg.pushImage(t, "demo/killcache:1", img)
		from := len(d.log.String())
		sc := d.submit(ref)
		waitScanStatus(t, d, sc.ID, scans.Analyzing)
		if frac < 0 {
			waitFor(t, 3*time.Minute, "layer results stored", func() bool {
				return strings.Contains(d.log.String()[from:], `msg="layer results stored"`)
			})
		} else {
			time.Sleep(time.Duration(frac * float64(window)))
		}
		d.kill()
		d.start()
		done := d.waitStatus(sc.ID, scans.Done, 3*time.Minute)
		got, err := d.Client.Report(context.Background(), digest)
		if err != nil {
			t.Fatal(err)
		}
		read, cached := d.lastLayersAnalyzed(t)
		t.Logf("killed at %.0f%% of the window: attempt %d read %s layers, %s from the cache", frac*100, done.Attempts, read, cached)
		if done.Attempts == 2 && cached == "0" {
			before++
		}
		if done.Attempts == 2 && read == "0" {
			after++
		}
		if a, b := packagesOf(t, want), packagesOf(t, got); a != b {
			t.Fatalf("killed at %.0f%%: the report after the restart differs from a clean scan's:\n%s\n---\n%s", frac*100, a, b)
		}
	}
	if before == 0 || after == 0 {
		t.Errorf("%d kills before the results were stored, %d after: the test needs both", before, after)
	}
}

// waitScanStatus polls a scan until it reaches status (or a later one,
// which fails the test) and returns when it was seen.
func waitScanStatus(t *testing.T, d *daemonProc, id string, want scans.Status) time.Time {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		sc, err := d.Client.Scan(context.Background(), id)
		if err == nil && sc.Status == want {
			return time.Now()
		}
		if err == nil && sc.Status.Terminal() {
			t.Fatalf("scan %s: %s before %s", id, sc.Status, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("scan %s never %s", id, want)
	return time.Time{}
}

// emptyFilesLayer is a layer of n empty files: tiny compressed, a tar
// entry each.
func emptyFilesLayer(t *testing.T, dir string, n int) v1.Layer {
	return tarLayer(t, func(tw *tar.Writer) {
		for i := 0; i < n; i++ {
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("%s/%07d", dir, i), Mode: 0o644})
		}
	})
}

// TestManyEmptyFilesRefused: an image of empty files costs next to no
// bytes but an inode (a tar entry) each; the entry limit over the whole
// image refuses it, though each layer is under it; a second scan, its
// lower layers cached, is refused too.
func TestManyEmptyFilesRefused(t *testing.T) {
	img, err := mutate.AppendLayers(loadDebian(t), emptyFilesLayer(t, "a", 30_000), emptyFilesLayer(t, "b", 30_000))
	if err != nil {
		t.Fatal(err)
	}
	reg := newRegistry(t)
	ref, digest := reg.pushImage(t, "demo/empty:1", img)
	d := startDaemon(t, daemonOpts{args: []string{"--plugins.dir", filepath.Join(binDir, "plugins"), "--plugins.enabled", "builtin", "--limits.max_entries", "50000"}})
	for i := range 2 {
		sc := d.waitStatus(d.submit(ref).ID, scans.Failed, 3*time.Minute)
		if !strings.Contains(sc.Error, "image exceeds a limit") || !strings.Contains(sc.Error, "limits.max_entries 50000") {
			t.Errorf("scan %d: error %q, want the entry limit named", i+1, sc.Error)
		}
		t.Logf("scan %d refused: %s", i+1, sc.Error)
	}
	if rep, err := d.Client.Report(context.Background(), digest); err == nil {
		t.Errorf("a refused image has a report: %+v", rep.Analyzers)
	}
	// The same layers under the default limit (2,000,000) scan.
	d.kill()
	d.args = d.args[:len(d.args)-2]
	d.start()
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
}

// On its defaults (no plugins.* setting) assayd finds the plugins next to
// its binary, enables every one, says so in health, and scans with them.
func TestDefaultsEnableEveryPlugin(t *testing.T) {
	reg := newRegistry(t)
	ref, digest := reg.pushImage(t, "library/debian:12", loadDebian(t))
	d := startDaemon(t, daemonOpts{defaults: true})
	out, errOut, code := d.assay("health", "-o", "json")
	var h struct {
		Analyzers []struct {
			Name       string   `json:"name"`
			Extractors []string `json:"extractors"`
		} `json:"analyzers"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &h) != nil {
		t.Fatalf("assay health: exit %d %s %s", code, out, errOut)
	}
	var builtin []string
	for _, a := range h.Analyzers {
		if a.Name == "builtin" {
			builtin = a.Extractors
		}
	}
	for _, want := range []string{"dpkg", "npm", "gobinary", "os-release"} {
		if !slices.Contains(builtin, want) {
			t.Errorf("health's analyzers %+v: builtin lacks %s", h.Analyzers, want)
		}
	}
	if !strings.Contains(d.log.String(), "every plugin found") {
		t.Error("assayd did not log which plugins it enabled")
	}
	d.waitStatus(d.submit(ref).ID, scans.Done, 3*time.Minute)
	rep, err := d.Client.Report(context.Background(), digest)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range rep.Packages {
		if p.Ecosystem == "Debian:12" {
			n++
		}
	}
	if n != 88 {
		t.Errorf("%d Debian packages on the defaults, want 88", n)
	}
}

// limits.max_file_bytes overrides an extractor's own file cap: a Go
// binary larger than the cap set for gobinary is not read, and the report
// says so.
func TestExtractorFileCapOverride(t *testing.T) {
	img := imageWithFile(t, buildGoProg(t), "usr/local/bin/prog")
	reg := newRegistry(t)
	ref, digest := reg.pushImage(t, "demo/cap:1", img)
	d := startDaemon(t, daemonOpts{args: []string{"--plugins.dir", filepath.Join(binDir, "plugins"), "--plugins.enabled", "gobinary", "--limits.max_file_bytes", "gobinary=64KiB"}})
	d.waitStatus(d.submit(ref).ID, scans.Done, 3*time.Minute)
	rep, err := d.Client.Report(context.Background(), digest)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Packages {
		if p.Ecosystem == "Go" {
			t.Errorf("a Go package from a binary over the 64 KiB cap: %+v", p)
		}
	}
	warned := false
	for _, w := range rep.Warnings {
		if w.Analyzer == "gobinary" && w.Path == "/usr/local/bin/prog" {
			warned = true
		}
	}
	if !warned {
		t.Errorf("no gobinary warning about the binary left unread: %v", report.WarningStrings(rep.Warnings))
	}
}
