package imageroot_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/assayhq/assay/analyzers/imageroot"
)

// walked is one call of the WalkFunc: the name and the entry's type, or
// the error.
type walked struct {
	name string
	typ  fs.FileMode
	err  error
}

func (w walked) String() string {
	if w.err != nil {
		return fmt.Sprintf("%s: error %v", w.name, w.err)
	}
	return fmt.Sprintf("%s (%v)", w.name, w.typ)
}

// walkAll walks root with opts and returns every call; then, if set, what
// each call returns.
func walkAll(t *testing.T, ctx context.Context, root *os.Root, opts imageroot.WalkOptions, then func(name string, d fs.DirEntry) error) ([]walked, error) {
	t.Helper()
	var got []walked
	err := imageroot.Walk(ctx, root, opts, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			got = append(got, walked{name: name, err: err})
			return nil
		}
		if d.Name() != filepath.Base(name) {
			t.Errorf("%s: entry named %q", name, d.Name())
		}
		got = append(got, walked{name: name, typ: d.Type()})
		if then != nil {
			return then(name, d)
		}
		return nil
	})
	return got, err
}

func names(w []walked) []string {
	var out []string
	for _, x := range w {
		out = append(out, x.name)
	}
	return out
}

// Each directory is listed in full (in lexical order when it is smaller
// than a batch) before its subdirectories are walked, in lexical order;
// every entry fs.WalkDir sees is seen, once.
func TestWalkOrder(t *testing.T) {
	root := mkroot(t, map[string]string{
		"b.txt":   "b",
		"0file":   "0",
		"a/z":     "z",
		"a/y/1":   "1",
		"a/x":     "->../b.txt",
		"c/d/e/f": "f",
		"empty/":  "",
	})
	got, err := walkAll(t, t.Context(), root, imageroot.WalkOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"0file", "a", "b.txt", "c", "empty",
		"a/x", "a/y", "a/z",
		"a/y/1",
		"c/d",
		"c/d/e",
		"c/d/e/f",
	}
	if !slices.Equal(names(got), want) {
		t.Errorf("walked %v\nwant %v", got, want)
	}

	// The same entries, with the same types, as fs.WalkDir.
	var std []string
	err = fs.WalkDir(root.FS(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name != "." {
			std = append(std, fmt.Sprintf("%s (%v)", name, d.Type()))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var mine []string
	for _, w := range got {
		mine = append(mine, w.String())
	}
	slices.Sort(std)
	slices.Sort(mine)
	if !slices.Equal(mine, std) {
		t.Errorf("walked %q\nfs.WalkDir %q", mine, std)
	}
}

// A directory larger than a batch: every entry once, each batch sorted,
// subdirectories still walked in lexical order after their parent.
func TestWalkBatches(t *testing.T) {
	files := map[string]string{}
	for i := range 23 {
		files[fmt.Sprintf("f%02d", i)] = ""
	}
	for _, d := range []string{"d3", "d1", "d2"} {
		files[d+"/x"] = ""
	}
	root := mkroot(t, files)
	got, err := walkAll(t, t.Context(), root, imageroot.WalkOptions{Batch: 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := names(got)
	if len(n) != 29 {
		t.Fatalf("walked %d entries, want 29: %v", len(n), n)
	}
	top, rest := n[:26], n[26:]
	if want := []string{"d1/x", "d2/x", "d3/x"}; !slices.Equal(rest, want) {
		t.Errorf("subdirectories walked as %v, want %v", rest, want)
	}
	for i := 0; i < len(top); i += 4 {
		b := top[i:min(i+4, len(top))]
		if !slices.IsSorted(b) {
			t.Errorf("batch %v not sorted", b)
		}
	}
	if len(slices.Compact(slices.Sorted(slices.Values(top)))) != 26 {
		t.Errorf("an entry twice: %v", top)
	}
}

// Symbolic links are reported as links and never followed: not to a
// directory of the image, not out of it, not in a loop.
func TestWalkLinksNotFollowed(t *testing.T) {
	root := mkroot(t, map[string]string{
		"etc/passwd":  "image passwd",
		"lib":         "->usr/lib",
		"usr/lib/x":   "x",
		"host-etc":    "->/etc",
		"escape":      "->../../../../../../../../etc",
		"loop":        "->loop",
		"a/up":        "->..",
		"dangling":    "->nowhere",
		"usr/lib/abs": "->/usr",
	})
	got, err := walkAll(t, t.Context(), root, imageroot.WalkOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	links := map[string]bool{"lib": true, "host-etc": true, "escape": true, "loop": true, "a/up": true, "dangling": true, "usr/lib/abs": true}
	seen := map[string]bool{}
	for _, w := range got {
		if w.err != nil {
			t.Errorf("%v", w)
			continue
		}
		seen[w.name] = true
		if links[w.name] != (w.typ == fs.ModeSymlink) {
			t.Errorf("%v: wrong type", w)
		}
	}
	for l := range links {
		if !seen[l] {
			t.Errorf("link %s not reported", l)
		}
	}
	if len(got) != 13 { // the 7 links, a, etc, etc/passwd, usr, usr/lib, usr/lib/x
		t.Errorf("walked %v, want 13 entries (a link followed?)", got)
	}
}

func TestWalkSkip(t *testing.T) {
	root := mkroot(t, map[string]string{
		"a/1":   "",
		"b/1":   "",
		"b/c/1": "",
		"c/1":   "",
		"c/2":   "",
		"c/3":   "",
		"c/d/1": "",
		"e/1":   "",
	})
	// SkipDir on a directory: not walked. SkipDir on another entry: no
	// more of its directory (c/3 and c/d are not reported, nor c/d
	// walked).
	got, err := walkAll(t, t.Context(), root, imageroot.WalkOptions{}, func(name string, d fs.DirEntry) error {
		if name == "b" || name == "c/2" {
			return fs.SkipDir
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b", "c", "e", "a/1", "c/1", "c/2", "e/1"}; !slices.Equal(names(got), want) {
		t.Errorf("walked %v, want %v", got, want)
	}

	// SkipAll: the walk ends there, without an error.
	got, err = walkAll(t, t.Context(), root, imageroot.WalkOptions{}, func(name string, d fs.DirEntry) error {
		if name == "b/1" {
			return fs.SkipAll
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b", "c", "e", "a/1", "b/1"}; !slices.Equal(names(got), want) {
		t.Errorf("walked %v, want %v", got, want)
	}

	// Any other error ends the walk with it.
	boom := errors.New("boom")
	got, err = walkAll(t, t.Context(), root, imageroot.WalkOptions{}, func(name string, d fs.DirEntry) error {
		if name == "c" {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || len(got) != 3 {
		t.Errorf("walked %v, error %v; want 3 entries and boom", got, err)
	}
}

// At most MaxEntries entries are reported; one more ends the walk with
// ErrTooManyEntries.
func TestWalkMaxEntries(t *testing.T) {
	root := mkroot(t, map[string]string{"a/1": "", "a/2": "", "b/1": "", "c": ""})
	// 7 entries: a, b, c, a/1, a/2, b/1 ... and no more.
	got, err := walkAll(t, t.Context(), root, imageroot.WalkOptions{MaxEntries: 6}, nil)
	if err != nil || len(got) != 6 {
		t.Errorf("exactly MaxEntries: walked %v, error %v", got, err)
	}
	got, err = walkAll(t, t.Context(), root, imageroot.WalkOptions{MaxEntries: 4}, nil)
	if !errors.Is(err, imageroot.ErrTooManyEntries) || !strings.Contains(err.Error(), "more than 4 entries") {
		t.Errorf("error %v, want ErrTooManyEntries", err)
	}
	if want := []string{"a", "b", "c", "a/1"}; !slices.Equal(names(got), want) {
		t.Errorf("walked %v, want %v", got, want)
	}
}

func TestWalkCancelled(t *testing.T) {
	root := mkroot(t, map[string]string{"a/1": "", "a/2": "", "b/1": "", "c": ""})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	got, err := walkAll(t, ctx, root, imageroot.WalkOptions{}, nil)
	if !errors.Is(err, context.Canceled) || len(got) != 0 {
		t.Errorf("cancelled before: walked %v, error %v", got, err)
	}

	ctx, cancel = context.WithCancel(t.Context())
	defer cancel()
	got, err = walkAll(t, ctx, root, imageroot.WalkOptions{}, func(name string, d fs.DirEntry) error {
		if name == "b" {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || !slices.Equal(names(got), []string{"a", "b"}) {
		t.Errorf("cancelled during: walked %v, error %v", got, err)
	}
}

// A directory that cannot be listed is reported to the WalkFunc and the
// walk goes on. Root is not needed: the directory is replaced, between
// its listing and its walk, by a FIFO (which must not be opened: that
// would block) and by a file; one removed is skipped silently.
func TestWalkUnreadableDirectory(t *testing.T) {
	root := mkroot(t, map[string]string{"a/1": "", "b/1": "", "c/1": "", "d/1": ""})
	dir := root.Name()
	replace := func(name string, make func(string) error) {
		p := filepath.Join(dir, name)
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
		if make != nil {
			if err := make(p); err != nil {
				t.Skipf("%s: %v", name, err)
			}
		}
	}
	got, err := walkAll(t, t.Context(), root, imageroot.WalkOptions{}, func(name string, d fs.DirEntry) error {
		switch name {
		case "a":
			replace("a", func(p string) error { return syscall.Mkfifo(p, 0o644) })
		case "b":
			replace("b", func(p string) error { return os.WriteFile(p, nil, 0o644) })
		case "c":
			replace("c", nil)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"a", "b", "c", "d",
		`a: error open /a: not a directory`,
		`b: error open /b: not a directory`,
		"d/1",
	}
	var s []string
	for _, w := range got {
		if w.err != nil {
			s = append(s, w.String())
		} else {
			s = append(s, w.name)
		}
	}
	if !slices.Equal(s, want) {
		t.Errorf("walked %q\nwant %q", s, want)
	}
	for _, w := range got {
		var pe *fs.PathError
		if w.err != nil && (!errors.As(w.err, &pe) || !errors.Is(w.err, syscall.ENOTDIR)) {
			t.Errorf("%s: error %#v, want a PathError wrapping ENOTDIR", w.name, w.err)
		}
	}
}

// Where permissions deny a directory (not to root), the same.
func TestWalkPermissionDenied(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads any directory")
	}
	root := mkroot(t, map[string]string{"a/1": "", "b/1": ""})
	if err := os.Chmod(filepath.Join(root.Name(), "a"), 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(root.Name(), "a"), 0o755) })
	got, err := walkAll(t, t.Context(), root, imageroot.WalkOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || got[2].name != "a" || !errors.Is(got[2].err, fs.ErrPermission) || got[3].name != "b/1" {
		t.Errorf("walked %v", got)
	}
}

// A directory of a million entries is read in batches: the heap must not
// grow with it. (It grew by about 300 MiB with fs.WalkDir, which holds a
// whole directory as fs.DirEntry values, each with its FileInfo.)
func TestWalkMillionEntries(t *testing.T) {
	if testing.Short() {
		t.Skip("makes a million directory entries")
	}
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	if err := os.Mkdir(big, 0o755); err != nil {
		t.Fatal(err)
	}
	const entries = 1_000_000
	var src string
	sources := 0
	for i := range entries {
		if i%60_000 == 0 { // ext4 allows 65,000 links to one inode
			src = filepath.Join(dir, "empty"+strconv.Itoa(i))
			if err := os.WriteFile(src, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			sources++
		}
		if err := os.Link(src, filepath.Join(big, strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	// Sample the heap while the walk runs: its peak is what the
	// sandbox's memory limit sees.
	done := make(chan struct{})
	peak := make(chan uint64)
	go func() {
		var m runtime.MemStats
		var high uint64
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				peak <- high
				return
			case <-tick.C:
				runtime.ReadMemStats(&m)
				high = max(high, m.HeapInuse)
			}
		}
	}()
	var n, regular int64
	err = imageroot.Walk(t.Context(), root, imageroot.WalkOptions{MaxEntries: 2_000_000}, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		n++
		if d.Type().IsRegular() {
			regular++
		}
		return nil
	})
	close(done)
	high := <-peak
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(entries + sources + 1); n != want || regular != want-1 {
		t.Errorf("walked %d entries (%d regular files), want %d", n, regular, want)
	}
	grown := int64(high) - int64(before.HeapInuse)
	if grown > 32<<20 {
		t.Errorf("heap peaked %d MiB above its start during the walk", grown>>20)
	}
	t.Logf("walked %d entries; heap at start %d MiB, peak %d MiB (%+d MiB); total allocated %d MiB",
		n, before.HeapInuse>>20, high>>20, grown>>20, (after.TotalAlloc-before.TotalAlloc)>>20)
}
