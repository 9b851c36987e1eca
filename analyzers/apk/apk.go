package apk

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/assayhq/assay/analyzers/distro"
	"github.com/assayhq/assay/plugins/sdk"
)

// Name and Version are what the extractor (and its plugin) call
// themselves.
const (
	Name    = "apk"
	Version = "0.2.0"
)

// InstalledFile is apk's installed database, as an image path.
const InstalledFile = "/lib/apk/db/installed"

// DefaultMaxFileBytes bounds the database. Real ones are a few MB; this
// only stops a hostile image.
const DefaultMaxFileBytes = 64 << 20

// Bounds of the file lists one layer's extractor emits: real databases
// list tens of thousands of files, a few MB of paths.
const (
	MaxOwnedPaths = 200_000
	MaxOwnedBytes = 32 << 20
)

// Bounds of one OwnedFiles message, well under gRPC's default 4 MiB
// message: a package with more files is sent in several.
const (
	ownedChunkPaths = 10_000
	ownedChunkBytes = 1 << 20
)

// Ecosystem is the family the packages are emitted with; the image merge
// (distro.Finish) makes it the release's ("Alpine:v3.20").
const Ecosystem = "Alpine"

// Extractor reads apk's installed database of a layer. A fresh one is made
// for each layer (NewExtractor).
type Extractor struct {
	// What the layer's file lists used so far, against MaxOwnedPaths and
	// MaxOwnedBytes (a layer may hold the database twice).
	ownedPaths, ownedBytes int
}

var _ sdk.Extractor = (*Extractor)(nil)

// NewExtractor returns an extractor for one layer.
func NewExtractor() sdk.Extractor { return &Extractor{} }

// Name implements sdk.Extractor.
func (*Extractor) Name() string { return Name }

// Version implements sdk.Extractor.
func (*Extractor) Version() string { return Version }

// MaxFileBytes implements sdk.Extractor.
func (*Extractor) MaxFileBytes() int64 { return DefaultMaxFileBytes }

// Required implements sdk.Extractor: the installed database, as a regular
// file (a link there is never followed).
func (*Extractor) Required(f sdk.FileInfo) bool {
	return f.Path == InstalledFile && f.Mode.IsRegular()
}

// Extract implements sdk.Extractor: one package per well-formed paragraph,
// each followed by the files it lists. Only errors that must stop the
// layer (cancellation, a layer limit, the host gone) are returned;
// anything wrong with the file is a warning.
func (e *Extractor) Extract(ctx context.Context, f sdk.FileInfo, r io.Reader, out sdk.Output) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("apk: %w", err)
	}
	var (
		stop           error
		packages       int
		malformed      int
		firstMalformed error
		dropped, bad   int
	)
	lim := FileLimits{Paths: MaxOwnedPaths - e.ownedPaths, Bytes: MaxOwnedBytes - e.ownedBytes}
	err := ParseInstalledFiles(r, lim, func(p Paragraph, fl Files) error {
		if err := ctx.Err(); err != nil {
			stop = err
			return err
		}
		if p.Err != nil {
			malformed++
			if firstMalformed == nil {
				firstMalformed = p.Err
			}
			return nil
		}
		packages++
		dropped += fl.Dropped
		bad += fl.Bad
		if err := e.emit(f.Path, p, fl, out); err != nil {
			stop = err
			return err
		}
		return nil
	})
	if stop != nil {
		return fmt.Errorf("apk: %w", stop)
	}
	if err != nil && (ctx.Err() != nil || errors.Is(err, sdk.ErrLayerLimit)) {
		return err
	}
	if malformed > 0 {
		if err := out.Warning(sdk.Warning{Path: f.Path, Message: fmt.Sprintf("malformed paragraphs skipped: %d (the first: %v)", malformed, firstMalformed)}); err != nil {
			return err
		}
	}
	if bad > 0 {
		if err := out.Warning(sdk.Warning{Path: f.Path, Message: fmt.Sprintf("file entries (R:) that name no file skipped: %d", bad)}); err != nil {
			return err
		}
	}
	if dropped > 0 {
		if err := out.Warning(sdk.Warning{Path: f.Path, Message: fmt.Sprintf("file lists cut short: %d files over the limit of %d paths (%d bytes) per layer not reported", dropped, MaxOwnedPaths, MaxOwnedBytes)}); err != nil {
			return err
		}
	}
	if err != nil {
		return out.Warning(sdk.Warning{Path: f.Path, Message: fmt.Sprintf("read cut short after %d packages: %v", packages, err)})
	}
	return nil
}

// emit sends one package and its files.
func (e *Extractor) emit(loc string, p Paragraph, fl Files, out sdk.Output) error {
	source := p.Origin
	if source == "" {
		source = p.Name
	}
	if err := out.Package(sdk.Package{
		OS:            distro.Apk,
		Ecosystem:     Ecosystem,
		Name:          p.Name,
		Version:       p.Version,
		Arch:          p.Arch,
		SourceName:    source,
		SourceVersion: p.Version,
		Locations:     []string{loc},
	}); err != nil {
		return err
	}
	for paths := fl.Paths; len(paths) > 0; {
		n, size := 0, 0
		for n < len(paths) && n < ownedChunkPaths && size+len(paths[n]) <= ownedChunkBytes {
			size += len(paths[n])
			n++
		}
		if n == 0 { // a path over ownedChunkBytes: not from ParseInstalledFiles
			size, n = len(paths[0]), 1
		}
		e.ownedPaths += n
		e.ownedBytes += size
		if err := out.OwnedFiles(sdk.OwnedFiles{OS: distro.Apk, Owner: p.Name, Location: loc, Paths: paths[:n]}); err != nil {
			return err
		}
		paths = paths[n:]
	}
	return nil
}
