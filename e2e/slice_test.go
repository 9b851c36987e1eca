package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/mod/semver"

	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
)

// osvRecord is the part of an OSV record the expectations below read,
// decoded here with encoding/json, independently of assayd's parser.
type osvRecord struct {
	ID        string   `json:"id"`
	Aliases   []string `json:"aliases"`
	Withdrawn string   `json:"withdrawn"`
	Affected  []struct {
		Package struct {
			Ecosystem string `json:"ecosystem"`
			Name      string `json:"name"`
		} `json:"package"`
		Ranges []struct {
			Type   string              `json:"type"`
			Events []map[string]string `json:"events"`
		} `json:"ranges"`
		Versions []string `json:"versions"`
	} `json:"affected"`
	DatabaseSpecific map[string]any `json:"database_specific"`
}

func readRecords(t testing.TB, dir string) []osvRecord {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no records in %s: %v", dir, err)
	}
	var out []osvRecord
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var r osvRecord
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, r)
	}
	return out
}

// debianWant lists "id package" of the findings the Debian:12 records
// predict for the shared image: a record derived from a newer .deb than the
// image's (database_specific.derived_from "...deb:...") is positive, one
// derived from the image's own changelog ("rootfs:...") is negative. Its
// source package reaches every binary package built from it, as
// dpkg-query listed them (the dpkg analyzer's testdata).
func debianWant(t testing.TB) map[string]bool {
	t.Helper()
	tsv, err := os.ReadFile("../analyzers/dpkg/testdata/debian-12-minbase/want.tsv")
	if err != nil {
		t.Fatal(err)
	}
	bySource := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(tsv)), "\n") {
		f := strings.Split(line, "\t")
		bySource[f[2]] = append(bySource[f[2]], f[0])
	}
	want := map[string]bool{}
	for _, r := range readRecords(t, "../../shared/testdata/osv/debian") {
		from, _ := r.DatabaseSpecific["derived_from"].(string)
		if !strings.Contains(from, ".deb:") {
			continue
		}
		for _, a := range r.Affected {
			for _, bin := range bySource[a.Package.Name] {
				want[r.ID+" "+bin] = true
			}
		}
	}
	return want
}

// goWant lists "id module" of the Go advisories affecting the modules a
// binary's build info names, decided with golang.org/x/mod/semver (not
// assayd's comparator) over the records' SEMVER ranges.
func goWant(t testing.TB, modules map[string]string) map[string]bool {
	t.Helper()
	want := map[string]bool{}
	for _, r := range readRecords(t, "../../shared/testdata/osv/go") {
		if r.Withdrawn != "" {
			continue
		}
		for _, a := range r.Affected {
			v, ok := modules[a.Package.Name]
			if !ok || a.Package.Ecosystem != "Go" {
				continue
			}
			for _, rg := range a.Ranges {
				if rg.Type != "SEMVER" {
					continue
				}
				in := false
				for _, ev := range rg.Events {
					if x, ok := ev["introduced"]; ok && (x == "0" || semver.Compare(v, "v"+x) >= 0) {
						in = true
					}
					if x, ok := ev["fixed"]; ok && semver.Compare(v, "v"+x) >= 0 {
						in = false
					}
					if x, ok := ev["last_affected"]; ok && semver.Compare(v, "v"+x) > 0 {
						in = false
					}
				}
				if in {
					want[r.ID+" "+a.Package.Name] = true
				}
			}
		}
	}
	return want
}

// findingSet lists "id package" of the report's findings, suppressed ones
// only when all is true.
func findingSet(r *report.Report, ecosystem string, all bool) map[string]bool {
	got := map[string]bool{}
	for _, f := range r.Findings {
		if (f.Suppressed != nil && !all) || (ecosystem != "" && f.Package.Ecosystem != ecosystem) {
			continue
		}
		got[f.ID+" "+f.Package.Name] = true
	}
	return got
}

func diffSets(t testing.TB, what string, got, want map[string]bool) {
	t.Helper()
	var missing, extra []string
	for k := range want {
		if !got[k] {
			missing = append(missing, k)
		}
	}
	for k := range got {
		if !want[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("%s: %d findings, want %d; missing %q; unexpected %q", what, len(got), len(want), missing, extra)
	}
}

// watcher runs `assay watch -o json --type report` and hands over each
// report it prints.
func watcher(t *testing.T, d *daemonProc) <-chan *report.Report {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "assay"), "--socket", d.Sock, "watch", "-o", "json", "--type", "report")
	cmd.Env = cleanEnv()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ch := make(chan *report.Report, 64)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			var ev scans.Event
			if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Report != nil {
				ch <- ev.Report
			}
		}
		close(ch)
	}()
	return ch
}

func waitReport(t *testing.T, ch <-chan *report.Report, digest string, timeout time.Duration) *report.Report {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case r, ok := <-ch:
			if !ok {
				t.Fatal("assay watch ended")
			}
			if r.Digest == digest {
				return r
			}
		case <-deadline:
			t.Fatalf("no report for %s on assay watch within %s", digest, timeout)
		}
	}
}

// buildGoProg builds the gobinary analyzer's test program, pinned to
// golang.org/x/text v0.3.7, and returns its path.
func buildGoProg(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "prog")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	build.Dir = "../analyzers/gobinary/testdata/prog"
	build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-buildvcs=false", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// buildVulnerableGo builds the test program (buildGoProg) and returns its
// path and `go version -m`'s modules (stdlib as v<go version>).
func buildVulnerableGo(t *testing.T) (string, map[string]string) {
	t.Helper()
	bin := buildGoProg(t)
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	mods := map[string]string{}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	mods["stdlib"] = "v" + strings.TrimPrefix(strings.Fields(lines[0])[1], "go")
	for i, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "dep" {
			if i+2 < len(lines) {
				if r := strings.Fields(lines[i+2]); len(r) >= 3 && r[0] == "=>" {
					mods[r[1]] = r[2]
					continue
				}
			}
			mods[f[1]] = f[2]
		}
	}
	return bin, mods
}

// vmHWM is the peak resident memory of pid, in bytes (0 if unknown).
func vmHWM(t testing.TB, pid int) int64 { return procStatusBytes(pid, "VmHWM") }

// procStatusBytes reads a "kB" field of /proc/<pid>/status, in bytes (0
// if unknown).
func procStatusBytes(pid int, field string) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			f := strings.Fields(line)
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n << 10
		}
	}
	return 0
}

// The first slice end to end: Debian's docker-registry on loopback notifies
// assayd's webhook of pushes; assayd (its own containerd, the sandboxed
// analyzers, the OSV data of ../shared/testdata/osv and four npm advisories
// imported with `assay db import`) scans each pushed image with no other
// action, and the reports read through `assay watch` and `assay report`
// hold exactly the findings the advisories predict.
func TestSliceEndToEnd(t *testing.T) {
	ctx := context.Background()
	hook := freePort(t)
	reg := dockerRegistry(t, "http://"+hook+"/")
	d := startDaemon(t, daemonOpts{args: []string{
		"--webhook.listen", hook,
		"--webhook.token", webhookToken,
		"--webhook.registries", reg + "=" + reg,
		"--plugins.dir", filepath.Join(binDir, "plugins"),
		"--plugins.enabled", "dpkg,gobinary,npm,python",
	}})

	start := time.Now()
	out, errOut, code := d.assay("db", "import", "../../shared/testdata/osv", "testdata/osv-npm")
	if code != 0 {
		t.Fatalf("assay db import: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("assay db import of ../shared/testdata/osv and the npm records: %s\n%s", time.Since(start).Round(time.Millisecond), out)
	out, errOut, code = d.assay("db", "status", "-o", "json")
	if code != 0 {
		t.Fatalf("assay db status: exit %d %s", code, errOut)
	}
	var info struct {
		Records    int            `json:"records"`
		Ecosystems map[string]int `json:"ecosystems"`
		SizeBytes  int64          `json:"size_bytes"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatal(err)
	}
	if info.Ecosystems["Debian:12"] != 195 || info.Ecosystems["npm"] != 4 || info.Ecosystems["Go"] == 0 || info.Ecosystems["PyPI"] == 0 {
		t.Fatalf("database after import: %+v", info)
	}
	t.Logf("database: %d records, %d bytes on disk", info.Records, info.SizeBytes)

	reports := watcher(t, d)

	// 1. The shared Debian image, pushed with skopeo.
	if out, err := exec.Command("skopeo", "copy", "--dest-tls-verify=false",
		"oci-archive:../../shared/testdata/images/debian-12-minbase.oci.tar",
		"docker://"+reg+"/library/debian:12").CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	digest := registryDigest(t, reg, "library/debian", "12")
	watched := waitReport(t, reports, digest, 2*time.Minute)
	if watched.Verdict != report.Unhealthy {
		t.Errorf("watched report verdict %s, want unhealthy", watched.Verdict)
	}
	out, errOut, code = d.assay("report", digest, "-o", "json")
	if code != 0 {
		t.Fatalf("assay report: exit %d %s", code, errOut)
	}
	var rep report.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	want := debianWant(t)
	if len(want) != 18 {
		t.Fatalf("the Debian records predict %d findings, the README says 18", len(want))
	}
	diffSets(t, "Debian image", findingSet(&rep, "", true), want)
	if rep.Verdict != report.Unhealthy || rep.Summary.Total() != 18 || len(rep.Recommendations) == 0 {
		t.Errorf("verdict %s, summary %+v, %d recommendations", rep.Verdict, rep.Summary, len(rep.Recommendations))
	}
	for _, f := range rep.Findings {
		if f.FixedVersion == "" || f.MatchedSource == nil || f.Severity == "" {
			t.Errorf("finding without fix, source or severity: %+v", f)
		}
	}
	// The table names the packages; --fail-on-unhealthy exits 3.
	out, _, code = d.assay("report", digest, "--fail-on-unhealthy")
	if code != 3 || !strings.Contains(out, "perl-base") || !strings.Contains(out, "Recommendations:") {
		t.Errorf("assay report --fail-on-unhealthy: exit %d\n%s", code, out)
	}
	for _, f := range []string{"sarif", "cyclonedx", "spdx"} {
		out, errOut, code := d.assay("report", digest, "-o", f)
		var doc map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &doc) != nil {
			t.Errorf("assay report -o %s: exit %d %s", f, code, errOut)
		}
	}
	// Cross-image queries.
	out, _, code = d.assay("vuln", "CVE-2026-109518", "-o", "json")
	// CVE-2026-109518 is fixed in apt 2.6.2: apt and libapt-pkg6.0 (source apt).
	if code != 0 || !strings.Contains(out, digest) || !strings.Contains(out, "libapt-pkg6.0") || !strings.Contains(out, "DEBCL-CVE-2026-109518") {
		t.Errorf("assay vuln CVE-2026-109518: exit %d\n%s", code, out)
	}
	// A negative record (fixed at the installed version) affects nothing.
	out, _, code = d.assay("vuln", "CVE-2023-47038", "-o", "json")
	if code != 0 || strings.Contains(out, digest) {
		t.Errorf("assay vuln CVE-2023-47038 (fixed in the image): exit %d\n%s", code, out)
	}
	out, _, code = d.assay("packages", "liblzma5", "--ecosystem", "Debian", "-o", "json")
	if code != 0 || !strings.Contains(out, digest) {
		t.Errorf("assay packages liblzma5: exit %d\n%s", code, out)
	}

	// With an ignore rule for every one of them (a scan request's policy),
	// the same image is healthy, the findings kept as suppressed.
	var ignore []map[string]string
	ids := map[string]bool{}
	for k := range want {
		ids[strings.Fields(k)[0]] = true
	}
	for id := range ids {
		ignore = append(ignore, map[string]string{"id": id, "reason": "e2e: accepted for the test"})
	}
	pol, _ := json.Marshal(map[string]any{"ignore": ignore})
	sc, _, err := d.Client.Submit(ctx, scans.Request{Image: reg + "/library/debian@" + digest, Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	d.waitStatus(sc.ID, scans.Done, 2*time.Minute)
	raw, err := d.Client.ScanReportJSON(ctx, digest, sc.ID)
	if err != nil {
		t.Fatal(err)
	}
	var ignored report.Report
	if err := json.Unmarshal(raw, &ignored); err != nil {
		t.Fatal(err)
	}
	if ignored.Verdict != report.Healthy || ignored.Summary.Total() != 0 || ignored.Summary.Suppressed != 18 || len(ignored.Recommendations) != 0 {
		t.Errorf("with every finding ignored: verdict %s, summary %+v, %d recommendations", ignored.Verdict, ignored.Summary, len(ignored.Recommendations))
	}
	// That report is kept beside the configured policy's, never in its
	// place: the digest's latest is still unhealthy.
	if latest, err := d.Client.Report(ctx, digest); err != nil || latest.Verdict != report.Unhealthy || latest.ScanID == sc.ID {
		t.Errorf("the digest's latest report after a request-policy scan: %v %v", latest, err)
	}

	// 2. A multi-layer image built here: the Debian base, an npm app, a Go
	// binary pinned to golang.org/x/text v0.3.7, Debian's Python packages,
	// and a layer whiting one of them out.
	prog, mods := buildVulnerableGo(t)
	img, err := mutate.AppendLayers(loadDebian(t),
		dirLayer(t, "../analyzers/npm/testdata/app", "app"),
		fileLayer(t, prog, "usr/local/bin/prog"),
		dirLayer(t, "../analyzers/python/testdata/debian", ""),
		whiteoutLayer(t, "usr/lib/python3/dist-packages/six-1.16.0.egg-info"),
	)
	if err != nil {
		t.Fatal(err)
	}
	multi := pushTo(t, reg, "demo/multi:1", img)
	mrep := waitReport(t, reports, multi, 3*time.Minute)
	diffSets(t, "multi-layer Debian", findingSet(mrep, "Debian:12", true), want)
	goW := goWant(t, mods)
	if !goW["GO-2022-1059 golang.org/x/text"] {
		t.Fatalf("the Go records do not name GO-2022-1059 for x/text %s: %v", mods["golang.org/x/text"], goW)
	}
	diffSets(t, "multi-layer Go", findingSet(mrep, "Go", true), goW)
	diffSets(t, "multi-layer npm", findingSet(mrep, "npm", true), map[string]bool{
		"GHSA-35jh-r3h4-6jhm lodash": true, "GHSA-29mw-wpgm-hmr9 lodash": true,
		"GHSA-vh95-rmgr-6w4m minimist": true, "GHSA-xvch-5gv4-984h minimist": true,
	})
	// Debian's own Python packages are matched through their dpkg owner
	// (match.os_owned_language_packages is false by default); six is gone.
	if n := len(findingSet(mrep, "PyPI", true)); n != 0 {
		t.Errorf("%d PyPI findings on Debian-owned Python packages", n)
	}
	for _, p := range mrep.Packages {
		if p.Name == "six" && p.Ecosystem == "PyPI" {
			t.Errorf("the whited-out six was inventoried: %+v", p)
		}
	}
	if mrep.Verdict != report.Unhealthy {
		t.Errorf("multi-layer verdict %s", mrep.Verdict)
	}
	t.Logf("multi-layer image: %d packages, summary %+v", len(mrep.Packages), mrep.Summary)

	t.Logf("assayd peak RSS (VmHWM) during the run: %.1f MiB", float64(vmHWM(t, d.cmd.Process.Pid))/(1<<20))
	assertNoLeftovers(t, d)
}

// pushTo writes img to the registry at addr (plain HTTP) and returns its
// digest.
func pushTo(tb testing.TB, addr, repoTag string, img v1.Image) string {
	tb.Helper()
	ref, err := name.ParseReference(addr+"/"+repoTag, name.Insecure)
	if err != nil {
		tb.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		tb.Fatalf("pushing %s: %v", ref, err)
	}
	dg, err := img.Digest()
	if err != nil {
		tb.Fatal(err)
	}
	return dg.String()
}
