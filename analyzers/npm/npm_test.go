package npm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/assayhq/assay/plugins/sdk"
	"github.com/assayhq/assay/plugins/sdk/sdktest"
)

// collect runs the analyzer over gRPC in this process, as assayd would
// over its socket.
func collect(t *testing.T, req sdk.Request) (pkgs []sdk.Package, warnings []sdk.Warning) {
	t.Helper()
	c := sdktest.Connect(t, Analyzer{})
	items, err := sdktest.Collect(t.Context(), c, req)
	if err != nil {
		t.Fatalf("Analyze: %v", err)
	}
	for _, it := range items {
		if err := it.Validate(); err != nil {
			t.Fatalf("invalid item %+v: %v", it, err)
		}
		switch {
		case it.Package != nil:
			pkgs = append(pkgs, *it.Package)
		case it.Warning != nil:
			warnings = append(warnings, *it.Warning)
		default:
			t.Fatalf("unexpected item %+v", it)
		}
	}
	return pkgs, warnings
}

// copyTree copies the regular files of testdata dir from under the image
// root at to.
func copyTree(t *testing.T, from, root, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		writeFile(t, root, filepath.Join(to, rel), string(must(os.ReadFile(p))))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func writeFile(t *testing.T, root, name, content string) {
	t.Helper()
	p := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, root, name string) {
	t.Helper()
	p := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

// npmLs returns name@version of every package in the tree `npm ls --all
// --json` printed (testdata/app/npm-ls.json), sorted.
func npmLs(t *testing.T) []string {
	t.Helper()
	type node struct {
		Version      string          `json:"version"`
		Dependencies map[string]node `json:"dependencies"`
	}
	var top node
	if err := json.Unmarshal(must(os.ReadFile("testdata/app/npm-ls.json")), &top); err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(map[string]node)
	walk = func(deps map[string]node) {
		for name, n := range deps {
			out = append(out, name+"@"+n.Version)
			walk(n.Dependencies)
		}
	}
	walk(top.Dependencies)
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) < 3 {
		t.Fatalf("npm-ls.json lists only %q", out)
	}
	return out
}

// set returns name@version of pkgs, sorted and deduplicated.
func set(pkgs []sdk.Package) []string {
	var out []string
	for _, p := range pkgs {
		out = append(out, p.Name+"@"+p.Version)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestConformance(t *testing.T) {
	sdktest.Conformance(t, Analyzer{})
}

func TestDescribe(t *testing.T) {
	d, err := sdktest.Connect(t, Analyzer{}).Describe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "npm" || d.Version != "0.1.0" || !slices.Equal(d.Kinds, []string{"package"}) ||
		!slices.Equal(d.Ecosystems, []string{"npm"}) {
		t.Errorf("Describe = %+v", d)
	}
}

// The installed packages of the real npm install are exactly what npm ls
// says; the lockfile next to node_modules is not reported.
func TestInstalledMatchesNpmLs(t *testing.T) {
	root := t.TempDir()
	copyTree(t, "testdata/app", root, "srv/app")
	pkgs, warnings := collect(t, sdk.Request{Root: root})
	if len(warnings) != 0 {
		t.Errorf("warnings: %+v", warnings)
	}
	if got, want := set(pkgs), npmLs(t); !slices.Equal(got, want) {
		t.Errorf("packages %q, npm ls %q", got, want)
	}
	if len(pkgs) != len(npmLs(t)) {
		t.Errorf("%d packages, want %d: %+v", len(pkgs), len(npmLs(t)), pkgs)
	}
	for _, p := range pkgs {
		want := "/srv/app/node_modules/" + p.Name + "/package.json"
		if p.Ecosystem != "npm" || !slices.Equal(p.Locations, []string{want}) {
			t.Errorf("package %+v: want ecosystem npm, location %s", p, want)
		}
		if p.Name == "@babel/helper-validator-identifier" && p.PURL != "pkg:npm/%40babel/helper-validator-identifier@7.10.4" {
			t.Errorf("purl %s", p.PURL)
		}
		if p.Name == "lodash" && p.PURL != "pkg:npm/lodash@4.17.20" {
			t.Errorf("purl %s", p.PURL)
		}
	}
}

// Lockfiles v1 (written by npm --lockfile-version 1), v2 and v3 (npm
// install's own), without node_modules next to them, yield npm ls's set.
func TestLockfilesMatchNpmLs(t *testing.T) {
	for _, dir := range []string{"lockfile-v1", "lockfile-v2", "app"} {
		t.Run(dir, func(t *testing.T) {
			root := t.TempDir()
			writeFile(t, root, "app/package-lock.json", string(must(os.ReadFile("testdata/"+dir+"/package-lock.json"))))
			writeFile(t, root, "app/package.json", string(must(os.ReadFile("testdata/"+dir+"/package.json"))))
			pkgs, warnings := collect(t, sdk.Request{Root: root})
			if len(warnings) != 0 {
				t.Errorf("warnings: %+v", warnings)
			}
			if got, want := set(pkgs), npmLs(t); !slices.Equal(got, want) || len(pkgs) != len(want) {
				t.Errorf("packages %q, npm ls %q", got, want)
			}
			for _, p := range pkgs {
				if !slices.Equal(p.Locations, []string{"/app/package-lock.json"}) {
					t.Errorf("package %+v", p)
				}
			}
		})
	}
	v := func(dir string) int {
		var lf lockfileJSON
		if err := json.Unmarshal(must(os.ReadFile("testdata/"+dir+"/package-lock.json")), &lf); err != nil {
			t.Fatal(err)
		}
		return lf.LockfileVersion
	}
	if v("lockfile-v1") != 1 || v("lockfile-v2") != 2 || v("app") != 3 {
		t.Errorf("lockfile versions %d %d %d", v("lockfile-v1"), v("lockfile-v2"), v("app"))
	}
}

func TestNestedScopedAndSkipped(t *testing.T) {
	root := t.TempDir()
	m := func(name, version string) string { return fmt.Sprintf(`{"name":%q,"version":%q}`, name, version) }
	writeFile(t, root, "app/package.json", m("app", "1.0.0")) // a project, not a package
	writeFile(t, root, "app/node_modules/a/package.json", m("a", "1.0.0"))
	writeFile(t, root, "app/node_modules/a/lib/package.json", `{"type":"module"}`) // not a package
	writeFile(t, root, "app/node_modules/a/node_modules/b/package.json", m("b", "2.0.0"))
	writeFile(t, root, "app/node_modules/a/node_modules/@s/c/package.json", m("@s/c", "3.0.0"))
	writeFile(t, root, "app/node_modules/a/package-lock.json", `{"lockfileVersion":1,"dependencies":{"x":{"version":"1.0.0"}}}`)
	writeFile(t, root, "app/node_modules/.package-lock.json", `{"lockfileVersion":3,"packages":{"node_modules/y":{"version":"1.0.0"}}}`)
	writeFile(t, root, "app/node_modules/noname/package.json", `{"version":"4.0.0"}`)
	writeFile(t, root, "app/package-lock.json", `{"lockfileVersion":3,"packages":{"node_modules/z":{"version":"1.0.0"}}}`)
	// v1 with nested duplicates and an alias; v3 with link, workspace and alias entries.
	writeFile(t, root, "v1/package-lock.json", `{"lockfileVersion":1,"dependencies":{
		"p":{"version":"1.0.0","dependencies":{"q":{"version":"1.0.0"},"loc":{"version":"file:../loc"}}},
		"q":{"version":"1.0.0"},"al":{"version":"npm:real@2.0.0"}}}`)
	writeFile(t, root, "v3/package-lock.json", `{"lockfileVersion":3,"packages":{
		"":{"name":"v3","version":"1.0.0"},
		"packages/ws":{"name":"ws","version":"0.0.1"},
		"node_modules/ws":{"resolved":"packages/ws","link":true},
		"node_modules/r":{"version":"1.0.0"},
		"node_modules/p/node_modules/r":{"version":"1.0.0"},
		"node_modules/al":{"name":"real","version":"2.0.0"}}}`)
	pkgs, warnings := collect(t, sdk.Request{Root: root})
	if len(warnings) != 0 {
		t.Errorf("warnings: %+v", warnings)
	}
	var got []string
	for _, p := range pkgs {
		got = append(got, p.Name+"@"+p.Version+" "+p.Locations[0]+" "+p.PURL)
	}
	want := []string{
		"a@1.0.0 /app/node_modules/a/package.json pkg:npm/a@1.0.0",
		"@s/c@3.0.0 /app/node_modules/a/node_modules/@s/c/package.json pkg:npm/%40s/c@3.0.0",
		"b@2.0.0 /app/node_modules/a/node_modules/b/package.json pkg:npm/b@2.0.0",
		"noname@4.0.0 /app/node_modules/noname/package.json pkg:npm/noname@4.0.0",
		"p@1.0.0 /v1/package-lock.json pkg:npm/p@1.0.0",
		"q@1.0.0 /v1/package-lock.json pkg:npm/q@1.0.0",
		"real@2.0.0 /v1/package-lock.json pkg:npm/real@2.0.0",
		"r@1.0.0 /v3/package-lock.json pkg:npm/r@1.0.0",
		"real@2.0.0 /v3/package-lock.json pkg:npm/real@2.0.0",
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestHostile(t *testing.T) {
	root := t.TempDir()
	m := `{"name":"ok","version":"1.0.0"}`
	writeFile(t, root, "app/node_modules/ok/package.json", m)
	// Links to /etc/shadow resolve in the image: missing there, nothing;
	// present, not JSON: a warning. Never the host's file.
	symlink(t, "/etc/shadow", root, "app/node_modules/abs/package.json")
	symlink(t, "../../../../../../../../etc/shadow", root, "app/node_modules/rel/package.json")
	// Directory loops and a link to the root are not entered.
	symlink(t, "..", root, "app/node_modules/loop")
	symlink(t, "/", root, "app/node_modules/top")
	symlink(t, "x", root, "app/node_modules/self/package.json/x") // not a regular file path
	symlink(t, "package.json", root, "app/node_modules/ping/package.json")
	writeFile(t, root, "app/node_modules/garbage/package.json", "{\"name\": \xff\xfe garbage")
	writeFile(t, root, "app/node_modules/huge/package.json", `{"name":"huge","version":"1.0.0","x":"`+strings.Repeat("a", 2000)+`"}`)
	writeFile(t, root, "lock/package-lock.json", `{"lockfileVersion":2,"packages":[1,2,3]}`)
	if err := os.MkdirAll(filepath.Join(root, "fifo/node_modules/f"), 0o755); err != nil {
		t.Fatal(err)
	}
	pkgs, warnings := collect(t, sdk.Request{Root: root, MaxFileBytes: 1000})
	if got := set(pkgs); !slices.Equal(got, []string{"ok@1.0.0"}) {
		t.Errorf("packages %q", got)
	}
	wantWarn := map[string]bool{
		"/app/node_modules/garbage/package.json": false,
		"/app/node_modules/huge/package.json":    false,
		"/app/node_modules/ping/package.json":    false, // ELOOP
		"/lock/package-lock.json":                false,
	}
	for _, w := range warnings {
		if _, ok := wantWarn[w.Path]; !ok {
			t.Errorf("unexpected warning %+v", w)
		}
		wantWarn[w.Path] = true
	}
	for p, seen := range wantWarn {
		if !seen {
			t.Errorf("no warning for %s (%+v)", p, warnings)
		}
	}

	// With an /etc/shadow in the image, the link reads it: not JSON, a
	// warning naming the image path.
	writeFile(t, root, "etc/shadow", "root:*:19000:0:99999:7:::\n")
	_, warnings = collect(t, sdk.Request{Root: root, MaxFileBytes: 1000})
	n := 0
	for _, w := range warnings {
		if strings.HasSuffix(w.Path, "/abs/package.json") || strings.HasSuffix(w.Path, "/rel/package.json") {
			n++
			if !strings.Contains(w.Message, "malformed") {
				t.Errorf("warning %+v", w)
			}
		}
	}
	if n != 2 {
		t.Errorf("%d warnings for the shadow links: %+v", n, warnings)
	}
}

func TestMaxFiles(t *testing.T) {
	root := t.TempDir()
	nm := filepath.Join(root, "app/node_modules")
	if err := os.MkdirAll(nm, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 20_000 {
		if err := os.WriteFile(filepath.Join(nm, fmt.Sprintf("f%05d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, root, "app/node_modules/zz/package.json", `{"name":"zz","version":"1.0.0"}`)
	r, err := os.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var w warnings
	st, err := analyze(t.Context(), r, sdk.Request{MaxFiles: 1000}, &w)
	if err != nil {
		t.Fatal(err)
	}
	if st.Entries != 1000 {
		t.Errorf("%d entries looked at", st.Entries)
	}
	if len(w) != 1 || !strings.Contains(w[0].Message, "more than 1000 entries") {
		t.Errorf("warnings %+v", w)
	}
	// Unbounded, the same tree yields the package.
	w = nil
	st, err = analyze(t.Context(), r, sdk.Request{}, &w)
	if err != nil || st.Packages != 1 || len(w) != 0 {
		t.Errorf("unbounded: %+v, %v, %+v", st, err, w)
	}
}

// TestMillionEntries: a node_modules of a million entries (hard links to
// one empty file, so that making it is cheap) against the daemon's default
// file limit: the walk stops at the limit with one clear warning, and its
// memory does not grow with the entries it has seen.
func TestMillionEntries(t *testing.T) {
	if testing.Short() {
		t.Skip("makes a million directory entries")
	}
	root := t.TempDir()
	nm := filepath.Join(root, "app/node_modules")
	if err := os.MkdirAll(nm, 0o755); err != nil {
		t.Fatal(err)
	}
	const entries, limit = 1_000_100, 1_000_000
	var src string
	for i := range entries {
		if i%60_000 == 0 { // ext4 allows 65,000 links to one inode
			src = filepath.Join(root, "empty"+strconv.Itoa(i))
			if err := os.WriteFile(src, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Link(src, filepath.Join(nm, strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	// Sample the heap while the walk runs: its peak is what the sandbox's
	// memory limit sees.
	done := make(chan struct{})
	peak := make(chan uint64)
	go func() {
		var m runtime.MemStats
		var max uint64
		for {
			select {
			case <-done:
				peak <- max
				return
			case <-time.After(5 * time.Millisecond):
				runtime.ReadMemStats(&m)
				max = maxOf(max, m.HeapInuse)
			}
		}
	}()
	var w warnings
	st, err := analyze(t.Context(), r, sdk.Request{MaxFiles: limit}, &w)
	close(done)
	peakHeap := <-peak
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if st.Entries != limit || st.Packages != 0 {
		t.Errorf("%d entries looked at, %d packages; want the limit, %d, and none", st.Entries, st.Packages, limit)
	}
	if len(w) != 1 || !strings.Contains(w[0].Message, "more than 1000000 entries") {
		t.Errorf("warnings %+v", w)
	}
	// The directory is read in batches and only subdirectory names are
	// kept: the peak must not grow with the million entries (it was about
	// 300 MiB when whole directories were held as fs.DirEntry values).
	if grown := int64(peakHeap) - int64(before.HeapInuse); grown > 32<<20 {
		t.Errorf("heap peaked %d MiB above its start during the walk", grown>>20)
	}
	t.Logf("walked %d entries; heap peak during the walk %d MiB (start %d MiB); total allocated %d MiB",
		st.Entries, peakHeap>>20, before.HeapInuse>>20, (after.TotalAlloc-before.TotalAlloc)>>20)
}

func maxOf(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// TestDedupe: the same package twice at one location is reported once.
func TestDedupe(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "package-lock.json", `{"lockfileVersion":1,"dependencies":{"a":{"version":"1.0.0","dependencies":{"a":{"version":"1.0.0"}}}}}`)
	pkgs, _ := collect(t, sdk.Request{Root: root})
	if len(pkgs) != 1 {
		t.Errorf("packages %+v", pkgs)
	}
}

type warnings []sdk.Warning

func (*warnings) Package(sdk.Package) error     { return nil }
func (*warnings) Finding(sdk.Finding) error     { return nil }
func (w *warnings) Warning(x sdk.Warning) error { *w = append(*w, x); return nil }

func TestCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	root := t.TempDir()
	copyTree(t, "testdata/app", root, "app")
	err := Analyzer{}.Analyze(ctx, sdk.Request{Root: root}, new(warnings))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Analyze = %v, want context.Canceled", err)
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := analyze(ctx, r, sdk.Request{}, new(warnings)); !errors.Is(err, context.Canceled) {
		t.Errorf("analyze = %v, want context.Canceled", err)
	}
}
