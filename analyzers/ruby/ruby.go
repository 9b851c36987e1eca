package ruby

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
	Name    = "ruby"
	Version = "0.2.0"
)

// Ecosystem is the OSV ecosystem of the packages reported.
const Ecosystem = "RubyGems"

// DefaultMaxFileBytes is the largest specification read. Specifications
// are a few KB (a long file list makes some a few hundred).
const DefaultMaxFileBytes = 64 << 20

// Extractor is the Ruby extractor. It keeps no state: each specification
// is one gem.
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

// Required implements sdk.Extractor: an installed gem's specification.
// Links are not followed, so only regular files are wanted.
func (*Extractor) Required(f sdk.FileInfo) bool {
	return f.Mode.IsRegular() && strings.HasSuffix(f.Path, ".gemspec") && IsSpecification(f.Path)
}

// Extract implements sdk.Extractor: it parses the specification, without
// evaluating it, and emits the gem.
func (*Extractor) Extract(ctx context.Context, f sdk.FileInfo, r io.Reader, out sdk.Output) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ruby: %w", err)
	}
	if !IsSpecification(f.Path) {
		return nil
	}
	g, err := ParseGemspec(r)
	if err != nil {
		return fmt.Errorf("ruby: skipped: %w", err)
	}
	return out.Package(sdk.Package{
		Ecosystem: Ecosystem,
		Name:      g.Name,
		Version:   g.Version,
		PURL:      purl(g),
		// The protocol carries only UTF-8; paths may hold any bytes.
		Locations: []string{strings.ToValidUTF8(f.Path, "\uFFFD")},
	})
}

// IsSpecification tells whether an image path names an installed gem's
// specification: a NAME.gemspec file in a directory named specifications
// (GEM_HOME/specifications: /usr/lib/ruby/gems/3.1.0/specifications,
// /var/lib/gems/3.1.0/specifications, /usr/local/bundle/specifications,
// vendor/bundle/ruby/3.1.0/specifications, Debian's
// /usr/share/rubygems-integration/all/specifications) or in its default
// subdirectory (the default gems that come with Ruby).
func IsSpecification(name string) bool {
	dir, base := path.Split(path.Clean("/" + name))
	if !strings.HasSuffix(base, ".gemspec") || len(base) == len(".gemspec") {
		return false
	}
	dir = path.Clean(dir)
	if path.Base(dir) == "default" {
		dir = path.Dir(dir)
	}
	return path.Base(dir) == "specifications"
}

// purl returns pkg:gem/<name>@<version>, with the platform qualifier
// when the gem is built for one (the purl specification's gem type).
func purl(g Gemspec) string {
	var q packageurl.Qualifiers
	if g.Platform != "" && g.Platform != PlatformRuby {
		q = packageurl.Qualifiers{{Key: "platform", Value: g.Platform}}
	}
	return packageurl.NewPackageURL(packageurl.TypeGem, "", g.Name, g.Version, q, "").ToString()
}
