package e2e

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
)

// osvZip builds an OSV archive (the public all.zip layout) of the records
// in dir, leaving out the ids in skip.
func osvZip(t *testing.T, dir string, skip map[string]bool) []byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		if skip[strings.TrimSuffix(filepath.Base(f), ".json")] {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		w, err := zw.Create(filepath.Base(f))
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A scheduled source served over loopback HTTP fills the database; an
// offline import then adds an advisory, and the stored inventory is
// re-matched without a new pull: a new report (trigger rematch) and a
// report event, with the added findings.
func TestRematchOnDatabaseChange(t *testing.T) {
	ctx := context.Background()
	const held = "DEBCL-CVE-2026-109518" // apt 2.6.2: apt and libapt-pkg6.0
	archive := osvZip(t, "../../shared/testdata/osv/debian", map[string]bool{held: true})
	var (
		mu       sync.Mutex
		requests []string
	)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests = append(requests, r.Header.Get("If-None-Match"))
		mu.Unlock()
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Content-Type", "application/zip")
		w.Write(archive)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	source := "http://" + ln.Addr().String() + "/Debian/all.zip"

	reg := newRegistry(t)
	ref, digest := reg.pushImage(t, "library/debian:12", loadDebian(t))
	d := startDaemon(t, daemonOpts{args: []string{
		"--plugins.dir", filepath.Join(binDir, "plugins"),
		"--plugins.enabled", "dpkg",
		"--vulndb.sources", source,
	}})
	var info struct {
		Records int `json:"records"`
		Sources []struct {
			Name        string    `json:"name"`
			Records     int       `json:"records"`
			ETag        string    `json:"etag"`
			LastSuccess time.Time `json:"last_success"`
		} `json:"sources"`
	}
	waitFor(t, 30*time.Second, "the scheduled source in the database", func() bool {
		raw, err := d.Client.DBInfo(ctx)
		return err == nil && json.Unmarshal(raw, &info) == nil && info.Records == 194
	})
	if len(info.Sources) != 1 || info.Sources[0].ETag != `"v1"` || info.Sources[0].LastSuccess.IsZero() || info.Sources[0].Records != 194 {
		t.Fatalf("GET /v1/db sources: %+v", info.Sources)
	}

	sc := d.submit(ref)
	d.waitStatus(sc.ID, scans.Done, 2*time.Minute)
	first, err := d.Client.Report(ctx, digest)
	if err != nil {
		t.Fatal(err)
	}
	if first.Verdict != report.Unhealthy || first.Summary.Total() != 16 {
		t.Fatalf("without %s: verdict %s, summary %+v (want 16 findings)", held, first.Verdict, first.Summary)
	}

	events := watcher(t, d)
	time.Sleep(300 * time.Millisecond) // let the watch subscribe
	dir := t.TempDir()
	b, err := os.ReadFile("../../shared/testdata/osv/debian/" + held + ".json")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, held+".json"), b, 0o644)
	if out, errOut, code := d.assay("db", "import", dir); code != 0 {
		t.Fatalf("assay db import: exit %d %s %s", code, out, errOut)
	}
	re := waitReport(t, events, digest, time.Minute)
	if re.Trigger != "rematch" || re.Summary.Total() != 18 || re.ScanID != sc.ID {
		t.Fatalf("re-matched report: trigger %q, summary %+v, scan %s", re.Trigger, re.Summary, re.ScanID)
	}
	got := findingSet(re, "", true)
	if !got[held+" apt"] || !got[held+" libapt-pkg6.0"] {
		t.Errorf("the re-matched report lacks %s on apt and libapt-pkg6.0: %v", held, got)
	}
	hist, err := d.Client.ReportHistory(ctx, digest)
	if err != nil || len(hist) != 2 {
		t.Fatalf("history: %d reports, %v", len(hist), err)
	}
	// Re-matching pulled nothing: still one scan, one manifest fetch.
	if list, _, _ := d.Client.Scans(ctx, scans.Filter{}); len(list) != 1 {
		t.Errorf("%d scans after re-matching, want 1", len(list))
	}
	if n := reg.manifestGets("library/debian"); n != 1 {
		t.Errorf("%d manifest GETs, want 1 (re-matching must not pull)", n)
	}
	// An import that changes nothing for this image makes no new report.
	if out, errOut, code := d.assay("db", "import", "testdata/osv-npm"); code != 0 {
		t.Fatalf("assay db import: exit %d %s %s", code, out, errOut)
	}
	time.Sleep(2 * time.Second)
	if hist, _ := d.Client.ReportHistory(ctx, digest); len(hist) != 2 {
		t.Errorf("%d reports after an unrelated import, want 2", len(hist))
	}
}
