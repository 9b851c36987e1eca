package example_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/assayhq/assay/plugins/example"
	"github.com/assayhq/assay/plugins/sdk"
	"github.com/assayhq/assay/plugins/sdk/sdktest"
)

const debianOSRelease = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
ID=debian
`

// mkroot builds an image root from path → content; a content starting with
// "->" makes a symbolic link.
func mkroot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if target, ok := strings.CutPrefix(c, "->"); ok {
			err = os.Symlink(target, full)
		} else {
			err = os.WriteFile(full, []byte(c), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func analyze(t *testing.T, root string, maxFiles int64) []string {
	t.Helper()
	c := sdktest.Connect(t, example.Analyzer{})
	items, err := sdktest.Collect(t.Context(), c, sdk.Request{Root: root, MaxFiles: maxFiles, MaxFileBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range items {
		if it.Warning == nil {
			t.Fatalf("the example emitted %+v", it)
		}
		got = append(got, it.Warning.Path+": "+it.Warning.Message)
	}
	return got
}

func TestConformance(t *testing.T) {
	sdktest.Conformance(t, example.Analyzer{})
}

func TestAnalyze(t *testing.T) {
	for _, tc := range []struct {
		name     string
		files    map[string]string
		maxFiles int64
		want     []string
	}{{
		name: "debian, os-release a relative link as in the image",
		files: map[string]string{
			"etc/os-release":     "->../usr/lib/os-release",
			"usr/lib/os-release": debianOSRelease,
			"bin/sh":             "x",
		},
		want: []string{"/etc/os-release: distribution: Debian GNU/Linux 12 (bookworm)", "/: 2 regular files"},
	}, {
		name:  "only /usr/lib/os-release",
		files: map[string]string{"usr/lib/os-release": "NAME=Alpine Linux\nVERSION_ID=3.20.0\n"},
		want:  []string{"/usr/lib/os-release: distribution: Alpine Linux 3.20.0", "/: 1 regular files"},
	}, {
		name: "a link out of the root is not followed",
		files: map[string]string{
			"etc/os-release": "->../../../../../../../../etc/os-release",
			"usr/x":          "x",
		},
		want: []string{"/etc/os-release: os-release unreadable: openat etc/os-release: path escapes from parent", "/: 1 regular files"},
	}, {
		name:     "file limit",
		files:    map[string]string{"a": "1", "b": "2", "c/d": "3", "c/e": "4", "l": "->a"},
		maxFiles: 3,
		want:     []string{": no os-release file: distribution unknown", "/: file limit of 3 reached: counted 3 regular files and stopped"},
	}, {
		name:  "links and directory links are not counted nor followed",
		files: map[string]string{"a": "1", "l": "->a", "d/x": "2", "dl": "->d", "loop": "->loop"},
		want:  []string{": no os-release file: distribution unknown", "/: 2 regular files"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := analyze(t, mkroot(t, tc.files), tc.maxFiles)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestCountFilesHonoursContext(t *testing.T) {
	files := map[string]string{}
	for i := range 3000 {
		files[filepath.Join("d", string(rune('a'+i%26)), strings.Repeat("f", 1+i/26))] = "x"
	}
	root, err := os.OpenRoot(mkroot(t, files))
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := example.CountFiles(ctx, root, 0); err != context.Canceled {
		t.Fatalf("CountFiles with a cancelled context = %v", err)
	}
}
