package osrelease_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"maps"
	"strings"
	"testing"

	"github.com/assayhq/assay/analyzers/osrelease"
	"github.com/assayhq/assay/plugins/sdk"
	"github.com/assayhq/assay/plugins/sdk/sdktest"
)

func TestExtractorConformance(t *testing.T) {
	sdktest.ExtractorConformance(t, osrelease.NewExtractor())
}

func TestExtractorIdentity(t *testing.T) {
	e := osrelease.NewExtractor()
	if e.Name() != "os-release" || e.Version() != "0.1.0" || e.MaxFileBytes() != osrelease.MaxBytes {
		t.Errorf("extractor %q %q, max %d", e.Name(), e.Version(), e.MaxFileBytes())
	}
}

// entry is one tar entry: a regular file, or a symbolic link when link is
// set, or typ.
type entry struct {
	name, body, link string
	typ              byte
}

func layer(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		switch {
		case e.link != "":
			h.Typeflag, h.Linkname, h.Mode, h.Size = tar.TypeSymlink, e.link, 0o777, 0
		case e.typ != 0:
			h.Typeflag, h.Size = e.typ, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func releases(items []sdk.Item) []sdk.OSRelease {
	var out []sdk.OSRelease
	for _, it := range items {
		if it.OSRelease != nil {
			out = append(out, *it.OSRelease)
		}
	}
	return out
}

// Debian's layout: /etc/os-release a relative link to the real file in
// /usr/lib. The link is sent as such, the file parsed.
func TestExtractDebianLayout(t *testing.T) {
	debian := realDebian12(t)
	items := sdktest.Extract(t, layer(t,
		entry{name: "etc/", typ: tar.TypeDir},
		entry{name: "etc/os-release", link: "../usr/lib/os-release"},
		entry{name: "usr/lib/os-release", body: debian},
		// Not os-release files: not sent.
		entry{name: "etc/os-release.d/x", body: "ID=fake\n"},
		entry{name: "srv/etc/os-release", body: "ID=fake\n"},
		entry{name: "usr/lib/os-release.bak", body: "ID=fake\n"},
		entry{name: "etc/initrd-release", body: "ID=fake\n"},
	), osrelease.NewExtractor())
	if w := sdktest.Warnings(items); len(w) > 0 {
		t.Errorf("warnings %+v", w)
	}
	got := releases(items)
	if len(got) != 2 {
		t.Fatalf("os-release items %+v, want 2", got)
	}
	if l := got[0]; l.Path != "/etc/os-release" || l.LinkTarget != "../usr/lib/os-release" || l.Fields != nil {
		t.Errorf("link %+v", l)
	}
	f := got[1]
	want, err := osrelease.Parse(strings.NewReader(debian))
	if err != nil {
		t.Fatal(err)
	}
	if f.Path != "/usr/lib/os-release" || f.LinkTarget != "" || !maps.Equal(f.Fields, want) || f.Fields["VERSION_CODENAME"] != "bookworm" {
		t.Errorf("file %+v", f)
	}
	rel := osrelease.FromItem(f)
	if rel.Path != "/usr/lib/os-release" || rel.Ecosystem() != "Debian:12" || rel.ID != "debian" || rel.VersionID != "12" {
		t.Errorf("FromItem = %+v", rel)
	}
}

// Both files regular, an absolute link, anything else at the paths.
func TestExtractOtherLayouts(t *testing.T) {
	items := sdktest.Extract(t, layer(t,
		entry{name: "etc/os-release", body: "ID=ubuntu\nVERSION_ID=24.04\n"},
		entry{name: "./usr/lib/os-release", link: "/etc/os-release"},
	), osrelease.NewExtractor())
	got := releases(items)
	if len(got) != 2 || got[0].Path != "/etc/os-release" || osrelease.FromItem(got[0]).Ecosystem() != "Ubuntu:24.04:LTS" ||
		got[1].Path != "/usr/lib/os-release" || got[1].LinkTarget != "/etc/os-release" {
		t.Errorf("items %+v", got)
	}
	// A directory, a FIFO, a hard link at the paths: nothing to read.
	items = sdktest.Extract(t, layer(t,
		entry{name: "srv/r", body: "ID=fake\n"},
		entry{name: "etc/os-release", typ: tar.TypeFifo},
		entry{name: "usr/lib/os-release/", typ: tar.TypeDir},
	), osrelease.NewExtractor())
	if got := releases(items); len(got) != 0 || len(sdktest.Warnings(items)) != 0 {
		t.Errorf("items %+v", items)
	}
	// Garbage and an empty file: an item without the fields it lacks.
	items = sdktest.Extract(t, layer(t,
		entry{name: "etc/os-release", body: "\xff\x00 SECRET garbage\n=\n"},
		entry{name: "usr/lib/os-release", body: ""},
	), osrelease.NewExtractor())
	got = releases(items)
	if len(got) != 2 || len(got[0].Fields) != 0 || len(got[1].Fields) != 0 || osrelease.FromItem(got[0]).Ecosystem() != "" {
		t.Errorf("items %+v", got)
	}
}

// A file over MaxBytes is skipped by the framework with a warning; a
// request that raises the cap does not make the extractor read more.
func TestExtractOversized(t *testing.T) {
	big := realDebian12(t) + strings.Repeat("#", osrelease.MaxBytes)
	items := sdktest.Extract(t, layer(t, entry{name: "etc/os-release", body: big}), osrelease.NewExtractor())
	ws := sdktest.Warnings(items)
	if len(releases(items)) != 0 || len(ws) != 1 || ws[0].Path != "/etc/os-release" || !strings.Contains(ws[0].Message, "more than the 65536 this extractor reads") {
		t.Errorf("items %+v", items)
	}
	items, err := sdktest.ExtractErr(t.Context(), layer(t, entry{name: "etc/os-release", body: big}),
		sdk.LayerLimits{MaxFileBytes: map[string]int64{osrelease.Name: 1 << 20}}, osrelease.NewExtractor())
	if err != nil {
		t.Fatal(err)
	}
	ws = sdktest.Warnings(items)
	if len(releases(items)) != 0 || len(ws) != 1 || !strings.Contains(ws[0].Message, "larger than the limit of 65536 bytes") {
		t.Errorf("items %+v", items)
	}
}

func TestExtractCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	b := layer(t, entry{name: "etc/os-release", body: realDebian12(t)})
	if _, err := sdktest.ExtractErr(ctx, b, sdk.LayerLimits{}, osrelease.NewExtractor()); err == nil {
		t.Error("a cancelled layer succeeded")
	}
	err := osrelease.NewExtractor().Extract(ctx, sdk.FileInfo{Path: "/etc/os-release", Mode: 0o644, Size: 3}, strings.NewReader("a=b"), nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Extract = %v", err)
	}
}

func TestRequired(t *testing.T) {
	e := osrelease.NewExtractor()
	for _, tc := range []struct {
		path string
		mode fs.FileMode
		want bool
	}{
		{"/etc/os-release", 0o644, true},
		{"/usr/lib/os-release", 0o644, true},
		{"/etc/os-release", fs.ModeSymlink | 0o777, true},
		{"/usr/lib/os-release", fs.ModeSymlink | 0o777, true},
		{"/etc/lsb-release", 0o644, false},
		{"/usr/local/lib/os-release", 0o644, false},
		{"/etc/os-release", fs.ModeNamedPipe | 0o644, false},
		{"/etc/os-release", fs.ModeDir | 0o755, false},
	} {
		if got := e.Required(sdk.FileInfo{Path: tc.path, Mode: tc.mode}); got != tc.want {
			t.Errorf("Required(%s, %v) = %v", tc.path, tc.mode, got)
		}
	}
}
