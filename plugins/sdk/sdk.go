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

// Item is one message of an analysis as the host receives it: exactly one
// of Package, Finding and Warning is set.
type Item struct {
	Package *Package
	Finding *Finding
	Warning *Warning
	// Size is the wire size of the message in bytes (proto.Size).
	Size int64
}

// Kind returns KindPackage, KindFinding, KindWarning, or "" for an empty
// item.
func (it Item) Kind() string {
	switch {
	case it.Package != nil:
		return KindPackage
	case it.Finding != nil:
		return KindFinding
	case it.Warning != nil:
		return KindWarning
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
	if n != 1 {
		return fmt.Errorf("sdk: an item must hold exactly one of package, finding, warning (it holds %d)", n)
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
