package sdk

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Kinds of items a plugin produces, as listed in Description.Kinds.
// Warnings are always allowed: KindWarning is what Item.Kind says of one,
// and is not listed in Description.Kinds.
const (
	KindPackage = "package"
	KindFinding = "finding"
	KindWarning = "warning"
)

// Description is what a plugin says about itself.
type Description struct {
	Name    string
	Version string
	// Kinds the plugin produces: KindPackage, KindFinding.
	Kinds []string
	// Ecosystems the plugin knows, in OSV spelling ("Debian", "Go").
	Ecosystems []string
	// Resources the plugin would like. The host clamps them to its caps;
	// zero means "the host's cap".
	Resources Resources
	// Extractors are the extractors of a plugin that reads layers
	// (ServeExtractors); empty for a tree analyzer.
	Extractors []ExtractorInfo
}

// ExtractorInfo names one extractor of a layer-reading plugin.
type ExtractorInfo struct {
	Name    string
	Version string
	// MaxFileBytes is the largest file it reads unless the request
	// overrides it.
	MaxFileBytes int64
}

// Produces reports whether kind is among d.Kinds.
func (d Description) Produces(kind string) bool {
	for _, k := range d.Kinds {
		if k == kind {
			return true
		}
	}
	return false
}

// Validate checks what every description must have.
func (d Description) Validate() error {
	if d.Name == "" {
		return errors.New("sdk: description without a name")
	}
	if d.Version == "" {
		return fmt.Errorf("sdk: description of %q without a version", d.Name)
	}
	for _, k := range d.Kinds {
		if k != KindPackage && k != KindFinding {
			return fmt.Errorf("sdk: description of %q: unknown kind %q", d.Name, k)
		}
	}
	if d.Resources.MemoryBytes < 0 || d.Resources.Pids < 0 || d.Resources.Timeout < 0 {
		return fmt.Errorf("sdk: description of %q: negative resources", d.Name)
	}
	return nil
}

// Resources a plugin asks for.
type Resources struct {
	MemoryBytes int64
	Pids        int64
	Timeout     time.Duration
}

// Request is one analysis of one image root.
type Request struct {
	// Root is the path of the image root as the plugin sees it (inside
	// the sandbox, "/target"). It is read-only. Open files under it with
	// os.OpenRoot so that symbolic links in the image cannot lead out.
	Root string
	// ImageConfig is the OCI image config JSON.
	ImageConfig []byte
	Options     map[string]string
	// MaxFileBytes and MaxFiles bound the plugin's own work: do not read
	// more than MaxFileBytes of one file nor look at more than MaxFiles
	// files; emit a Warning when a limit cut the analysis short. Zero
	// means no limit was set.
	MaxFileBytes int64
	MaxFiles     int64

	// Layers are the layer blobs to stream, for a plugin that reads
	// layers; empty for a tree analyzer.
	Layers []Layer
	// Extractors selects extractors by name; empty runs them all.
	Extractors []string
	// LayerLimits bound the layer stream.
	LayerLimits LayerLimits
}

// Layer is one layer blob handed to a plugin as an open file descriptor.
type Layer struct {
	// Index is the layer's 1-based position in the image, bottom first.
	Index     int
	Digest    string
	MediaType string
	// FD is the descriptor's number in the plugin's process.
	FD int
}

// LayerLimits bound what streaming layers may cost. Zero fields take the
// defaults (DefaultLayerLimits).
type LayerLimits struct {
	MaxLayerEntries int64
	MaxLayerBytes   int64
	// MaxEntries and MaxBytes count over all layers of one request.
	MaxEntries int64
	MaxBytes   int64
	// MaxFileBytes replaces an extractor's own file size cap, by name.
	MaxFileBytes map[string]int64
}

// Package is one installed package.
type Package struct {
	// Ecosystem in OSV spelling: "Debian", "Go", "PyPI".
	Ecosystem     string
	Name          string
	Version       string
	PURL          string
	SourceName    string
	SourceVersion string
	// Owner is the OS package that owns the files this package was found
	// in, if known.
	Owner string
	// Locations are absolute paths in the image ("/var/lib/dpkg/status").
	Locations []string
	// OS names the OS package database of a package found in a layer
	// ("dpkg", "apk", "rpm"): the image merge then sets Ecosystem, the
	// version (rpm's epoch) and the purl's distro from the image's
	// os-release. Such a package's Ecosystem is the family ("Debian").
	OS    string
	Arch  string
	Epoch int
}

// Validate checks what every package must have.
func (p Package) Validate() error {
	if p.Ecosystem == "" || p.Name == "" {
		return fmt.Errorf("sdk: package %q/%q: ecosystem and name are required", p.Ecosystem, p.Name)
	}
	return nil
}

// Finding is one finding of a secrets or misconfiguration analyzer.
type Finding struct {
	ID       string
	Severity string
	Summary  string
	Location string
	Details  map[string]string
}

// Validate checks what every finding must have.
func (f Finding) Validate() error {
	if f.ID == "" {
		return errors.New("sdk: finding without an id")
	}
	return nil
}

// Warning says that something could not be examined, or was cut short.
type Warning struct {
	Message string
	Path    string
}

// Validate checks what every warning must have.
func (w Warning) Validate() error {
	if w.Message == "" {
		return errors.New("sdk: warning without a message")
	}
	return nil
}

// LayerEntries is what a layer changes in the image besides packages: the
// merge uses it to drop what lower layers found at paths this layer
// replaces or deletes. Long lists come in several chunks.
type LayerEntries struct {
	// Paths of the layer's non-directory entries.
	Paths []string
	// Whiteouts are the paths deleted (".wh.NAME" → NAME).
	Whiteouts []string
	// OpaqueDirs are directories whose lower content is hidden.
	OpaqueDirs []string
	HardLinks  []HardLink
}

// HardLink is a tar hard link: Path is another name of Target.
type HardLink struct{ Path, Target string }

// OwnedFiles lists the files an OS package owns.
type OwnedFiles struct {
	OS       string // "dpkg", "apk", "rpm"
	Owner    string // the package's name
	Location string // where the list was read
	Paths    []string
}

// OSRelease is an os-release(5) file or a link to one.
type OSRelease struct {
	Path       string
	LinkTarget string
	Fields     map[string]string
}

// LayerEnd closes a layer's results.
type LayerEnd struct {
	Digest  string
	Entries int64
	Bytes   int64
}

// Item is one message of an analysis as the host receives it: exactly one
// of the pointers is set.
type Item struct {
	Package   *Package
	Finding   *Finding
	Warning   *Warning
	Entries   *LayerEntries
	Owned     *OwnedFiles
	OSRelease *OSRelease
	LayerEnd  *LayerEnd
	// Layer is the Layer.Index the item comes from (0: the whole tree);
	// Extractor the extractor that produced it.
	Layer     int
	Extractor string
	// Size is the wire size of the message in bytes (proto.Size).
	Size int64
}

// Kinds of the layer items (never listed in Description.Kinds).
const (
	KindEntries   = "entries"
	KindOwned     = "owned-files"
	KindOSRelease = "os-release"
	KindLayerEnd  = "layer-end"
)

// Kind returns KindPackage, KindFinding, KindWarning, one of the layer
// kinds, or "" for an empty item.
func (it Item) Kind() string {
	switch {
	case it.Package != nil:
		return KindPackage
	case it.Finding != nil:
		return KindFinding
	case it.Warning != nil:
		return KindWarning
	case it.Entries != nil:
		return KindEntries
	case it.Owned != nil:
		return KindOwned
	case it.OSRelease != nil:
		return KindOSRelease
	case it.LayerEnd != nil:
		return KindLayerEnd
	}
	return ""
}

// Validate checks that exactly one member is set and that it is valid.
func (it Item) Validate() error {
	n := 0
	var err error
	if it.Package != nil {
		n++
		err = it.Package.Validate()
	}
	if it.Finding != nil {
		n++
		err = it.Finding.Validate()
	}
	if it.Warning != nil {
		n++
		err = it.Warning.Validate()
	}
	for _, set := range []bool{it.Entries != nil, it.Owned != nil, it.OSRelease != nil, it.LayerEnd != nil} {
		if set {
			n++
		}
	}
	if n > 1 || (n == 1 && it.Package == nil && it.Finding == nil && it.Warning == nil) {
		if it.Layer <= 0 && n == 1 {
			return fmt.Errorf("sdk: a %s item must name its layer", it.Kind())
		}
	}
	if n != 1 {
		return fmt.Errorf("sdk: an item must hold exactly one of package, finding, warning, entries, owned files, os-release, layer end (it holds %d)", n)
	}
	return err
}

// Emitter sends what an analyzer finds. Each call sends one stream message
// at once (nothing is buffered), so a large result never sits in the
// plugin's memory. It is safe for concurrent use. An error means the host
// is gone or has stopped listening (cancelled, deadline, result cap): stop
// and return it.
type Emitter interface {
	Package(Package) error
	Finding(Finding) error
	Warning(Warning) error
}

// Analyzer is what a plugin implements.
type Analyzer interface {
	// Describe returns the plugin's description. It must be cheap and
	// must not look at any image.
	Describe(ctx context.Context) (Description, error)
	// Analyze examines req.Root and emits what it finds. It must honour
	// ctx: the host's deadline arrives there. Returning an error fails the
	// plugin's part of the scan; what was emitted before stays.
	Analyze(ctx context.Context, req Request, emit Emitter) error
}

// Client is the host's view of a running plugin: what GRPCPlugin's client
// side dispenses.
type Client interface {
	Describe(ctx context.Context) (Description, error)
	// Analyze calls fn for each item as it arrives. If fn returns an
	// error, the call is cancelled and that error is returned.
	Analyze(ctx context.Context, req Request, fn func(Item) error) error
}
