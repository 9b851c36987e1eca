// Package dpkgowner finds which Debian package ships a file of an image,
// from dpkg's file lists (/var/lib/dpkg/info/<package>.list). Language
// analyzers use it to record the OS package that owns a language package
// (Debian's python3-urllib3 ships urllib3's egg-info), which decides how it
// is matched.
package dpkgowner

import (
	"bufio"
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/assayhq/assay/analyzers/imageroot"
)

// InfoDir holds the dpkg file lists.
const InfoDir = "/var/lib/dpkg/info"

// Lists reads the file lists of an image once, on first use.
type Lists struct {
	Root *os.Root
	// MaxBytes bounds one list file; MaxFiles the number of lists read.
	MaxBytes, MaxFiles int64
	// Keep selects the listed paths to remember (the analyzer's own kind of
	// file, like ".gemspec" ones), so memory stays small.
	Keep func(path string) bool
	// What names those files in warnings ("Python distributions", "gems").
	What string
	// Warn reports a problem; its error stops the analysis (the host is
	// gone).
	Warn func(path, format string, args ...any) error

	owners map[string]string
	read   bool
	// Read counts the list files read.
	Read int
}

// Owner returns the package whose file list names the image path p ("" if
// none), reading the lists the first time.
func (l *Lists) Owner(ctx context.Context, p string) (string, error) {
	if !l.read {
		l.read = true
		l.owners = map[string]string{}
		if err := l.readAll(ctx); err != nil {
			return "", err
		}
	}
	return l.owners[p], nil
}

// readAll reads every <package>.list. An image without the directory has
// no owners and no warning.
func (l *Lists) readAll(ctx context.Context) error {
	dir, err := imageroot.Resolve(l.Root, InfoDir)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist) && !l.exists(InfoDir):
		return nil
	default:
		return l.Warn(InfoDir, "dpkg file lists not read, none of the %s gets an owner: %v", l.What, err)
	}
	entries, err := fs.ReadDir(l.Root.FS(), dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return l.Warn(InfoDir, "dpkg file lists not read, none of the %s gets an owner: %v", l.What, err)
	}
	n := int64(0)
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		pkg, ok := strings.CutSuffix(e.Name(), ".list")
		if !ok || pkg == "" {
			continue
		}
		if n >= l.MaxFiles {
			return l.Warn(InfoDir, "more than %d dpkg file lists: only the first %d were read", l.MaxFiles, l.MaxFiles)
		}
		n++
		if err := l.readList(path.Join(InfoDir, e.Name()), pkg); err != nil {
			return err
		}
	}
	return nil
}

// readList reads the file list of package pkg ("python3-six", or
// "libpython3.11-stdlib:amd64" of a Multi-Arch: same package).
func (l *Lists) readList(name, pkg string) error {
	pkg, _, _ = strings.Cut(pkg, ":")
	f, fi, err := imageroot.OpenRegular(l.Root, name, l.MaxBytes)
	switch {
	case err == nil:
	case errors.Is(err, imageroot.ErrTooLarge):
		return l.Warn(name, "skipped: %d bytes, over the limit of %d bytes per file: its %s get no owner", fi.Size(), l.MaxBytes, l.What)
	default:
		return l.Warn(name, "skipped: %v: its %s get no owner", err, l.What)
	}
	defer f.Close()
	l.Read++
	sc := bufio.NewScanner(imageroot.Limit(f, l.MaxBytes))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		if line := sc.Text(); l.Keep(line) {
			l.owners[path.Clean("/"+line)] = pkg
		}
	}
	if err := sc.Err(); err != nil {
		return l.Warn(name, "read cut short: %v: some of its %s may get no owner", err, l.What)
	}
	return nil
}

func (l *Lists) exists(name string) bool {
	_, err := l.Root.Lstat(strings.TrimPrefix(name, "/"))
	return !errors.Is(err, fs.ErrNotExist)
}
