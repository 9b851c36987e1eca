package e2e

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
)

// osvMirror serves zips in the public layout, /<Ecosystem>/all.zip, built
// from ../shared/testdata/osv/ on demand, and counts the requests.
type osvMirror struct {
	URL  string
	mu   sync.Mutex
	gets map[string]int
}

func newOSVMirror(t *testing.T) *osvMirror {
	m := &osvMirror{gets: map[string]int{}}
	dirs := map[string]string{"Debian": "debian", "Go": "go", "PyPI": "pypi"}
	var zips sync.Map
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		eco, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		m.mu.Lock()
		m.gets[eco]++
		m.mu.Unlock()
		dir, ok := dirs[eco]
		if !ok || rest != "all.zip" {
			http.NotFound(w, r)
			return
		}
		z, ok := zips.Load(eco)
		if !ok {
			z, _ = zips.LoadOrStore(eco, osvZip(t, "../../shared/testdata/osv/"+dir, nil))
		}
		w.Header().Set("Content-Type", "application/zip")
		w.Write(z.([]byte))
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	m.URL = "http://" + ln.Addr().String()
	return m
}

func (m *osvMirror) count(eco string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gets[eco]
}

// The default kind of source, {ecosystem} in OSV's public layout, served
// on loopback: a Debian image makes assayd fetch the Debian archive, and
// only it, and the image is matched again once it is there.
func TestVulnDataPerEcosystem(t *testing.T) {
	ctx := context.Background()
	mirror := newOSVMirror(t)
	reg := newRegistry(t)
	ref, digest := reg.pushImage(t, "library/debian:12", loadDebian(t))
	d := startDaemon(t, daemonOpts{args: []string{
		"--plugins.dir", filepath.Join(binDir, "plugins"), "--plugins.enabled", "dpkg",
		"--vulndb.sources", mirror.URL + "/{ecosystem}/all.zip",
	}})
	time.Sleep(500 * time.Millisecond)
	if n := mirror.count("Debian") + mirror.count("Go") + mirror.count("PyPI"); n != 0 {
		t.Fatalf("%d archives fetched before any image needed one", n)
	}
	sc := d.submit(ref)
	d.waitStatus(sc.ID, scans.Done, 2*time.Minute)
	var rep *report.Report
	waitFor(t, time.Minute, "the image matched against the fetched Debian archive", func() bool {
		var err error
		rep, err = d.Client.Report(ctx, digest)
		return err == nil && rep.Verdict == report.Unhealthy
	})
	if got := findingSet(rep, "Debian:12", true); len(got) != 18 {
		t.Errorf("%d Debian findings, want 18", len(got))
	}
	if mirror.count("Debian") != 1 || mirror.count("Go")+mirror.count("PyPI") != 0 {
		t.Errorf("fetches: Debian %d, Go %d, PyPI %d; want the Debian archive once and nothing else",
			mirror.count("Debian"), mirror.count("Go"), mirror.count("PyPI"))
	}
	raw, err := d.Client.DBInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Sources []struct {
			Name    string `json:"name"`
			Records int    `json:"records"`
		} `json:"sources"`
	}
	if err := json.Unmarshal(raw, &info); err != nil || len(info.Sources) != 1 || info.Sources[0].Name != mirror.URL+"/Debian/all.zip" || info.Sources[0].Records == 0 {
		t.Errorf("database sources: %s", raw)
	}
	out, _, _ := d.assay("db", "status")
	if !strings.Contains(out, mirror.URL+"/Debian/all.zip") {
		t.Errorf("assay db status does not name the fetched archive:\n%s", out)
	}

	// A restart fetches it again at start (the image was seen), nothing
	// more.
	d.kill()
	d.restart()
	waitFor(t, 30*time.Second, "the refetch at start", func() bool { return mirror.count("Debian") == 2 })
	if mirror.count("Go")+mirror.count("PyPI") != 0 {
		t.Error("a restart fetched archives no image needs")
	}
}

// No network: the source cannot be reached. The scan still stores a
// report, incomplete, saying why; the daemon keeps serving; the source is
// retried with backoff, not in a storm.
func TestVulnDataUnreachable(t *testing.T) {
	ctx := context.Background()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close() // nothing listens there now
	reg := newRegistry(t)
	ref, digest := reg.pushImage(t, "library/debian:12", loadDebian(t))
	d := startDaemon(t, daemonOpts{args: []string{
		"--plugins.dir", filepath.Join(binDir, "plugins"), "--plugins.enabled", "dpkg",
		"--vulndb.sources", "http://" + dead + "/{ecosystem}/all.zip",
	}})
	sc := d.submit(ref)
	d.waitStatus(sc.ID, scans.Done, 2*time.Minute)
	// The first report may say the data is not fetched yet; once the fetch
	// failed, the image is matched again and its report says why.
	var rep *report.Report
	var why string
	waitFor(t, 30*time.Second, "a report saying why the data is unavailable", func() bool {
		var err error
		if rep, err = d.Client.Report(ctx, digest); err != nil {
			return false
		}
		for _, w := range rep.Warnings {
			if strings.HasPrefix(w.Message, "vulnerability data unavailable: ") && strings.Contains(w.Message, "connection refused") {
				why = w.Message
			}
		}
		return why != ""
	})
	if rep.Verdict != report.Incomplete {
		t.Fatalf("verdict %s, warnings %+v", rep.Verdict, rep.Warnings)
	}
	t.Logf("the report says: %s", why)
	time.Sleep(2 * time.Second)
	if _, err := d.Client.Health(ctx); err != nil {
		t.Fatalf("the daemon stopped serving: %v", err)
	}
	if n := strings.Count(d.log.String(), "vulndb: update failed"); n < 1 || n > 3 {
		t.Errorf("%d failed fetches logged in a few seconds, want 1 to 3 (retried after 1m, then doubling)", n)
	}
}
