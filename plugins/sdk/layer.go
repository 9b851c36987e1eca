package sdk

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

// DefaultLayerLimits apply where a request's LayerLimits field is zero.
// A real layer has thousands to a few hundred thousand entries; 16 million
// empty files, or a gzip bomb, are stopped by these.
var DefaultLayerLimits = LayerLimits{
	MaxLayerEntries: 1_000_000,
	MaxLayerBytes:   8 << 30,
	MaxEntries:      2_000_000,
	MaxBytes:        16 << 30,
}

// Bounds of single entries: longer names or link targets are skipped with
// a warning (Linux's PATH_MAX).
const (
	MaxPathBytes = 4096
	MaxLinkBytes = 4096
)

// maxWarnings is how many warnings one extractor (or the framework) may
// send for one layer; the rest are counted in one last warning.
const maxWarnings = 100

// entriesChunk is how many paths one LayerEntries message carries.
const entriesChunk = 2000

// ErrLayerLimit is the cause of a layer stopped by a limit.
var ErrLayerLimit = errors.New("layer limit")

// errSend marks an error of the host's stream: the run must stop.
var errSend = errors.New("sending to the host failed")

// budget counts what all layers of one request used.
type budget struct {
	lim            LayerLimits
	entries, bytes atomic.Int64 // layers are read concurrently
}

func newBudget(lim LayerLimits) *budget {
	d := DefaultLayerLimits
	if lim.MaxLayerEntries <= 0 {
		lim.MaxLayerEntries = d.MaxLayerEntries
	}
	if lim.MaxLayerBytes <= 0 {
		lim.MaxLayerBytes = d.MaxLayerBytes
	}
	if lim.MaxEntries <= 0 {
		lim.MaxEntries = d.MaxEntries
	}
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = d.MaxBytes
	}
	return &budget{lim: lim}
}

// openFD returns the layer's descriptor as a file, or nil when it is not
// open.
func openFD(fd int, name string) *os.File {
	if fd < 3 {
		return nil
	}
	f := os.NewFile(uintptr(fd), name)
	if f == nil {
		return nil
	}
	if _, err := f.Stat(); err != nil {
		return nil
	}
	return f
}

// ExtractLayer streams one layer blob (gzip, zstd or plain tar, told apart
// by their magic numbers) through the extractors, as a layer-reading
// plugin does for each layer of a request, and sends the results: the
// extractors' items, the layer's entries in chunks and, last, a LayerEnd.
// A limit of lim stops the layer with an error wrapping ErrLayerLimit and
// no LayerEnd.
func ExtractLayer(ctx context.Context, r io.Reader, ly Layer, exs []Extractor, lim LayerLimits, send func(Item) error) error {
	return extractLayer(ctx, r, ly, exs, newBudget(lim), send)
}

func extractLayer(ctx context.Context, r io.Reader, ly Layer, exs []Extractor, b *budget, send func(Item) error) (err error) {
	s := &layerStream{ctx: ctx, ly: ly, b: b, dirs: map[string]struct{}{"/": {}}}
	// Extractors fed by fanOut send at the same time: one at a time
	// reaches send.
	var sendMu sync.Mutex
	s.send = func(it Item) error {
		it.Layer = ly.Index
		sendMu.Lock()
		defer sendMu.Unlock()
		if err := send(it); err != nil {
			return fmt.Errorf("%w: %w", errSend, err)
		}
		return nil
	}
	for _, e := range exs {
		max := e.MaxFileBytes()
		if o, ok := b.lim.MaxFileBytes[e.Name()]; ok && o > 0 {
			max = o
		}
		s.exs = append(s.exs, &extractorRun{e: e, max: max, out: &output{s: s, name: e.Name()}})
	}
	s.fw = &output{s: s}
	defer func() {
		if err != nil {
			err = fmt.Errorf("sdk: layer %d (%s): %w", ly.Index, ly.Digest, err)
		}
	}()

	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(4)
	var plain io.Reader = br
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		// pgzip decompresses ahead in its own goroutine, in blocks of
		// 1 MiB (at most 4 held), while this one parses the tar: the
		// base layer of an image is the critical path of a cold scan.
		gz, err := pgzip.NewReaderN(br, 1<<20, 4)
		if err != nil {
			return fmt.Errorf("gzip: %w", err)
		}
		defer gz.Close()
		plain = gz
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxMemory(256<<20), zstd.WithDecoderMaxWindow(128<<20))
		if err != nil {
			return fmt.Errorf("zstd: %w", err)
		}
		defer zr.Close()
		plain = zr
	}
	s.counted = &countingReader{r: plain, s: s}
	tr := tar.NewReader(s.counted)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("tar: %w", err)
		}
		if err := s.entry(h, tr); err != nil {
			return err
		}
	}
	// Read what follows the tar's end: a bomb may hide there, and the
	// decompressor checks the stream's checksum at its end.
	if _, err := io.Copy(io.Discard, s.counted); err != nil {
		return fmt.Errorf("after the tar: %w", err)
	}
	for _, x := range s.exs {
		if f, ok := x.e.(Finisher); ok {
			if err := s.call(x, func() error { return f.Finish(ctx, s, x.out) }, ""); err != nil {
				return err
			}
		}
	}
	if err := s.flush(true); err != nil {
		return err
	}
	for _, x := range s.exs {
		if err := x.out.overflow(); err != nil {
			return err
		}
	}
	if err := s.fw.overflow(); err != nil {
		return err
	}
	return s.send(Item{LayerEnd: &LayerEnd{Digest: ly.Digest, Entries: s.entries, Bytes: s.counted.n}})
}

// layerStream is one layer being read.
type layerStream struct {
	ctx     context.Context
	ly      Layer
	b       *budget
	send    func(Item) error
	exs     []*extractorRun
	fw      *output // the framework's own warnings
	counted *countingReader
	entries int64
	dirs    map[string]struct{}
	pending LayerEntries
	npend   int
}

type extractorRun struct {
	e   Extractor
	max int64
	out *output
}

// HasDir implements LayerIndex.
func (s *layerStream) HasDir(dir string) bool {
	_, ok := s.dirs[path.Clean("/"+dir)]
	return ok
}

func (s *layerStream) addDirs(p string) {
	for d := path.Dir(p); ; d = path.Dir(d) {
		if _, ok := s.dirs[d]; ok {
			return
		}
		s.dirs[d] = struct{}{}
		if d == "/" {
			return
		}
	}
}

// entry handles one tar header.
func (s *layerStream) entry(h *tar.Header, tr io.Reader) error {
	s.entries++
	if s.entries > s.b.lim.MaxLayerEntries {
		return fmt.Errorf("%w: more than %d entries in one layer", ErrLayerLimit, s.b.lim.MaxLayerEntries)
	}
	if s.b.entries.Add(1) > s.b.lim.MaxEntries {
		return fmt.Errorf("%w: more than %d entries in the image's layers", ErrLayerLimit, s.b.lim.MaxEntries)
	}
	if len(h.Name) > MaxPathBytes {
		return s.fw.Warning(Warning{Message: fmt.Sprintf("an entry's name is longer than %d bytes; skipped", MaxPathBytes)})
	}
	if len(h.Linkname) > MaxLinkBytes {
		return s.fw.Warning(Warning{Message: fmt.Sprintf("a link target is longer than %d bytes; skipped", MaxLinkBytes), Path: clean(h.Name)})
	}
	p := clean(h.Name)
	dir, base := path.Split(p)
	dir = path.Clean(dir)
	if strings.HasPrefix(base, ".wh.") {
		switch {
		case base == ".wh..wh..opq":
			s.pending.OpaqueDirs = append(s.pending.OpaqueDirs, dir)
		case strings.HasPrefix(base, ".wh..wh."):
			// aufs metadata: nothing for the image.
			return nil
		default:
			s.pending.Whiteouts = append(s.pending.Whiteouts, path.Join(dir, base[len(".wh."):]))
		}
		s.npend++
		return s.flush(false)
	}
	if p == "/" {
		return nil
	}
	s.addDirs(p)
	switch h.Typeflag {
	case tar.TypeDir:
		s.dirs[p] = struct{}{}
		return nil
	case tar.TypeLink:
		s.pending.Paths = append(s.pending.Paths, p)
		s.pending.HardLinks = append(s.pending.HardLinks, HardLink{Path: p, Target: clean(h.Linkname)})
		s.npend += 2
		return s.flush(false)
	}
	s.pending.Paths = append(s.pending.Paths, p)
	s.npend++
	if err := s.flush(false); err != nil {
		return err
	}
	var fi FileInfo
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeRegA:
		fi = FileInfo{Path: p, Mode: fs.FileMode(h.Mode).Perm(), Size: h.Size}
	case tar.TypeSymlink:
		fi = FileInfo{Path: p, Mode: fs.ModeSymlink | fs.FileMode(h.Mode).Perm(), LinkTarget: h.Linkname}
	default:
		return nil // devices, FIFOs: nothing to read
	}
	return s.dispatch(fi, tr)
}

// clean makes a tar name an absolute, clean image path ("./a/../b" → "/b").
func clean(name string) string { return path.Clean("/" + name) }

// flush sends the pending entries when a chunk is full, or all of them.
func (s *layerStream) flush(all bool) error {
	if s.npend == 0 || (!all && s.npend < entriesChunk) {
		return nil
	}
	e := s.pending
	s.pending, s.npend = LayerEntries{}, 0
	return s.send(Item{Entries: &e})
}

// dispatch hands one file to every extractor that wants it, reading its
// content once.
func (s *layerStream) dispatch(fi FileInfo, r io.Reader) error {
	var want []*extractorRun
	for _, x := range s.exs {
		if !x.e.Required(fi) {
			continue
		}
		if fi.Mode.IsRegular() && x.max > 0 && fi.Size > x.max {
			if err := x.out.Warning(Warning{Message: fmt.Sprintf("%d bytes, more than the %d this extractor reads; skipped", fi.Size, x.max), Path: fi.Path}); err != nil {
				return err
			}
			continue
		}
		want = append(want, x)
	}
	switch {
	case len(want) == 0:
		return nil
	case len(want) == 1 || !fi.Mode.IsRegular():
		for _, x := range want {
			if err := s.call(x, func() error { return x.e.Extract(s.ctx, fi, io.LimitReader(r, fi.Size), x.out) }, fi.Path); err != nil {
				return err
			}
		}
		return nil
	}
	return s.fanOut(fi, r, want)
}

// call runs one extractor call: its error becomes a warning about path,
// unless the host is gone or the context ended.
func (s *layerStream) call(x *extractorRun, fn func() error, p string) error {
	err := fn()
	if serr := x.out.err(); serr != nil {
		return serr
	}
	if err == nil {
		return nil
	}
	if s.ctx.Err() != nil {
		return s.ctx.Err()
	}
	if errors.Is(err, ErrLayerLimit) {
		return err
	}
	return x.out.Warning(Warning{Message: err.Error(), Path: p})
}

// fanOut streams one file to several extractors at once, each reading
// from its own pipe; an extractor that stops early is dropped from the
// copy.
func (s *layerStream) fanOut(fi FileInfo, r io.Reader, want []*extractorRun) error {
	type lane struct {
		pw   *io.PipeWriter
		dead bool
		err  error
	}
	lanes := make([]*lane, len(want))
	var wg sync.WaitGroup
	for i, x := range want {
		pr, pw := io.Pipe()
		l := &lane{pw: pw}
		lanes[i] = l
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.err = x.e.Extract(s.ctx, fi, pr, x.out)
			pr.CloseWithError(errExtractorDone)
		}()
	}
	buf := make([]byte, 64<<10)
	lr := io.LimitReader(r, fi.Size)
	var rerr error
	for {
		n, err := lr.Read(buf)
		if n > 0 {
			for _, l := range lanes {
				if !l.dead {
					if _, werr := l.pw.Write(buf[:n]); werr != nil {
						l.dead = true
					}
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			rerr = err
			break
		}
	}
	for _, l := range lanes {
		if rerr != nil {
			l.pw.CloseWithError(rerr)
		} else {
			l.pw.Close()
		}
	}
	wg.Wait()
	if rerr != nil {
		return rerr
	}
	for i, x := range want {
		l := lanes[i]
		if err := s.call(x, func() error { return l.err }, fi.Path); err != nil {
			return err
		}
	}
	return nil
}

var errExtractorDone = errors.New("extractor returned")

// countingReader counts the uncompressed bytes of the layer and stops at
// the limits: the defence against decompression bombs.
type countingReader struct {
	r io.Reader
	s *layerStream
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	total := c.s.b.bytes.Add(int64(n))
	if c.n > c.s.b.lim.MaxLayerBytes {
		return n, fmt.Errorf("%w: more than %d uncompressed bytes in one layer", ErrLayerLimit, c.s.b.lim.MaxLayerBytes)
	}
	if total > c.s.b.lim.MaxBytes {
		return n, fmt.Errorf("%w: more than %d uncompressed bytes in the image's layers", ErrLayerLimit, c.s.b.lim.MaxBytes)
	}
	return n, err
}

// output is one extractor's Output for one layer.
type output struct {
	s    *layerStream
	name string

	mu      sync.Mutex
	sendErr error
	warned  int
}

func (o *output) err() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.sendErr
}

func (o *output) emit(it Item) error {
	it.Extractor = o.name
	it.Layer = o.s.ly.Index
	if err := it.Validate(); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.sendErr != nil {
		return o.sendErr
	}
	if err := o.s.send(it); err != nil {
		o.sendErr = err
		return err
	}
	return nil
}

func (o *output) Package(p Package) error { return o.emit(Item{Package: &p}) }
func (o *output) Finding(f Finding) error { return o.emit(Item{Finding: &f}) }
func (o *output) OwnedFiles(f OwnedFiles) error {
	return o.emit(Item{Owned: &f})
}
func (o *output) OSRelease(r OSRelease) error { return o.emit(Item{OSRelease: &r}) }

// Warning sends at most maxWarnings warnings per layer; overflow counts
// the rest.
func (o *output) Warning(w Warning) error {
	o.mu.Lock()
	o.warned++
	n := o.warned
	o.mu.Unlock()
	if n > maxWarnings {
		return nil
	}
	w.Message = strings.ToValidUTF8(w.Message, "\uFFFD")
	w.Path = strings.ToValidUTF8(w.Path, "\uFFFD")
	if !utf8.ValidString(w.Message) || w.Message == "" {
		w.Message = "warning"
	}
	return o.emit(Item{Warning: &w})
}

func (o *output) overflow() error {
	o.mu.Lock()
	n := o.warned - maxWarnings
	o.mu.Unlock()
	if n <= 0 {
		return nil
	}
	return o.emit(Item{Warning: &Warning{Message: fmt.Sprintf("%d more warnings in this layer were not sent", n)}})
}
