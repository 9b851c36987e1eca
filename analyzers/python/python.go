package python

import (
	"context"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/assayhq/assay/plugins/sdk"
)

// Name and Version identify the extractor; its plugin manifest must say
// the same.
const (
	Name    = "python"
	Version = "0.2.0"
)

// Ecosystem is the OSV ecosystem of the packages reported.
const Ecosystem = "PyPI"

// DefaultMaxFileBytes is the largest metadata file read. Metadata files
// are a few KB (a long description makes some a few hundred); only their
// header is parsed.
const DefaultMaxFileBytes = 64 << 20

// Extractor is the Python extractor. It keeps no state: each metadata
// file is one distribution.
type Extractor struct{}

var _ sdk.Extractor = (*Extractor)(nil)

// NewExtractor returns a fresh extractor, for one layer.
func NewExtractor() sdk.Extractor { return &Extractor{} }

// Name implements sdk.Extractor.
func (*Extractor) Name() string { return Name }

// Version implements sdk.Extractor.
func (*Extractor) Version() string { return Version }

// MaxFileBytes implements sdk.Extractor.
func (*Extractor) MaxFileBytes() int64 { return DefaultMaxFileBytes }

// Required implements sdk.Extractor: the metadata file of a distribution
// in a site-packages or dist-packages directory. Links are not followed,
// so only regular files are wanted.
func (*Extractor) Required(f sdk.FileInfo) bool {
	// Most files of a layer fail the cheap suffix test.
	if !f.Mode.IsRegular() || !(strings.HasSuffix(f.Path, "/METADATA") || strings.HasSuffix(f.Path, "/PKG-INFO") || strings.HasSuffix(f.Path, ".egg-info")) {
		return false
	}
	return IsMetadata(f.Path)
}

// Extract implements sdk.Extractor: it parses the metadata's header and
// emits the distribution.
func (*Extractor) Extract(ctx context.Context, f sdk.FileInfo, r io.Reader, out sdk.Output) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("python: %w", err)
	}
	if !IsMetadata(f.Path) {
		return nil
	}
	m, err := ParseMetadata(r)
	if err != nil {
		return fmt.Errorf("python: skipped: %w", err)
	}
	return out.Package(sdk.Package{
		Ecosystem: Ecosystem,
		Name:      m.Name,
		Version:   m.Version,
		PURL:      purl(m.Name, m.Version),
		// The protocol carries only UTF-8; paths may hold any bytes.
		Locations: []string{strings.ToValidUTF8(f.Path, "\uFFFD")},
	})
}

// IsMetadata tells whether an image path names a distribution's core
// metadata in a site-packages or dist-packages directory:
// NAME-VERSION.dist-info/METADATA (wheels, modern pip),
// NAME-VERSION.egg-info/PKG-INFO (setuptools, most Debian python3-*
// packages) or a NAME-VERSION.egg-info file (distutils). Nothing inside
// another distribution's .dist-info or .egg-info directory counts (the
// old tree walk did not enter them).
func IsMetadata(p string) bool {
	dir, base := path.Split(path.Clean("/" + p))
	dir = path.Clean(dir)
	var dist string // the .dist-info or .egg-info, file or directory
	switch {
	case base == "METADATA" && isDistName(path.Base(dir), ".dist-info"):
		dist = dir
	case base == "PKG-INFO" && isDistName(path.Base(dir), ".egg-info"):
		dist = dir
	case isDistName(base, ".egg-info"):
		dist = path.Join(dir, base)
	default:
		return false
	}
	parent := path.Dir(dist)
	if !isSitePackages(path.Base(parent)) {
		return false
	}
	// No ancestor may itself be a distribution's directory.
	for d := parent; d != "/"; d = path.Dir(d) {
		b := path.Base(d)
		if (isDistName(b, ".dist-info") || isDistName(b, ".egg-info")) && isSitePackages(path.Base(path.Dir(d))) {
			return false
		}
	}
	return true
}

func isDistName(base, suffix string) bool {
	return strings.HasSuffix(base, suffix) && len(base) > len(suffix)
}

func isSitePackages(base string) bool { return base == "site-packages" || base == "dist-packages" }

// purl returns pkg:pypi/<PEP 503 name>@<version>.
func purl(name, version string) string {
	return packageurl.NewPackageURL(packageurl.TypePyPi, "", NormalizeName(name), version, nil, "").ToString()
}
