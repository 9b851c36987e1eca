package osrelease

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"

	"github.com/assayhq/assay/plugins/sdk"
)

// Name and Version identify the os-release extractor.
const (
	Name    = "os-release"
	Version = "0.1.0"
)

// Extractor sends each layer's os-release files, and links at their
// paths, for the image merge to pick the image's own (a layer cannot:
// /etc/os-release is usually a link to ../usr/lib/os-release, and either
// may sit in another layer).
type Extractor struct{}

var _ sdk.Extractor = Extractor{}

// NewExtractor returns the os-release extractor.
func NewExtractor() sdk.Extractor { return Extractor{} }

// Name implements sdk.Extractor.
func (Extractor) Name() string { return Name }

// Version implements sdk.Extractor.
func (Extractor) Version() string { return Version }

// MaxFileBytes implements sdk.Extractor.
func (Extractor) MaxFileBytes() int64 { return MaxBytes }

// Required implements sdk.Extractor: regular files and symbolic links at
// Paths.
func (Extractor) Required(f sdk.FileInfo) bool {
	return (f.Mode.IsRegular() || f.Mode.Type() == fs.ModeSymlink) && slices.Contains(Paths, f.Path)
}

// Extract implements sdk.Extractor: a link is sent with its target, which
// the merge resolves in the merged image (never outside it); a file with
// its parsed fields.
func (Extractor) Extract(ctx context.Context, f sdk.FileInfo, r io.Reader, out sdk.Output) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("osrelease: %w", err)
	}
	if !f.Mode.IsRegular() {
		// The protocol carries only UTF-8; a target that is not cannot
		// name an os-release file anyway.
		return out.OSRelease(sdk.OSRelease{Path: f.Path, LinkTarget: strings.ToValidUTF8(f.LinkTarget, "\uFFFD")})
	}
	// The request may raise the framework's cap: MaxBytes still holds.
	if f.Size > MaxBytes {
		return fmt.Errorf("osrelease: %d bytes, larger than the limit of %d bytes", f.Size, MaxBytes)
	}
	kv, err := Parse(io.LimitReader(r, MaxBytes))
	if err != nil {
		return fmt.Errorf("osrelease: %w", err)
	}
	return out.OSRelease(sdk.OSRelease{Path: f.Path, Fields: kv})
}

// FromItem is the Release of an os-release file an extractor sent (not of
// a link: resolve it first).
func FromItem(r sdk.OSRelease) Release {
	rel := FromFields(r.Fields)
	rel.Path = r.Path
	return rel
}
