package imageroot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
)

// DefaultWalkBatch is how many directory entries Walk reads at a time when
// WalkOptions sets no batch size.
const DefaultWalkBatch = 1000

// ErrTooManyEntries is returned (wrapped) by Walk when it meets one entry
// more than WalkOptions.MaxEntries allows.
var ErrTooManyEntries = errors.New("too many entries")

// WalkOptions bound a Walk.
type WalkOptions struct {
	// MaxEntries is how many entries at most are passed to the
	// WalkFunc (<= 0: no limit). On meeting one more, Walk stops and
	// returns an error wrapping ErrTooManyEntries, so that the caller
	// can warn once.
	MaxEntries int64
	// Batch is how many entries are read from a directory at a time
	// (<= 0: DefaultWalkBatch). Memory grows with it, not with the size
	// of a directory.
	Batch int
}

// WalkFunc is called by Walk for each entry of each directory walked, with
// name the entry's path relative to the root ("usr/bin/env"), free of
// links, and d its entry (not followed: a symbolic link is reported as
// one, with its type). It may return fs.SkipDir for a directory not to be
// walked, fs.SkipDir for any other entry to leave its directory (no more
// of its entries are reported and none of its subdirectories is walked),
// fs.SkipAll to end the walk (Walk returns nil), or another error to end
// the walk with that error.
//
// When a directory cannot be opened or listed (fully or in part), fn is
// called once for it with d nil and err saying why (name "." for the
// root); the walk then goes on with the rest of the image unless fn
// returns fs.SkipAll or another error. err is nil in every other call.
type WalkFunc func(name string, d fs.DirEntry, err error) error

// Walk walks the image below root depth first, calling fn for every entry
// as its directory is read, without following symbolic links. It is
// fs.WalkDir made safe for hostile images:
//
//   - A directory is read in batches of opts.Batch entries and only the
//     names of its subdirectories still to walk are kept, so a directory
//     of a million files costs one batch of fs.DirEntry values, not a
//     million.
//   - Subdirectories are walked in lexical order, each after its parent
//     was read in full. Within one batch entries are reported in
//     lexical order, so a directory smaller than a batch is reported in
//     lexical order; a larger one batch by batch, in the order the file
//     system lists it.
//   - At most opts.MaxEntries entries are reported (ErrTooManyEntries).
//   - ctx is checked before every entry.
//   - A directory that cannot be read is reported to fn, not an abort.
//
// The root itself is not passed to fn.
func Walk(ctx context.Context, root *os.Root, opts WalkOptions, fn WalkFunc) error {
	w := &walker{ctx: ctx, root: root, opts: opts, fn: fn}
	if w.opts.Batch <= 0 {
		w.opts.Batch = DefaultWalkBatch
	}
	err := w.walk()
	if errors.Is(err, fs.SkipAll) {
		return nil
	}
	return err
}

type walker struct {
	ctx     context.Context
	root    *os.Root
	opts    WalkOptions
	fn      WalkFunc
	entries int64 // entries passed to fn
}

// frame is a directory being walked: its path and the sorted names of its
// subdirectories, of which those from next on are still to walk.
type frame struct {
	dir     string
	subdirs names
	next    int
}

// names is a list of file names packed into one buffer: 8 bytes per name
// besides the name itself, where a []string costs 16 and an allocation
// per name. Walking a directory of a million subdirectories, the heap
// peaked about 30 MiB above its start (60 MiB with a []string).
type names struct {
	buf []byte
	at  []span
}

type span struct{ off, n uint32 }

func (l *names) len() int { return len(l.at) }

func (l *names) get(i int) []byte { return l.buf[l.at[i].off : l.at[i].off+l.at[i].n] }

func (l *names) add(name string) error {
	if uint64(len(l.buf))+uint64(len(name)) > math.MaxUint32 {
		return errors.New("too many subdirectories")
	}
	l.at = append(l.at, span{off: uint32(len(l.buf)), n: uint32(len(name))})
	l.buf = append(l.buf, name...)
	return nil
}

func (l *names) sort() {
	slices.SortFunc(l.at, func(a, b span) int {
		return bytes.Compare(l.buf[a.off:a.off+a.n], l.buf[b.off:b.off+b.n])
	})
}

func (w *walker) walk() error {
	subdirs, err := w.list(".")
	if err != nil {
		return err
	}
	stack := []frame{{dir: ".", subdirs: subdirs}}
	for len(stack) > 0 {
		top := &stack[len(stack)-1]
		if top.next == top.subdirs.len() {
			stack[len(stack)-1] = frame{}
			stack = stack[:len(stack)-1]
			continue
		}
		dir := path.Join(top.dir, string(top.subdirs.get(top.next)))
		top.next++
		subdirs, err := w.list(dir)
		if err != nil {
			return err
		}
		if subdirs.len() > 0 {
			stack = append(stack, frame{dir: dir, subdirs: subdirs})
		}
	}
	return nil
}

// list reads dir in batches, passing each entry to fn, and returns the
// names of the subdirectories to walk, sorted.
func (w *walker) list(dir string) (names, error) {
	if err := w.ctx.Err(); err != nil {
		return names{}, err
	}
	// O_DIRECTORY: a FIFO found where a directory was listed is not
	// opened (opening it would block). os.Root keeps the open inside the
	// image in any case.
	f, err := w.root.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return names{}, nil // removed since it was listed
		}
		return names{}, w.failed(dir, "open", err)
	}
	defer f.Close()
	var subdirs names
	for {
		batch, rerr := f.ReadDir(w.opts.Batch)
		slices.SortFunc(batch, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
		for _, d := range batch {
			if err := w.ctx.Err(); err != nil {
				return names{}, err
			}
			if w.opts.MaxEntries > 0 && w.entries >= w.opts.MaxEntries {
				return names{}, fmt.Errorf("more than %d entries in the image, the walk stopped in %s: %w",
					w.opts.MaxEntries, imagePath(dir), ErrTooManyEntries)
			}
			w.entries++
			name := path.Join(dir, d.Name())
			err := w.fn(name, d, nil)
			switch {
			case err == nil:
				if d.IsDir() {
					if err := subdirs.add(d.Name()); err != nil {
						return names{}, fmt.Errorf("%s: %w", imagePath(dir), err)
					}
				}
			case errors.Is(err, fs.SkipDir) && d.IsDir():
			case errors.Is(err, fs.SkipDir):
				return names{}, nil // leave dir
			default:
				return names{}, err
			}
		}
		if rerr == io.EOF || (rerr == nil && len(batch) == 0) {
			break
		}
		if rerr != nil {
			// Walk what was listed before the error.
			if err := w.failed(dir, "readdirent", rerr); err != nil {
				return names{}, err
			}
			break
		}
	}
	subdirs.sort()
	return subdirs, nil
}

// failed reports a directory that could not be read to fn; only an error
// that must end the walk is returned.
func (w *walker) failed(dir, op string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	err = w.fn(dir, nil, &fs.PathError{Op: op, Path: imagePath(dir), Err: err})
	if err == nil || errors.Is(err, fs.SkipDir) {
		return nil
	}
	return err
}

// imagePath turns a path relative to the root into an image path.
func imagePath(p string) string {
	if p == "." {
		return "/"
	}
	return "/" + p
}
