package npm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/assayhq/assay/plugins/sdk"
)

// Name and Version identify the extractor; its plugin manifest must say
// the same.
const (
	Name    = "npm"
	Version = "0.2.0"
)

// Ecosystem is the OSV ecosystem of everything reported.
const Ecosystem = "npm"

// DefaultMaxFileBytes is the largest file read: lockfiles of large
// monorepos reach tens of MB.
const DefaultMaxFileBytes = 64 << 20

const (
	manifestName = "package.json"
	lockfileName = "package-lock.json"
	nodeModules  = "node_modules"
)

// Extractor is the npm extractor of one layer: it reports installed
// manifests as it reads them, and keeps the lockfiles' entries until the
// layer's end, when it knows which lockfiles have a node_modules beside
// them.
type Extractor struct {
	// lockfiles maps a lockfile's image path to its entries; a path the
	// layer holds twice keeps its last content, as unpacking would.
	lockfiles map[string][]entry
	// seen holds the (name, version, location) triples reported.
	seen map[[3]string]bool
}

var (
	_ sdk.Extractor = (*Extractor)(nil)
	_ sdk.Finisher  = (*Extractor)(nil)
)

// NewExtractor returns a fresh extractor, for one layer.
func NewExtractor() sdk.Extractor {
	return &Extractor{lockfiles: map[string][]entry{}, seen: map[[3]string]bool{}}
}

// Name implements sdk.Extractor.
func (*Extractor) Name() string { return Name }

// Version implements sdk.Extractor.
func (*Extractor) Version() string { return Version }

// MaxFileBytes implements sdk.Extractor.
func (*Extractor) MaxFileBytes() int64 { return DefaultMaxFileBytes }

// Required implements sdk.Extractor: the package.json of a package
// directory of a node_modules tree, and package-lock.json files outside
// node_modules. Links are not followed, so only regular files are wanted.
func (*Extractor) Required(f sdk.FileInfo) bool {
	if !f.Mode.IsRegular() {
		return false
	}
	dir, base := path.Split(f.Path)
	switch base {
	case manifestName:
		_, ok := packageDirName(path.Clean(dir))
		return ok
	case lockfileName:
		return isProjectLockfile(path.Clean(dir))
	}
	return false
}

// Extract implements sdk.Extractor: a manifest's package is reported at
// once, a lockfile's entries are kept for Finish.
func (e *Extractor) Extract(ctx context.Context, f sdk.FileInfo, r io.Reader, out sdk.Output) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("npm: %w", err)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("npm: reading: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("npm: %w", err)
	}
	dir, base := path.Split(f.Path)
	dir = path.Clean(dir)
	switch base {
	case manifestName:
		dirName, ok := packageDirName(dir)
		if !ok {
			return nil
		}
		name, version, err := parseManifest(data)
		if err != nil {
			return fmt.Errorf("npm: skipped: malformed package.json: %w", jsonError(err))
		}
		if name == "" {
			name = dirName
		}
		return e.report(out, name, version, f.Path)
	case lockfileName:
		if !isProjectLockfile(dir) {
			return nil
		}
		entries, err := parseLockfile(data)
		if err != nil {
			return fmt.Errorf("npm: skipped: malformed package-lock.json: %w", jsonError(err))
		}
		e.lockfiles[f.Path] = entries
	}
	return nil
}

// Finish implements sdk.Finisher: it reports the entries of each lockfile
// whose directory holds no node_modules in this layer. Where one sits
// beside it, the installed manifests are the better evidence (the
// lockfile may list packages that were pruned, or not match what is
// installed).
func (e *Extractor) Finish(ctx context.Context, layer sdk.LayerIndex, out sdk.Output) error {
	paths := make([]string, 0, len(e.lockfiles))
	for p := range e.lockfiles {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		if layer.HasDir(path.Join(path.Dir(p), nodeModules)) {
			continue
		}
		for _, en := range e.lockfiles[p] {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("npm: %w", err)
			}
			if err := e.report(out, en.Name, en.Version, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// report emits one package unless the same (name, version, location) was.
// The protocol carries only UTF-8, and names and paths may hold any bytes.
func (e *Extractor) report(out sdk.Output, name, version, location string) error {
	name, version = validUTF8(name), validUTF8(version)
	location = validUTF8(location)
	if name == "" {
		return nil
	}
	key := [3]string{name, version, location}
	if e.seen[key] {
		return nil
	}
	e.seen[key] = true
	return out.Package(sdk.Package{
		Ecosystem: Ecosystem,
		Name:      name,
		Version:   version,
		PURL:      purl(name, version),
		Locations: []string{location},
	})
}

func validUTF8(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// jsonError describes a JSON error without quoting the file: the file
// may be anything, and a syntax error's message may name the offending
// character.
func jsonError(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		msg := se.Error()
		// "invalid character 'x' looking for ...": keep what it was
		// looking for, drop the character.
		if rest, ok := strings.CutPrefix(msg, "invalid character "); ok {
			msg = "invalid character"
			if i := strings.LastIndex(rest, "' "); i >= 0 {
				msg += " " + rest[i+2:]
			}
		}
		return fmt.Errorf("invalid JSON at byte %d: %s", se.Offset, msg)
	}
	return err
}

// isProjectLockfile tells whether a package-lock.json in dir is a
// project's: lockfiles inside node_modules (published with a package,
// never used by npm to install, and npm's hidden
// node_modules/.package-lock.json) are not read.
func isProjectLockfile(dir string) bool {
	return !slices.Contains(strings.Split(dir, "/"), nodeModules)
}

// packageDirName returns the package name that dir's place in a
// node_modules tree gives (".../node_modules/x" → "x",
// ".../node_modules/@s/x" → "@s/x"); ok is false when dir is not a package
// directory.
func packageDirName(dir string) (string, bool) {
	parts := strings.Split(dir, "/")
	n := len(parts)
	if n >= 2 && parts[n-2] == nodeModules && !strings.HasPrefix(parts[n-1], "@") && !strings.HasPrefix(parts[n-1], ".") {
		return parts[n-1], true
	}
	if n >= 3 && parts[n-3] == nodeModules && strings.HasPrefix(parts[n-2], "@") && len(parts[n-2]) > 1 {
		return parts[n-2] + "/" + parts[n-1], true
	}
	return "", false
}

// parseManifest returns a package.json's name and version.
func parseManifest(data []byte) (name, version string, err error) {
	var m struct {
		Name    json.RawMessage `json:"name"`
		Version json.RawMessage `json:"version"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return "", "", err
	}
	// A name or version that is not a string is ignored, as npm would
	// refuse it.
	_ = json.Unmarshal(m.Name, &name)
	_ = json.Unmarshal(m.Version, &version)
	return strings.TrimSpace(name), strings.TrimSpace(version), nil
}

// entry is one package of a lockfile.
type entry struct {
	Name, Version string
}

// lockfile is the part of package-lock.json the analyzer reads.
type lockfileJSON struct {
	LockfileVersion int                    `json:"lockfileVersion"`
	Packages        map[string]lockPackage `json:"packages"`
	Dependencies    map[string]lockDep     `json:"dependencies"`
}

type lockPackage struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Link    bool   `json:"link"`
}

type lockDep struct {
	Version      string             `json:"version"`
	Dependencies map[string]lockDep `json:"dependencies"`
}

// parseLockfile returns the entries of a package-lock.json, sorted and
// without duplicates: for lockfileVersion 2 and 3 those of "packages"
// (skipping the root, entries outside node_modules and links), for 1 (or
// a lockfile without "packages") those of the "dependencies" tree.
func parseLockfile(data []byte) ([]entry, error) {
	var lf lockfileJSON
	if err := json.Unmarshal(data, &lf); err != nil {
		return nil, err
	}
	var out []entry
	if lf.LockfileVersion >= 2 && lf.Packages != nil {
		for key, p := range lf.Packages {
			i := strings.LastIndex(key, nodeModules+"/")
			if key == "" || i < 0 || p.Link {
				continue
			}
			name := key[i+len(nodeModules)+1:]
			if p.Name != "" {
				name = p.Name // an alias: the key is the alias, name the package
			}
			if name == "" || p.Version == "" {
				continue
			}
			out = append(out, entry{name, p.Version})
		}
	} else {
		var walk func(map[string]lockDep)
		walk = func(deps map[string]lockDep) {
			for name, d := range deps {
				if e, ok := v1Entry(name, d.Version); ok {
					out = append(out, e)
				}
				walk(d.Dependencies)
			}
		}
		walk(lf.Dependencies)
	}
	slices.SortFunc(out, func(x, y entry) int {
		if c := strings.Compare(x.Name, y.Name); c != 0 {
			return c
		}
		return strings.Compare(x.Version, y.Version)
	})
	return slices.Compact(out), nil
}

// v1Entry returns the package a lockfile v1 dependency stands for:
// "npm:<name>@<version>" is an alias, "file:" a local link (skipped).
func v1Entry(name, version string) (entry, bool) {
	if rest, ok := strings.CutPrefix(version, "npm:"); ok {
		if i := strings.LastIndex(rest, "@"); i > 0 {
			name, version = rest[:i], rest[i+1:]
		}
	}
	if name == "" || version == "" || strings.HasPrefix(version, "file:") || strings.HasPrefix(version, "link:") {
		return entry{}, false
	}
	return entry{name, version}, true
}

// purl returns pkg:npm/<namespace>/<name>@<version>, the scope (with its
// "@", which the purl encodes) as the namespace.
func purl(name, version string) string {
	ns := ""
	if strings.HasPrefix(name, "@") {
		if i := strings.Index(name, "/"); i > 0 {
			ns, name = name[:i], name[i+1:]
		}
	}
	return packageurl.NewPackageURL(packageurl.TypeNPM, ns, name, version, nil, "").ToString()
}
