package sdk_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/assayhq/assay/plugins/sdk"
	"github.com/assayhq/assay/plugins/sdk/sdktest"
)

// entry is one tar header (and body) of a test layer.
type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func layer(t testing.TB, es ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		h := &tar.Header{Name: e.name, Typeflag: typ, Mode: mode, Linkname: e.link}
		if typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	return buf.Bytes()
}

// recorder is an extractor that wants files by suffix and records what it
// read, and emits one package per file named after its content.
type recorder struct {
	suffix string
	max    int64
	mu     sync.Mutex
	seen   map[string]string
	fail   bool
}

func (r *recorder) Name() string        { return "rec" + r.suffix }
func (r *recorder) Version() string     { return "1" }
func (r *recorder) MaxFileBytes() int64 { return r.max }
func (r *recorder) Required(f sdk.FileInfo) bool {
	return f.Mode.IsRegular() && strings.HasSuffix(f.Path, r.suffix)
}
func (r *recorder) Extract(ctx context.Context, f sdk.FileInfo, in io.Reader, out sdk.Output) error {
	b, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	r.mu.Lock()
	if r.seen == nil {
		r.seen = map[string]string{}
	}
	r.seen[f.Path] = string(b)
	r.mu.Unlock()
	if r.fail {
		return errors.New("cannot parse")
	}
	return out.Package(sdk.Package{Ecosystem: "test", Name: string(b), Locations: []string{f.Path}})
}

func entriesOf(items []sdk.Item) sdk.LayerEntries {
	var e sdk.LayerEntries
	for _, it := range items {
		if it.Entries != nil {
			e.Paths = append(e.Paths, it.Entries.Paths...)
			e.Whiteouts = append(e.Whiteouts, it.Entries.Whiteouts...)
			e.OpaqueDirs = append(e.OpaqueDirs, it.Entries.OpaqueDirs...)
			e.HardLinks = append(e.HardLinks, it.Entries.HardLinks...)
		}
	}
	return e
}

func TestLayerEntriesWhiteoutsAndLinks(t *testing.T) {
	l := layer(t,
		entry{name: "./etc/", typ: tar.TypeDir, mode: 0o755},
		entry{name: "./etc/a.txt", body: "A"},
		entry{name: "usr/lib/../lib/b.txt", body: "B"},
		entry{name: "etc/.wh.gone.txt"},
		entry{name: "opt/app/.wh..wh..opq"},
		entry{name: "etc/.wh..wh.plnk"},
		entry{name: "etc/hard.txt", typ: tar.TypeLink, link: "./etc/a.txt"},
		entry{name: "etc/soft.txt", typ: tar.TypeSymlink, link: "../nowhere"},
	)
	rec := &recorder{suffix: ".txt", max: 1 << 20}
	items := sdktest.Extract(t, l, rec)
	e := entriesOf(items)
	wantPaths := []string{"/etc/a.txt", "/usr/lib/b.txt", "/etc/hard.txt", "/etc/soft.txt"}
	if fmt.Sprint(e.Paths) != fmt.Sprint(wantPaths) {
		t.Errorf("paths = %q, want %q", e.Paths, wantPaths)
	}
	if fmt.Sprint(e.Whiteouts) != "[/etc/gone.txt]" || fmt.Sprint(e.OpaqueDirs) != "[/opt/app]" {
		t.Errorf("whiteouts %q opaque %q", e.Whiteouts, e.OpaqueDirs)
	}
	if len(e.HardLinks) != 1 || e.HardLinks[0] != (sdk.HardLink{Path: "/etc/hard.txt", Target: "/etc/a.txt"}) {
		t.Errorf("hard links = %+v", e.HardLinks)
	}
	// Only regular files reach an extractor that wants regular files'
	// names: the link and the whiteouts are not read.
	if len(rec.seen) != 2 || rec.seen["/etc/a.txt"] != "A" || rec.seen["/usr/lib/b.txt"] != "B" {
		t.Errorf("read %v", rec.seen)
	}
	last := items[len(items)-1]
	if last.LayerEnd == nil || last.LayerEnd.Entries != 8 || last.Layer != 1 {
		t.Errorf("last item %+v", last)
	}
	for _, it := range items {
		if it.Package != nil && it.Extractor != "rec.txt" {
			t.Errorf("package without its extractor: %+v", it)
		}
	}
}

func TestCompressedLayers(t *testing.T) {
	plain := layer(t, entry{name: "a.txt", body: "hello"})
	var gz, zs bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(plain)
	w.Close()
	zw, _ := zstd.NewWriter(&zs)
	zw.Write(plain)
	zw.Close()
	for name, blob := range map[string][]byte{"plain": plain, "gzip": gz.Bytes(), "zstd": zs.Bytes()} {
		t.Run(name, func(t *testing.T) {
			rec := &recorder{suffix: ".txt", max: 100}
			sdktest.Extract(t, blob, rec)
			if rec.seen["/a.txt"] != "hello" {
				t.Errorf("read %v", rec.seen)
			}
		})
	}
}

func TestFanOutToSeveralExtractors(t *testing.T) {
	body := strings.Repeat("0123456789", 50_000) // larger than the copy buffer
	l := layer(t, entry{name: "big.txt", body: body})
	a := &recorder{suffix: ".txt", max: 1 << 20}
	b := &recorder{suffix: "big.txt", max: 1 << 20}
	items := sdktest.Extract(t, l, a, b)
	if a.seen["/big.txt"] != body || b.seen["/big.txt"] != body {
		t.Errorf("fan-out lost bytes: %d and %d of %d", len(a.seen["/big.txt"]), len(b.seen["/big.txt"]), len(body))
	}
	if n := len(sdktest.Packages(items)); n != 2 {
		t.Errorf("%d packages, want 2", n)
	}
}

func TestFileCapAndExtractorErrors(t *testing.T) {
	l := layer(t, entry{name: "small.txt", body: "ok"}, entry{name: "large.txt", body: strings.Repeat("x", 101)})
	rec := &recorder{suffix: ".txt", max: 100}
	items := sdktest.Extract(t, l, rec)
	if _, read := rec.seen["/large.txt"]; read {
		t.Error("a file over the extractor's cap was read")
	}
	ws := sdktest.Warnings(items)
	if len(ws) != 1 || ws[0].Path != "/large.txt" || !strings.Contains(ws[0].Message, "101 bytes") {
		t.Errorf("warnings %+v", ws)
	}
	// The request's cap replaces the extractor's.
	rec2 := &recorder{suffix: ".txt", max: 100}
	if _, err := sdktest.ExtractErr(t.Context(), l, sdk.LayerLimits{MaxFileBytes: map[string]int64{"rec.txt": 1000}}, rec2); err != nil || rec2.seen["/large.txt"] == "" {
		t.Errorf("override: %v, read %v", err, rec2.seen)
	}
	// A parse error is a warning about the file; the layer goes on.
	bad := &recorder{suffix: ".txt", max: 1000, fail: true}
	items = sdktest.Extract(t, l, bad)
	if ws := sdktest.Warnings(items); len(ws) != 2 || ws[0].Message != "cannot parse" {
		t.Errorf("warnings %+v", ws)
	}
	if items[len(items)-1].LayerEnd == nil {
		t.Error("no LayerEnd after extractor errors")
	}
}

func TestWarningsAreCapped(t *testing.T) {
	var es []entry
	for i := range 250 {
		es = append(es, entry{name: fmt.Sprintf("f%d.txt", i), body: "x"})
	}
	items := sdktest.Extract(t, layer(t, es...), &recorder{suffix: ".txt", max: 1000, fail: true})
	ws := sdktest.Warnings(items)
	if len(ws) != 101 || !strings.Contains(ws[100].Message, "150 more warnings") {
		t.Errorf("%d warnings, last %+v", len(ws), ws[len(ws)-1])
	}
}

func TestEntryLimits(t *testing.T) {
	var es []entry
	for i := range 100 {
		es = append(es, entry{name: fmt.Sprintf("empty%d", i)})
	}
	l := layer(t, es...)
	_, err := sdktest.ExtractErr(t.Context(), l, sdk.LayerLimits{MaxLayerEntries: 50})
	if !errors.Is(err, sdk.ErrLayerLimit) || !strings.Contains(err.Error(), "more than 50 entries") {
		t.Errorf("per-layer entries: %v", err)
	}
	_, err = sdktest.ExtractErr(t.Context(), l, sdk.LayerLimits{MaxEntries: 99})
	if !errors.Is(err, sdk.ErrLayerLimit) {
		t.Errorf("per-request entries: %v", err)
	}
	if _, err := sdktest.ExtractErr(t.Context(), l, sdk.LayerLimits{MaxLayerEntries: 100}); err != nil {
		t.Errorf("exactly at the limit: %v", err)
	}
}

// A gzip bomb: 1 GiB of zeros in one file, about 1 MiB compressed (one
// gzip member of 1 MiB of zeros repeated: gzip streams may hold several
// members). The stream stops at the byte limit without reading the rest.
func TestDecompressionBomb(t *testing.T) {
	var head, member bytes.Buffer
	tw := tar.NewWriter(&head)
	const size = 1 << 30
	tw.WriteHeader(&tar.Header{Name: "zeros", Mode: 0o644, Size: size, Typeflag: tar.TypeReg})
	tw.Flush()
	zero := make([]byte, 1<<20)
	w := gzip.NewWriter(&member)
	w.Write(zero)
	w.Close()
	var gz bytes.Buffer
	w = gzip.NewWriter(&gz)
	w.Write(head.Bytes())
	w.Close()
	for range size / len(zero) {
		gz.Write(member.Bytes())
	}
	if gz.Len() > 8<<20 {
		t.Fatalf("bomb is %d bytes compressed", gz.Len())
	}
	_, err := sdktest.ExtractErr(t.Context(), gz.Bytes(), sdk.LayerLimits{MaxLayerBytes: 64 << 20})
	if !errors.Is(err, sdk.ErrLayerLimit) || !strings.Contains(err.Error(), "uncompressed bytes") {
		t.Errorf("bomb: %v", err)
	}
}

func TestLongNamesAreSkipped(t *testing.T) {
	long := strings.Repeat("d/", sdk.MaxPathBytes/2) + "x.txt"
	rec := &recorder{suffix: ".txt", max: 100}
	items := sdktest.Extract(t, layer(t, entry{name: long, body: "x"}, entry{name: "ok.txt", body: "y"}), rec)
	if len(rec.seen) != 1 || rec.seen["/ok.txt"] != "y" {
		t.Errorf("read %v", rec.seen)
	}
	if ws := sdktest.Warnings(items); len(ws) != 1 || !strings.Contains(ws[0].Message, "longer than") {
		t.Errorf("warnings %+v", ws)
	}
}

// finisher reports in Finish whether the layer held a directory.
type finisher struct{ recorder }

func (f *finisher) Finish(ctx context.Context, l sdk.LayerIndex, out sdk.Output) error {
	for _, d := range []string{"/app/node_modules", "/app", "/other"} {
		if l.HasDir(d) {
			if err := out.Package(sdk.Package{Ecosystem: "test", Name: "dir" + d}); err != nil {
				return err
			}
		}
	}
	return nil
}

func TestFinisherSeesDirectories(t *testing.T) {
	items := sdktest.Extract(t, layer(t, entry{name: "app/node_modules/x/package.json", body: "{}"}), &finisher{recorder{suffix: ".none", max: 10}})
	var names []string
	for _, p := range sdktest.Packages(items) {
		names = append(names, p.Name)
	}
	if fmt.Sprint(names) != "[dir/app/node_modules dir/app]" {
		t.Errorf("finish saw %q", names)
	}
}

func TestCancelledLayer(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := sdktest.ExtractErr(ctx, layer(t, entry{name: "a.txt", body: "x"}), sdk.LayerLimits{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestNotATar(t *testing.T) {
	_, err := sdktest.ExtractErr(t.Context(), bytes.Repeat([]byte("garbage!"), 200), sdk.LayerLimits{})
	if err == nil {
		t.Error("garbage accepted as a layer")
	}
}

// A layer over a limit ends the request with ResourceExhausted, which the
// host tells apart from a failing plugin: the image is refused.
func TestLimitEndsTheRequestAsResourceExhausted(t *testing.T) {
	var es []entry
	for i := range 100 {
		es = append(es, entry{name: fmt.Sprintf("empty%d", i)})
	}
	path := filepath.Join(t.TempDir(), "layer.tar")
	if err := os.WriteFile(path, layer(t, es...), 0o644); err != nil {
		t.Fatal(err)
	}
	var req sdk.Request
	for i := range 2 {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		fd, err := syscall.Dup(int(f.Fd())) // AnalyzeItems closes it
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		req.Layers = append(req.Layers, sdk.Layer{Index: i + 1, Digest: fmt.Sprintf("sha256:%d", i), FD: fd})
	}
	req.LayerLimits = sdk.LayerLimits{MaxEntries: 150}
	ended := 0
	err := sdk.LayerAnalyzer{Set: sdk.ExtractorSet{Name: "t", Version: "1", New: func() []sdk.Extractor { return []sdk.Extractor{&recorder{suffix: ".x"}} }}}.
		AnalyzeItems(t.Context(), req, func(it sdk.Item) error {
			if it.LayerEnd != nil {
				ended++
			}
			return nil
		})
	// The layers are read at once: either may cross the limit first.
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "more than 150 entries") || ended > 1 {
		t.Errorf("over the image's entries: %v (%d layers ended), want ResourceExhausted and at most one layer ended", err, ended)
	}
}

// Layers are read at the same time: a host may feed layer 1 through a
// pipe that fills only as it downloads while layer 2 is already there.
// Here layer 1's data comes only after layer 2 has ended; read one after
// the other, the request would never end.
func TestLayersAreReadConcurrently(t *testing.T) {
	path := filepath.Join(t.TempDir(), "layer2.tar")
	if err := os.WriteFile(path, layer(t, entry{name: "b.x", body: "two"}), 0o644); err != nil {
		t.Fatal(err)
	}
	f2, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	fd2, _ := syscall.Dup(int(f2.Fd()))
	f2.Close()
	r1, w1, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	fd1, _ := syscall.Dup(int(r1.Fd()))
	r1.Close()
	req := sdk.Request{Layers: []sdk.Layer{{Index: 1, Digest: "sha256:1", FD: fd1}, {Index: 2, Digest: "sha256:2", FD: fd2}}}
	second := make(chan struct{})
	go func() {
		select {
		case <-second:
		case <-time.After(30 * time.Second):
		}
		w1.Write(layer(t, entry{name: "a.x", body: "one"}))
		w1.Close()
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var order []int
	err = sdk.LayerAnalyzer{Set: sdk.ExtractorSet{Name: "t", Version: "1", New: func() []sdk.Extractor { return []sdk.Extractor{&recorder{suffix: ".x"}} }}}.
		AnalyzeItems(ctx, req, func(it sdk.Item) error {
			if it.LayerEnd != nil {
				order = append(order, it.Layer)
				if it.Layer == 2 {
					close(second)
				}
			}
			return nil
		})
	if err != nil || len(order) != 2 || order[0] != 2 {
		t.Errorf("layers ended in order %v (%v); want layer 2 first, then layer 1", order, err)
	}
}
