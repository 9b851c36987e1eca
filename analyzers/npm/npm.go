package npm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/package-url/packageurl-go"

	"github.com/assayhq/assay/analyzers/imageroot"
	"github.com/assayhq/assay/analyzers/warncap"
	"github.com/assayhq/assay/plugins/sdk"
)

// Name and Version are what the plugin describes itself as; its manifest
// must say the same.
const (
	Name    = "npm"
	Version = "0.1.0"
)

// Ecosystem is the OSV ecosystem of everything reported.
const Ecosystem = "npm"

// Bounds the analyzer applies when the request sets none (zero). Lockfiles
// of large monorepos reach tens of MB.
const (
	DefaultMaxFileBytes = 64 << 20
	DefaultMaxFiles     = 1_000_000
)

// readDirBatch is how many directory entries are listed at a time.
const readDirBatch = 256

const (
	manifestName = "package.json"
	lockfileName = "package-lock.json"
	nodeModules  = "node_modules"
)

// Analyzer is the npm analyzer. Its zero value is ready to use.
type Analyzer struct{}

var _ sdk.Analyzer = Analyzer{}

// Describe implements sdk.Analyzer.
func (Analyzer) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{
		Name:       Name,
		Version:    Version,
		Kinds:      []string{sdk.KindPackage},
		Ecosystems: []string{Ecosystem},
		Resources:  sdk.Resources{MemoryBytes: 256 << 20, Pids: 16, Timeout: 5 * time.Minute},
	}, nil
}

// Analyze implements sdk.Analyzer. An image without npm packages yields
// nothing and no warning.
func (Analyzer) Analyze(ctx context.Context, req sdk.Request, emit sdk.Emitter) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("npm: %w", err)
	}
	root, err := os.OpenRoot(req.Root)
	if err != nil {
		return fmt.Errorf("npm: %w", err)
	}
	defer root.Close()
	_, err = analyze(ctx, root, req, emit)
	return err
}

// analyze is Analyze on an open root; it also returns what it counted.
func analyze(ctx context.Context, root *os.Root, req sdk.Request, emit sdk.Emitter) (stats, error) {
	a := &analysis{
		ctx:      ctx,
		root:     root,
		emit:     emit,
		warned:   warncap.Capped{Emit: emit},
		maxBytes: req.MaxFileBytes,
		maxFiles: req.MaxFiles,
		seen:     map[[3]string]bool{},
	}
	if a.maxBytes <= 0 {
		a.maxBytes = DefaultMaxFileBytes
	}
	if a.maxFiles <= 0 {
		a.maxFiles = DefaultMaxFiles
	}
	if err := a.run(); err != nil {
		return a.stats, fmt.Errorf("npm: %w", err)
	}
	return a.stats, nil
}

type analysis struct {
	ctx      context.Context
	root     *os.Root
	emit     sdk.Emitter
	maxBytes int64
	maxFiles int64
	seen     map[[3]string]bool // name, version, location

	warned warncap.Capped
	stats  stats
}

// stats counts what one analysis saw, for the log (and the tests).
type stats struct {
	Entries   int64 // entries of the image listed
	Manifests int   // node_modules package.json files read
	Lockfiles int   // package-lock.json files read
	Skipped   int   // lockfiles not reported: node_modules next to them
	Packages  int
}

// errStop ends the walk once MaxFiles entries were seen.
var errStop = errors.New("stop")

func (a *analysis) run() error {
	err := a.walk()
	if err != nil && !errors.Is(err, errStop) {
		return err
	}
	slog.InfoContext(a.ctx, "npm: inventory done", "entries", a.stats.Entries, "manifests", a.stats.Manifests,
		"lockfiles", a.stats.Lockfiles, "lockfiles_skipped", a.stats.Skipped, "packages", a.stats.Packages)
	return a.warned.Flush()
}

// walk lists the image depth first, in lexical order, without following
// links. Every entry listed counts against maxFiles; directories are
// listed in batches so that a huge one is never read in full.
func (a *analysis) walk() error {
	stack := []string{"."}
	for len(stack) > 0 {
		dir := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		l, err := a.list(dir)
		if err != nil && !(errors.Is(err, errStop) && l != nil) {
			return err
		}
		stop := err
		slices.Sort(l.subdirs)
		var files []string
		if l.manifest {
			files = append(files, manifestName)
		}
		if l.lockfile {
			files = append(files, lockfileName)
		}
		hasNodeModules := l.nodeModules
		subdirs := make([]string, len(l.subdirs))
		for i, name := range l.subdirs {
			subdirs[i] = path.Join(dir, name)
		}
		for _, f := range files {
			if err := a.ctx.Err(); err != nil {
				return err
			}
			var err error
			switch f {
			case manifestName:
				err = a.manifest(dir)
			case lockfileName:
				err = a.lockfile(dir, hasNodeModules)
			}
			if err != nil {
				return err
			}
		}
		if stop != nil {
			return stop
		}
		// Pushed in reverse so that they are popped in lexical order.
		for i := len(subdirs) - 1; i >= 0; i-- {
			stack = append(stack, subdirs[i])
		}
	}
	return nil
}

// listing is what the walk keeps of a directory: the names of its
// subdirectories and whether it holds the files the analyzer reads. A
// directory of a million entries costs its subdirectories' names, not a
// million fs.DirEntry values.
type listing struct {
	subdirs                         []string
	manifest, lockfile, nodeModules bool
}

// list reads dir in batches, counting its entries against maxFiles; past
// the limit it warns and returns what it read with errStop. A directory
// that cannot be listed is warned about and yields nothing.
func (a *analysis) list(dir string) (*listing, error) {
	if err := a.ctx.Err(); err != nil {
		return nil, err
	}
	l := &listing{}
	f, err := a.root.Open(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return l, nil
		}
		return l, a.warn(imagePath(dir), "skipped: %v", unwrap(err))
	}
	defer f.Close()
	for {
		if err := a.ctx.Err(); err != nil {
			return nil, err
		}
		batch, err := f.ReadDir(readDirBatch)
		for _, e := range batch {
			if a.stats.Entries >= a.maxFiles {
				if werr := a.warn("", "more than %d entries in the image: the walk stopped there, at %s", a.maxFiles, imagePath(dir)); werr != nil {
					return nil, werr
				}
				return l, errStop
			}
			a.stats.Entries++
			switch name := e.Name(); {
			case e.IsDir():
				if name == nodeModules {
					l.nodeModules = true
				}
				l.subdirs = append(l.subdirs, name)
			case e.Type().IsRegular() || e.Type()&fs.ModeSymlink != 0:
				switch name {
				case manifestName:
					l.manifest = true
				case lockfileName:
					l.lockfile = true
				}
			}
		}
		if err == io.EOF || (err == nil && len(batch) == 0) {
			return l, nil
		}
		if err != nil {
			return l, a.warn(imagePath(dir), "listing cut short: %v", unwrap(err))
		}
	}
}

// manifest reads dir/package.json if dir is a package directory of a
// node_modules tree.
func (a *analysis) manifest(dir string) error {
	dirName, ok := packageDirName(dir)
	if !ok {
		return nil
	}
	loc := imagePath(path.Join(dir, manifestName))
	data, ok, err := a.read(loc)
	if !ok || err != nil {
		return err
	}
	a.stats.Manifests++
	name, version, err := parseManifest(data)
	if err != nil {
		return a.warn(loc, "skipped: malformed package.json: %v", err)
	}
	if name == "" {
		name = dirName
	}
	return a.report(name, version, loc)
}

// lockfile reads dir/package-lock.json and reports its entries unless dir
// has a node_modules directory or is inside one.
func (a *analysis) lockfile(dir string, hasNodeModules bool) error {
	if slices.Contains(strings.Split(dir, "/"), nodeModules) {
		return nil
	}
	loc := imagePath(path.Join(dir, lockfileName))
	if hasNodeModules {
		a.stats.Skipped++
		return nil
	}
	data, ok, err := a.read(loc)
	if !ok || err != nil {
		return err
	}
	a.stats.Lockfiles++
	entries, err := parseLockfile(data)
	if err != nil {
		return a.warn(loc, "skipped: malformed package-lock.json: %v", err)
	}
	for _, e := range entries {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		if err := a.report(e.Name, e.Version, loc); err != nil {
			return err
		}
	}
	return nil
}

// read returns the content of the image file name (links resolved inside
// the image), at most maxBytes bytes; ok is false when it was skipped
// (with a warning unless it vanished). err is only for errors that must
// stop the analysis.
func (a *analysis) read(name string) (data []byte, ok bool, err error) {
	f, fi, err := imageroot.OpenRegular(a.root, name, a.maxBytes)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
		return nil, false, nil
	case errors.Is(err, imageroot.ErrTooLarge):
		return nil, false, a.warn(name, "skipped: %d bytes, over the limit of %d bytes per file", fi.Size(), a.maxBytes)
	default:
		return nil, false, a.warn(name, "skipped: %v", err)
	}
	defer f.Close()
	data, err = io.ReadAll(imageroot.Limit(f, a.maxBytes))
	if err != nil {
		return nil, false, a.warn(name, "skipped: %v", err)
	}
	return data, true, nil
}

// report emits one package unless the same (name, version, location) was.
func (a *analysis) report(name, version, location string) error {
	name, version = warncap.ValidUTF8(name), warncap.ValidUTF8(version)
	if name == "" {
		return nil
	}
	key := [3]string{name, version, location}
	if a.seen[key] {
		return nil
	}
	a.seen[key] = true
	a.stats.Packages++
	return a.emit.Package(sdk.Package{
		Ecosystem: Ecosystem,
		Name:      name,
		Version:   version,
		PURL:      purl(name, version),
		Locations: []string{location},
	})
}

// warn sends a warning, up to warncap.Max per analysis.
func (a *analysis) warn(path, format string, args ...any) error {
	return a.warned.Warn(path, format, args...)
}

// imagePath turns a root-relative path into an absolute image path.
func imagePath(p string) string {
	if p == "." {
		return "/"
	}
	return "/" + p
}

func unwrap(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
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
