package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/remotes"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// DownloadsAtOnce is how many layer blobs of one image download at the
// same time, started in layer order (the order the SDK reads them in, so
// that a reader that takes one layer at a time never waits for a
// download that waits for it).
const DownloadsAtOnce = 4

// copyChunk is the size of the reads and writes of a download.
const copyChunk = 1 << 20

// feedPipeBytes is the pipe buffer asked for: the download runs this far
// ahead of the reader.
const feedPipeBytes = 1 << 20

// feeds are the layer downloads of one Fetch. Each needed layer blob is
// downloaded once into containerd's content store (committed with its
// digest verified) and its bytes are copied, as they arrive, into one
// pipe per layer of the image that needs it (the same blob may be two
// layers). A reader that goes away is dropped from the copy; the
// download goes on to the store.
type feeds struct {
	mu     sync.Mutex
	by     map[string]*feed // by layer digest
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type feed struct {
	readers []*os.File // read ends not yet handed out
	writers []*os.File
	done    chan struct{}
	err     error
}

// startFeeds starts downloading img's layers that skip does not name.
func (im *Images) startFeeds(ctx context.Context, resolver remotes.Resolver, ref string, img *Image, skip func(string) bool) error {
	fetcher, err := resolver.Fetcher(ctx, ref)
	if err != nil {
		return fmt.Errorf("images: fetcher for %s: %w", ref, err)
	}
	fs := &feeds{by: map[string]*feed{}}
	var order []ocispec.Descriptor
	for _, l := range img.Layers {
		if skip(l.Digest) {
			continue
		}
		f := fs.by[l.Digest]
		if f == nil {
			f = &feed{done: make(chan struct{})}
			fs.by[l.Digest] = f
			// No media type: the registry's blob endpoint serves it.
			order = append(order, ocispec.Descriptor{Digest: digest.Digest(l.Digest), Size: l.Size})
		}
		r, w, err := os.Pipe()
		if err != nil {
			fs.closeAll()
			return fmt.Errorf("images: %w", err)
		}
		// A bigger buffer lets the download run ahead; the default is
		// fine if the kernel refuses.
		unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, feedPipeBytes)
		f.readers = append(f.readers, r)
		f.writers = append(f.writers, w)
	}
	img.feeds = fs
	if len(order) == 0 {
		return nil
	}
	dctx, cancel := context.WithCancel(ctx)
	fs.cancel = cancel
	slots := make(chan struct{}, DownloadsAtOnce)
	fs.wg.Add(1)
	go func() {
		defer fs.wg.Done()
		for _, desc := range order {
			f := fs.by[desc.Digest.String()]
			select {
			case slots <- struct{}{}:
			case <-dctx.Done():
				f.finish(dctx.Err())
				continue
			}
			fs.wg.Add(1)
			go func() {
				defer fs.wg.Done()
				defer func() { <-slots }()
				start := time.Now()
				err := im.download(dctx, fetcher, desc, f)
				if err != nil {
					err = fmt.Errorf("images: layer %s: %w", desc.Digest, err)
				}
				im.o.Logger.Debug("layer downloaded", "layer", desc.Digest, "bytes", desc.Size, "took", time.Since(start).Round(time.Millisecond), "err", err)
				f.finish(err)
			}()
		}
	}()
	return nil
}

// download fetches desc into the content store, copying what it reads
// into f's pipes.
func (im *Images) download(ctx context.Context, fetcher remotes.Fetcher, desc ocispec.Descriptor, f *feed) error {
	if desc.Size <= 0 {
		return fmt.Errorf("%w: size %d", ErrLimit, desc.Size)
	}
	cs := im.c.ContentStore()
	cw, err := content.OpenWriter(ctx, cs, content.WithRef(remotes.MakeRefKey(ctx, desc)), content.WithDescriptor(desc))
	if cerrdefs.IsAlreadyExists(err) {
		// In the store already (another scan committed it meanwhile):
		// the readers get it from there.
		return im.copyStored(ctx, desc, f)
	}
	if err != nil {
		return err
	}
	defer cw.Close()
	// A download a crash interrupted resumes from the start, so that the
	// readers see every byte.
	if st, err := cw.Status(); err == nil && st.Offset > 0 {
		if err := cw.Truncate(0); err != nil {
			return err
		}
	}
	rc, err := fetcher.Fetch(ctx, desc)
	if err != nil {
		return err
	}
	defer rc.Close()
	// Big chunks: each write to the store is a call to containerd.
	n, err := io.CopyBuffer(struct{ io.Writer }{cw}, io.TeeReader(io.LimitReader(rc, desc.Size+1), f), make([]byte, copyChunk))
	if err != nil {
		return err
	}
	if n != desc.Size {
		return fmt.Errorf("%d bytes, the manifest says %d", n, desc.Size)
	}
	if err := cw.Commit(ctx, desc.Size, desc.Digest); err != nil && !cerrdefs.IsAlreadyExists(err) {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// copyStored feeds f's pipes from a blob already in the content store.
func (im *Images) copyStored(ctx context.Context, desc ocispec.Descriptor, f *feed) error {
	ra, err := im.c.ContentStore().ReaderAt(ctx, desc)
	if err != nil {
		return err
	}
	defer ra.Close()
	_, err = io.CopyBuffer(f, struct{ io.Reader }{io.NewSectionReader(ra, 0, desc.Size)}, make([]byte, copyChunk))
	return err
}

// Write copies p into every pipe still read; a pipe whose reader is gone
// is dropped. It never fails: the download goes on to the store.
func (f *feed) Write(p []byte) (int, error) {
	live := f.writers[:0]
	for _, w := range f.writers {
		if _, err := w.Write(p); err != nil {
			w.Close()
			continue
		}
		live = append(live, w)
	}
	f.writers = live
	return len(p), nil
}

// finish ends the pipes (their readers see EOF, early if err) and
// records the outcome.
func (f *feed) finish(err error) {
	for _, w := range f.writers {
		w.Close()
	}
	f.writers = nil
	f.err = err
	close(f.done)
}

// open hands out a pipe of layer digest being downloaded, or, when every
// pipe is taken, waits for the download and returns nil (the caller then
// opens the stored blob). nil, nil when no download of it was started.
func (fs *feeds) open(ctx context.Context, layerDigest string) (*os.File, error) {
	if fs == nil {
		return nil, nil
	}
	fs.mu.Lock()
	f := fs.by[layerDigest]
	if f == nil {
		fs.mu.Unlock()
		return nil, nil
	}
	if n := len(f.readers); n > 0 {
		r := f.readers[n-1]
		f.readers = f.readers[:n-1]
		fs.mu.Unlock()
		return r, nil
	}
	fs.mu.Unlock()
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return nil, f.err
}

// WaitLayers waits for the layer downloads Fetch started and returns
// their errors: nil means every blob read through OpenLayer was committed
// to the content store with its digest verified.
func (img *Image) WaitLayers(ctx context.Context) error {
	fs := img.feeds
	if fs == nil {
		return nil
	}
	var errs []error
	for _, f := range fs.by {
		select {
		case <-f.done:
			if f.err != nil {
				errs = append(errs, f.err)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return errors.Join(errs...)
}

// stop cancels the downloads, closes the pipes not handed out (a download
// blocked on one goes on), and waits for every download goroutine.
func (fs *feeds) stop() {
	if fs == nil {
		return
	}
	if fs.cancel != nil {
		fs.cancel()
	}
	fs.mu.Lock()
	for _, f := range fs.by {
		for _, r := range f.readers {
			r.Close()
		}
		f.readers = nil
	}
	fs.mu.Unlock()
	fs.wg.Wait()
}

// closeAll closes every pipe end (a Fetch that failed before starting).
func (fs *feeds) closeAll() {
	for _, f := range fs.by {
		for _, r := range f.readers {
			r.Close()
		}
		for _, w := range f.writers {
			w.Close()
		}
	}
}
