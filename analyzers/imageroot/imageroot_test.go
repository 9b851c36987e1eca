package imageroot_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/assayhq/assay/analyzers/imageroot"
)

// mkroot builds an image root from path → content; a content starting with
// "->" makes a symbolic link, a path ending in "/" a directory.
func mkroot(t *testing.T, files map[string]string) *os.Root {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
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
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return root
}

func read(root *os.Root, name string) (string, error) {
	f, err := imageroot.Open(root, name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	return string(b), err
}

func TestLinksResolveInsideTheImage(t *testing.T) {
	root := mkroot(t, map[string]string{
		"usr/lib/os-release": "image os-release",
		"etc/shadow":         "image shadow",
		"etc/os-release":     "->../usr/lib/os-release",
		"etc/abs-os-release": "->/usr/lib/os-release",
		"abs-shadow":         "->/etc/shadow",
		"dotdot-shadow":      "->../../../../../../../../etc/shadow",
		"deep/a/b":           "->../../../../../../etc/./shadow",
		"etc2":               "->/etc",
		"via-dir-link":       "->/etc2/../etc2/shadow",
		"lib":                "->usr/lib",
		"x/y/":               "",
	})
	for name, want := range map[string]string{
		"etc/os-release":               "image os-release",
		"/etc/os-release":              "image os-release",
		"etc/abs-os-release":           "image os-release",
		"abs-shadow":                   "image shadow",
		"dotdot-shadow":                "image shadow",
		"deep/a/b":                     "image shadow",
		"via-dir-link":                 "image shadow",
		"/lib/os-release":              "image os-release",
		"../../etc/shadow":             "image shadow",
		"x/y/../../etc2/../etc/shadow": "image shadow",
	} {
		got, err := read(root, name)
		if err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
	if p, err := imageroot.Resolve(root, "/"); p != "." || err != nil {
		t.Errorf("Resolve(/) = %q, %v", p, err)
	}
	if p, err := imageroot.Resolve(root, "via-dir-link"); p != "etc/shadow" || err != nil {
		t.Errorf("Resolve(via-dir-link) = %q, %v", p, err)
	}
}

// The host's /etc/passwd exists; an image without one must not see it,
// however the link is spelled.
func TestNeverTheHostsFiles(t *testing.T) {
	if _, err := os.Stat("/etc/passwd"); err != nil {
		t.Skip("no /etc/passwd on this host to compare with")
	}
	root := mkroot(t, map[string]string{
		"abs":    "->/etc/passwd",
		"rel":    "->../../../../../../../../etc/passwd",
		"etc/":   "",
		"loopto": "->/proc/self/root/etc/passwd",
	})
	for _, name := range []string{"abs", "rel", "/etc/passwd", "../../etc/passwd", "loopto"} {
		got, err := read(root, name)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %q, %v; want not found in the image", name, got, err)
		}
	}
}

func TestLoopsAndLongChains(t *testing.T) {
	files := map[string]string{
		"self": "->self",
		"a":    "->b",
		"b":    "->/a",
		"dir":  "->dir/x",
		"end":  "the end",
	}
	// chain/0 -> chain/1 -> ... -> chain/n -> /end: from chain/i, n-i+1
	// links.
	const n = imageroot.MaxLinks + 1
	for i := range n {
		files[fmt.Sprintf("chain/%d", i)] = fmt.Sprintf("->/chain/%d", i+1)
	}
	files[fmt.Sprintf("chain/%d", n)] = "->/end"
	root := mkroot(t, files)
	for _, name := range []string{"self", "a", "b", "dir", "dir/y", "chain/0", "chain/1"} {
		_, err := read(root, name)
		if !errors.Is(err, syscall.ELOOP) {
			t.Errorf("%s: %v, want ELOOP", name, err)
		}
	}
	// chain/2 needs exactly MaxLinks links: allowed.
	if got, err := read(root, "chain/2"); got != "the end" || err != nil {
		t.Errorf("a chain of %d links: %q, %v", imageroot.MaxLinks, got, err)
	}
}

func TestMissingAndNotADirectory(t *testing.T) {
	root := mkroot(t, map[string]string{"file": "x", "dangling": "->/nowhere", "missing-dir-link": "->/no/such/dir"})
	for _, name := range []string{"nothing", "dangling", "missing-dir-link/x", "nothing/../file"} {
		if _, err := read(root, name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %v, want ErrNotExist", name, err)
		}
	}
	if _, err := read(root, "file/x"); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("file/x: %v, want ENOTDIR", err)
	}
}

func TestErrorsNameTheImagePath(t *testing.T) {
	root := mkroot(t, map[string]string{"self": "->self"})
	_, err := imageroot.Open(root, "/var/../self")
	if err == nil || !strings.Contains(err.Error(), "/var/../self") {
		t.Errorf("error %v does not name the path asked for", err)
	}
}

func TestOpenRegular(t *testing.T) {
	root := mkroot(t, map[string]string{"small": "12345", "dir/": "", "link": "->/small"})
	f, fi, err := imageroot.OpenRegular(root, "link", 5)
	if err != nil || fi.Size() != 5 {
		t.Fatalf("OpenRegular(link, 5) = %v, %v", fi, err)
	}
	f.Close()
	if _, _, err := imageroot.OpenRegular(root, "small", 4); !errors.Is(err, imageroot.ErrTooLarge) {
		t.Errorf("over the limit: %v", err)
	}
	if _, _, err := imageroot.OpenRegular(root, "dir", 0); !errors.Is(err, imageroot.ErrNotRegular) {
		t.Errorf("a directory: %v", err)
	}
	if err := syscall.Mkfifo(filepath.Join(root.Name(), "fifo"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	// Opening a FIFO for reading would block until a writer comes: the
	// test would hang if OpenRegular opened it.
	if _, _, err := imageroot.OpenRegular(root, "fifo", 0); !errors.Is(err, imageroot.ErrNotRegular) {
		t.Errorf("a FIFO: %v", err)
	}
}

func TestLimit(t *testing.T) {
	for _, tc := range []struct {
		size, limit int64
		tooLarge    bool
	}{{10, 10, false}, {11, 10, true}, {0, 1, false}, {5000, 4096, true}, {100, 0, false}} {
		data := bytes.Repeat([]byte("x"), int(tc.size))
		got, err := io.ReadAll(imageroot.Limit(bytes.NewReader(data), tc.limit))
		if tc.tooLarge {
			if !errors.Is(err, imageroot.ErrTooLarge) || int64(len(got)) > tc.limit {
				t.Errorf("%d bytes, limit %d: read %d, %v", tc.size, tc.limit, len(got), err)
			}
			continue
		}
		if err != nil || int64(len(got)) != tc.size {
			t.Errorf("%d bytes, limit %d: read %d, %v", tc.size, tc.limit, len(got), err)
		}
	}
}
