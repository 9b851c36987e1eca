package vulndb

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assayhq/assay/daemon/errdefs"
)

// osvServer serves one archive at a time, like the public bucket, and
// records the validators each request carried.
type osvServer struct {
	mu       sync.Mutex
	body     []byte
	etag     string
	lastMod  string
	status   int  // answer this instead, when set
	truncate bool // declare the full length, send half
	chunked  bool // no Content-Length
	requests []http.Header
}

func (s *osvServer) set(body []byte, etag, lastMod string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body, s.etag, s.lastMod = body, etag, lastMod
	s.status, s.truncate, s.chunked = 0, false, false
}

func (s *osvServer) last() http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[len(s.requests)-1]
}

func (s *osvServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.Header.Clone())
	body, etag, lastMod, status, truncate, chunked := s.body, s.etag, s.lastMod, s.status, s.truncate, s.chunked
	s.mu.Unlock()
	if status != 0 {
		http.Error(w, "unavailable", status)
		return
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		if inm == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	} else if ims := r.Header.Get("If-Modified-Since"); ims != "" && ims == lastMod {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("ETag", etag)
	w.Header().Set("Last-Modified", lastMod)
	w.Header().Set("Content-Type", "application/zip")
	switch {
	case truncate:
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body[:len(body)/2])
	case chunked:
		for off := 0; off < len(body); off += 1 << 16 {
			w.Write(body[off:min(off+1<<16, len(body))])
			w.(http.Flusher).Flush()
		}
	default:
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}
}

func TestUpdaterHTTP(t *testing.T) {
	ctx := context.Background()
	want := loadIndependent(t)
	debFiles := dirFiles(t, "debian")
	debZip := buildZip(t, debFiles, nil)
	limit := int64(len(debZip) + 1<<20)
	db := newDB(t, Options{MaxArchiveBytes: limit})

	srv := &osvServer{}
	ts := httptest.NewServer(srv) // 127.0.0.1
	defer ts.Close()
	url := ts.URL + "/Debian/all.zip"
	changes := 0
	u := &Updater{DB: db, Sources: []string{url}, Client: ts.Client(), Logger: quiet,
		OnChange: func(context.Context) { changes++ }}

	source := func() SourceInfo {
		t.Helper()
		return sourcesByName(t, db)[url]
	}
	perl := func() []string {
		t.Helper()
		got, err := db.Query(ctx, "Debian:12", "perl")
		if err != nil {
			t.Fatal(err)
		}
		return idsOf(got)
	}

	// First fetch: 200, applied.
	const lm1 = "Mon, 01 Jan 2024 00:00:00 GMT"
	srv.set(debZip, `"v1"`, lm1)
	if err := u.UpdateOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if h := srv.last(); h.Get("If-None-Match") != "" || h.Get("If-Modified-Since") != "" {
		t.Errorf("first request carried validators: %v", h)
	}
	s := source()
	if s.Records != 195 || s.ETag != `"v1"` || s.LastModified != lm1 || s.Kind != KindScheduled || s.LastError != "" || changes != 1 {
		t.Fatalf("after first fetch: %+v, %d changes", s, changes)
	}
	if info, _ := db.Info(ctx); info.Ecosystems["Debian:12"] != want.ecosystems["Debian:12"] {
		t.Errorf("Debian:12 records %d, want %d", info.Ecosystems["Debian:12"], want.ecosystems["Debian:12"])
	}

	// Second fetch: conditional, 304, nothing rewritten.
	if err := u.UpdateOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if h := srv.last(); h.Get("If-None-Match") != `"v1"` || h.Get("If-Modified-Since") != lm1 {
		t.Errorf("second request validators: %v", h)
	}
	s2 := source()
	if s2.Records != 195 || s2.LastChange != s.LastChange || s2.LastAttempt.Before(s.LastAttempt) || s2.LastSuccess.IsZero() || changes != 1 {
		t.Errorf("after 304: %+v (before %+v), %d changes", s2, s, changes)
	}
	// The same archive under another (no) ETag: fetched again, nothing
	// changes, OnChange is not called.
	srv.set(debZip, "", lm1)
	res, err := u.Update(ctx, url, false)
	if err != nil || res.NotModified || res.Changed() || res.Unchanged != 195 || changes != 1 {
		t.Errorf("same content again: %+v, %v, %d changes", res, err, changes)
	}
	// With only Last-Modified known, If-Modified-Since alone gets a 304.
	res, err = u.Update(ctx, url, false)
	if h := srv.last(); err != nil || !res.NotModified || h.Get("If-None-Match") != "" || h.Get("If-Modified-Since") != lm1 {
		t.Errorf("If-Modified-Since: %+v, %v, request %v", res, err, h)
	}

	// A new version without DEBCL-CVE-2023-47038 (perl) replaces the set.
	const lm2 = "Tue, 02 Jan 2024 00:00:00 GMT"
	srv.set(buildZip(t, without(debFiles, "DEBCL-CVE-2023-47038"), nil), `"v2"`, lm2)
	if err := u.UpdateOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Lookup(ctx, "DEBCL-CVE-2023-47038"); len(got) != 0 || changes != 2 {
		t.Errorf("removed record still there: %v, %d changes", idsOf(got), changes)
	}
	good := source()
	goodInfo, _ := db.Info(ctx)
	perl20 := perl()
	if good.Records != 194 || len(perl20) != 20 || slices.Contains(perl20, "DEBCL-CVE-2023-47038") {
		t.Fatalf("after replacement: %+v, gin %v", good, perl())
	}

	// Every bad version leaves the good data and says why.
	garbage := make([]byte, 1<<20)
	rand.New(rand.NewSource(1)).Read(garbage)
	bad := map[string][]byte{}
	for i := range 3 { // 3 of 198: more than 1%
		bad["bad-"+strconv.Itoa(i)+".json"] = []byte(`{"id": "BAD-` + strconv.Itoa(i) + `", "affected": [`)
	}
	failures := []struct {
		name  string
		setup func()
		want  string
	}{
		{"corrupt zip", func() { srv.set(garbage, `"c"`, lm2) }, "not a valid zip"},
		{"truncated body", func() {
			srv.set(debZip, `"t"`, lm2)
			srv.mu.Lock()
			srv.truncate = true
			srv.mu.Unlock()
		}, "download"},
		{"invalid JSON", func() { srv.set(buildZip(t, debFiles, bad), `"j"`, lm2) }, "invalid OSV records"},
		{"empty archive", func() { srv.set(buildZip(t, nil, nil), `"e"`, lm2) }, "no OSV records"},
		{"oversized, declared", func() { srv.set(make([]byte, limit+1), `"o"`, lm2) }, "larger than"},
		{"oversized, chunked", func() {
			srv.set(make([]byte, limit+1), `"o"`, lm2)
			srv.mu.Lock()
			srv.chunked = true
			srv.mu.Unlock()
		}, "larger than"},
		{"server error", func() {
			srv.mu.Lock()
			srv.status = http.StatusServiceUnavailable
			srv.mu.Unlock()
		}, "503"},
		{"shrinks below half", func() { srv.set(buildZip(t, dirFiles(t, "samples"), nil), `"s"`, lm2) }, "force"},
	}
	for _, f := range failures {
		f.setup()
		err := u.UpdateOnce(ctx)
		t.Logf("%s: %v", f.name, err)
		if err == nil || !strings.Contains(err.Error(), f.want) {
			t.Errorf("%s: error %v, want %q", f.name, err, f.want)
		}
		if h := srv.last(); h.Get("If-None-Match") != `"v2"` {
			t.Errorf("%s: request carried %q, want the good version's ETag", f.name, h.Get("If-None-Match"))
		}
		s := source()
		if s.LastError == "" || !strings.Contains(s.LastError, f.want) || s.ETag != `"v2"` || s.Records != 194 {
			t.Errorf("%s: source %+v", f.name, s)
		}
		info, _ := db.Info(ctx)
		info.Sources, goodInfo.Sources = nil, nil
		info.SizeBytes, goodInfo.SizeBytes = 0, 0
		if !reflect.DeepEqual(info, goodInfo) || !reflect.DeepEqual(perl(), perl20) {
			t.Errorf("%s: data changed: %+v", f.name, info)
		}
		if changes != 2 {
			t.Errorf("%s: OnChange called", f.name)
		}
	}

	// The shrinking version, forced, is accepted.
	res, err = u.Update(ctx, url, true)
	if err != nil || res.Removed != 194 || res.Added != 4 {
		t.Fatalf("forced: %+v, %v", res, err)
	}
	if ok, _ := db.HasEcosystem(ctx, "Debian:12"); ok {
		t.Errorf("Debian:12 records left after the forced replacement")
	}
	// And a good version afterwards clears the error.
	srv.set(debZip, `"v3"`, lm2)
	if err := u.UpdateOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if s := source(); s.LastError != "" || s.Records != 195 || s.ETag != `"v3"` {
		t.Errorf("recovered: %+v", s)
	}
	if ok, _ := db.HasEcosystem(ctx, "Debian:7"); ok {
		t.Errorf("the samples' records left after replacement")
	}

	// Only configured sources may be updated by name.
	if _, err := u.Update(ctx, ts.URL+"/other.zip", false); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("unconfigured source: %v", err)
	}
}

func TestUpdaterLocalSources(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// A directory (a copy: the shared data is read-only), a zip and a
	// file:// URL of one record.
	debDir := filepath.Join(dir, "debian")
	os.Mkdir(debDir, 0o700)
	for id, b := range dirFiles(t, "debian") {
		os.WriteFile(filepath.Join(debDir, id+".json"), b, 0o600)
	}
	samplesZip := filepath.Join(dir, "samples.zip")
	os.WriteFile(samplesZip, buildZip(t, dirFiles(t, "samples"), nil), 0o600)
	record, _ := filepath.Abs(filepath.Join(testdataDir("go"), "GO-2020-0001.json"))

	db := newDB(t, Options{})
	changes := 0
	u := &Updater{DB: db, Sources: []string{debDir, samplesZip, "file://" + record}, Logger: quiet,
		OnChange: func(context.Context) { changes++ }}
	if err := u.UpdateOnce(ctx); err != nil {
		t.Fatal(err)
	}
	info, _ := db.Info(ctx)
	if info.Records != 195+4+1 || changes != 1 {
		t.Fatalf("first run: %d records, %d changes", info.Records, changes)
	}
	first := sourcesByName(t, db)
	if err := u.UpdateOnce(ctx); err != nil {
		t.Fatal(err)
	}
	second := sourcesByName(t, db)
	for name, s := range second {
		if s.LastChange != first[name].LastChange || s.ETag != first[name].ETag || s.ETag == "" {
			t.Errorf("%s changed without a change: %+v -> %+v", name, first[name], s)
		}
	}
	if changes != 1 {
		t.Errorf("OnChange called without a change")
	}
	if err := os.Remove(filepath.Join(debDir, "DEBCL-CVE-2023-47038.json")); err != nil {
		t.Fatal(err)
	}
	if err := u.UpdateOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if s := sourcesByName(t, db)[debDir]; s.Records != 194 || changes != 2 {
		t.Errorf("after removing a file: %+v, %d changes", s, changes)
	}
	if got, _ := db.Lookup(ctx, "CVE-2023-47038"); len(got) != 0 {
		t.Errorf("removed record found: %v", idsOf(got))
	}
	// A missing source is an error recorded, not a crash, and keeps data.
	os.RemoveAll(debDir)
	if err := u.UpdateOnce(ctx); err == nil {
		t.Errorf("missing directory accepted")
	}
	if s := sourcesByName(t, db)[debDir]; s.Records != 194 || s.LastError == "" {
		t.Errorf("after the directory went: %+v", s)
	}
	// Unsupported schemes are refused.
	u2 := &Updater{DB: db, Sources: []string{"ftp://127.0.0.1/x.zip"}, Logger: quiet}
	if err := u2.UpdateOnce(ctx); err == nil || !strings.Contains(err.Error(), "unsupported") {
		t.Errorf("ftp: %v", err)
	}
}

// TestUpdaterRun: Run fetches at start and returns when ctx is done.
func TestUpdaterRun(t *testing.T) {
	srv := &osvServer{}
	srv.set(buildZip(t, dirFiles(t, "debian"), nil), `"r1"`, "")
	ts := httptest.NewServer(srv)
	defer ts.Close()
	db := newDB(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	u := &Updater{DB: db, Sources: []string{ts.URL + "/Debian/all.zip"}, Client: ts.Client(), Logger: quiet,
		Interval: 1 << 40, OnChange: func(context.Context) { cancel() }}
	u.Run(ctx) // returns once OnChange cancels
	if ok, _ := db.HasEcosystem(context.Background(), "Debian:12"); !ok {
		t.Errorf("Run did not update at start")
	}
}

// A scheduled source dropped from the configuration is removed with its
// records when the updater starts; imported records stay.
func TestPruneDroppedSources(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	samplesZip := filepath.Join(dir, "samples.zip")
	os.WriteFile(samplesZip, buildZip(t, dirFiles(t, "samples"), nil), 0o600)
	db := newDB(t, Options{})
	if err := (&Updater{DB: db, Sources: []string{samplesZip}, Logger: quiet}).UpdateOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Import(ctx, DefaultImportSource, filepath.Join(testdataDir("go"), "GO-2020-0001.json")); err != nil {
		t.Fatal(err)
	}
	changes := 0
	u := &Updater{DB: db, Logger: quiet, OnChange: func(context.Context) { changes++ }} // samplesZip no longer configured
	u.Run(ctx)
	info, _ := db.Info(ctx)
	if info.Records != 1 || changes != 1 {
		t.Fatalf("after the restart without the source: %d records (want the 1 imported), %d changes", info.Records, changes)
	}
	if _, ok := sourcesByName(t, db)[samplesZip]; ok {
		t.Errorf("the dropped source is still listed")
	}
	// Nothing left to prune: no change.
	u.Run(ctx)
	if changes != 1 {
		t.Errorf("a second start changed the database: %d changes", changes)
	}
}

// A redirect from https to plain http is refused, whatever the settings;
// plain http off loopback only with AllowHTTP.
func TestUpdaterRefusesHTTPDowngrade(t *testing.T) {
	ctx := context.Background()
	db := newDB(t, Options{})
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the plain-http target was fetched")
	}))
	defer plain.Close()
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/Debian/all.zip", http.StatusFound)
	}))
	defer tls.Close()
	u := &Updater{DB: db, Sources: []string{tls.URL + "/Debian/all.zip"}, Client: tls.Client(), Logger: quiet, AllowHTTP: true}
	_, err := u.Update(ctx, tls.URL+"/Debian/all.zip", true)
	if err == nil || !strings.Contains(err.Error(), "to plain http") {
		t.Errorf("https redirected to http: %v, want refused", err)
	}
	u = &Updater{DB: db, Logger: quiet}
	for _, c := range []struct {
		url string
		ok  bool
	}{{"http://127.0.0.1/x", true}, {"http://osv.example/x", false}, {"https://osv.example/x", true}} {
		to, _ := url.Parse(c.url)
		if err := u.checkURL(nil, to); (err == nil) != c.ok {
			t.Errorf("checkURL(%s) = %v, want ok %v", c.url, err, c.ok)
		}
	}
}

// An import never takes a record a scheduled source owns: uploading it as
// withdrawn (or changed) leaves the source's version in place and says so;
// a record no scheduled source has is imported as before.
func TestImportDoesNotShadowScheduledSource(t *testing.T) {
	ctx := context.Background()
	record, _ := filepath.Abs(filepath.Join(testdataDir("go"), "GO-2020-0001.json"))
	db := newDB(t, Options{})
	if err := (&Updater{DB: db, Sources: []string{"file://" + record}, Logger: quiet}).UpdateOnce(ctx); err != nil {
		t.Fatal(err)
	}
	before, err := db.Query(ctx, "Go", "github.com/gin-gonic/gin")
	if err != nil || len(before) == 0 {
		t.Fatalf("the scheduled source's record is not matched: %v %v", before, err)
	}
	var rec map[string]any
	raw, _ := os.ReadFile(record)
	json.Unmarshal(raw, &rec)
	rec["withdrawn"] = "2024-01-01T00:00:00Z"
	rec["modified"] = "2024-01-01T00:00:00Z"
	forged, _ := json.Marshal(rec)
	other := map[string]any{"id": "TEST-0001", "modified": "2024-01-01T00:00:00Z", "affected": []any{map[string]any{
		"package": map[string]any{"ecosystem": "Go", "name": "example.com/x"},
		"ranges":  []any{map[string]any{"type": "SEMVER", "events": []any{map[string]any{"introduced": "0"}, map[string]any{"fixed": "1.0.0"}}}},
	}}}
	otherRaw, _ := json.Marshal(other)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "GO-2020-0001.json"), forged, 0o600)
	os.WriteFile(filepath.Join(dir, "TEST-0001.json"), otherRaw, 0o600)
	res, err := db.Import(ctx, "import", dir)
	if err != nil {
		t.Fatal(err)
	}
	if res.KeptScheduled != 1 || res.Added != 1 {
		t.Errorf("import: %+v; want 1 kept (the scheduled source's) and 1 added", res)
	}
	after, err := db.Query(ctx, "Go", "github.com/gin-gonic/gin")
	if err != nil || len(after) != len(before) {
		t.Errorf("after the import the advisory is hidden: %d records, was %d (%v)", len(after), len(before), err)
	}
}

// A source with {ecosystem} is fetched per ecosystem, only for those the
// images need (at start: Needed; later: Need), and a failing one is
// retried with backoff, never in a storm.
func TestTemplateSourcePerEcosystem(t *testing.T) {
	goFiles := map[string][]byte{}
	for name, data := range dirFiles(t, "go") {
		if len(goFiles) < 40 {
			goFiles[name] = data
		}
	}
	zips := map[string][]byte{
		"Debian": buildZip(t, dirFiles(t, "debian"), nil),
		"Go":     buildZip(t, goFiles, nil),
		"PyPI":   buildZip(t, goFiles, nil),
	}
	var mu sync.Mutex
	gets := map[string]int{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		eco, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		mu.Lock()
		gets[eco]++
		mu.Unlock()
		body, ok := zips[eco]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(body)
	}))
	defer ts.Close()
	count := func(eco string) int {
		mu.Lock()
		defer mu.Unlock()
		return gets[eco]
	}
	db := newDB(t, Options{MaxArchiveBytes: 64 << 20})
	changes := make(chan struct{}, 10)
	template := ts.URL + "/{ecosystem}/all.zip"
	u := &Updater{DB: db, Sources: []string{template}, Client: ts.Client(), Logger: quiet, RetryMin: 50 * time.Millisecond,
		Needed:   func(context.Context) ([]string, error) { return []string{"Go"}, nil },
		OnChange: func(context.Context) { changes <- struct{}{} }}
	if why := u.Unavailable("Debian:12"); !strings.Contains(why, "not fetched yet") {
		t.Errorf("before any fetch: %q", why)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { u.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	wait := func(what string) {
		t.Helper()
		select {
		case <-changes:
		case <-time.After(10 * time.Second):
			t.Fatalf("no change after %s", what)
		}
	}
	wait("start")
	if count("Go") != 1 || count("Debian")+count("PyPI") != 0 {
		t.Fatalf("at start: %v", gets)
	}
	u.Need("Debian:12", "Debian:11", "Go")
	wait("Need(Debian)")
	if ok, _ := db.HasEcosystem(context.Background(), "Debian:12"); !ok || count("Debian") != 1 || count("PyPI") != 0 {
		t.Fatalf("after Need: %v", gets)
	}
	if why := u.Unavailable("Debian:12"); why != "" {
		t.Errorf("Debian fetched, yet %q", why)
	}
	info, _ := db.Info(context.Background())
	var names []string
	for _, s := range info.Sources {
		names = append(names, s.Name)
	}
	if !slices.Contains(names, ts.URL+"/Debian/all.zip") || !slices.Contains(names, ts.URL+"/Go/all.zip") {
		t.Errorf("sources in the database: %v", names)
	}

	// An archive that is not there: retried at 50, 100, 200, 400 ms...
	u.Need("Alpine:v3.20")
	time.Sleep(900 * time.Millisecond)
	if n := count("Alpine"); n < 2 || n > 5 {
		t.Errorf("%d fetches of a failing source in 0.9s, want 2 to 5 (backoff)", n)
	}
	if why := u.Unavailable("Alpine:v3.20"); !strings.Contains(why, "404") {
		t.Errorf("a failed source: %q", why)
	}
	t.Logf("fetches: %v", gets)
	// A restart keeps the fetched ecosystems and their records; the
	// template's archives are not pruned.
	if n, err := u.Prune(context.Background()); err != nil || n != 0 {
		t.Errorf("prune removed %d (%v)", n, err)
	}
}
