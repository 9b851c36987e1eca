// Package imageroot opens files of a container image's root file system
// the way a process inside that image would see them, and never outside
// it.
//
// Every access goes through an *os.Root, which refuses any path or
// symbolic link that leads out of the root. os.Root also refuses absolute
// links outright ("path escapes from parent"), but images are full of
// them (/etc/alternatives, /etc/localtime, and sometimes
// /etc/os-release -> /usr/lib/os-release), and inside the image they mean
// the image's own files. So Resolve walks a path one component at a time
// with root.Lstat and root.Readlink, with chroot semantics: an absolute
// target starts again at the root, and ".." at the root stays there. At
// most MaxLinks links are followed, as Linux does; past that, or in a
// loop, it fails with ELOOP. The resolved path is then opened through the
// same os.Root, so a mistake here can still not lead out of the image.
//
// The package must stay free of the daemon and of containerd: analyzers
// import it inside the sandbox.
package imageroot

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
)

// MaxLinks is how many symbolic links one resolution follows before it
// fails with ELOOP: Linux's limit (MAXSYMLINKS).
const MaxLinks = 40

// ErrTooLarge is returned (wrapped) when a file is larger than the limit
// the caller set.
var ErrTooLarge = errors.New("file larger than the limit")

// ErrNotRegular is returned (wrapped) when a path names a directory,
// device, FIFO or socket where a regular file was expected. A FIFO is
// never opened: opening one would block.
var ErrNotRegular = errors.New("not a regular file")

// Resolve returns the path, relative to root and free of symbolic links,
// that name designates inside the image. name is an image path: absolute
// ("/etc/os-release") or relative to the image root, which is the same.
// A missing component fails with an error satisfying
// errors.Is(err, fs.ErrNotExist); too many links fail with syscall.ELOOP.
// The root itself resolves to ".".
func Resolve(root *os.Root, name string) (string, error) {
	resolved := "" // clean, relative, without links; "" is the root
	rest := name
	links := 0
	for rest != "" {
		var part string
		part, rest, _ = strings.Cut(rest, "/")
		switch part {
		case "", ".":
			continue
		case "..":
			// At the root, ".." is the root, as in a chroot.
			if resolved != "" {
				resolved = path.Dir(resolved)
				if resolved == "." {
					resolved = ""
				}
			}
			continue
		}
		next := path.Join(resolved, part)
		fi, err := root.Lstat(next)
		if err != nil {
			return "", &fs.PathError{Op: "resolve", Path: name, Err: unwrapPathError(err)}
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			// A regular file with more components after it fails at
			// the next Lstat (ENOTDIR), as the kernel would.
			resolved = next
			continue
		}
		if links++; links > MaxLinks {
			return "", &fs.PathError{Op: "resolve", Path: name, Err: syscall.ELOOP}
		}
		target, err := root.Readlink(next)
		if err != nil {
			return "", &fs.PathError{Op: "resolve", Path: name, Err: unwrapPathError(err)}
		}
		if strings.HasPrefix(target, "/") {
			resolved = ""
		}
		// A link target is at most PATH_MAX bytes, and at most MaxLinks
		// of them are spliced in, so rest stays bounded.
		if rest == "" {
			rest = target
		} else {
			rest = target + "/" + rest
		}
	}
	if resolved == "" {
		return ".", nil
	}
	return resolved, nil
}

// unwrapPathError drops os.Root's PathError (which names the resolved
// path) so that the caller's error names the image path it asked for.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Open opens name inside root for reading, resolving links inside the
// image.
func Open(root *os.Root, name string) (*os.File, error) {
	p, err := Resolve(root, name)
	if err != nil {
		return nil, err
	}
	return root.Open(p)
}

// Stat returns the FileInfo of what name designates inside the image
// (links followed inside the image).
func Stat(root *os.Root, name string) (fs.FileInfo, error) {
	p, err := Resolve(root, name)
	if err != nil {
		return nil, err
	}
	return root.Stat(p)
}

// OpenRegular opens name for reading if it designates a regular file of at
// most maxBytes bytes (maxBytes <= 0: any size). It checks before opening,
// so a FIFO or device is never opened and a large file is never read; the
// errors wrap ErrNotRegular and ErrTooLarge. The caller should still read
// through Limit: a file may grow after the check.
func OpenRegular(root *os.Root, name string, maxBytes int64) (*os.File, fs.FileInfo, error) {
	p, err := Resolve(root, name)
	if err != nil {
		return nil, nil, err
	}
	fi, err := root.Stat(p)
	if err != nil {
		return nil, nil, &fs.PathError{Op: "stat", Path: name, Err: unwrapPathError(err)}
	}
	if !fi.Mode().IsRegular() {
		return nil, fi, fmt.Errorf("%s: %w (%s)", name, ErrNotRegular, kind(fi.Mode()))
	}
	if maxBytes > 0 && fi.Size() > maxBytes {
		return nil, fi, fmt.Errorf("%s: %w: %d bytes, limit %d", name, ErrTooLarge, fi.Size(), maxBytes)
	}
	f, err := root.Open(p)
	if err != nil {
		return nil, nil, &fs.PathError{Op: "open", Path: name, Err: unwrapPathError(err)}
	}
	return f, fi, nil
}

// kind names a file type for an error message.
func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "type " + m.Type().String()
}

// Limit returns a reader of r that fails with an error wrapping
// ErrTooLarge once more than maxBytes bytes have been read (maxBytes <= 0:
// r itself).
func Limit(r io.Reader, maxBytes int64) io.Reader {
	if maxBytes <= 0 {
		return r
	}
	return &limitReader{r: r, left: maxBytes, max: maxBytes}
}

type limitReader struct {
	r    io.Reader
	left int64 // bytes that may still be read
	max  int64 // the limit, for the error
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, l.max)
	}
	// Read one byte past the limit to tell "exactly the limit" from
	// "more than the limit".
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		n += int(l.left) // drop the byte past the limit
		return n, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, l.max)
	}
	return n, err
}
