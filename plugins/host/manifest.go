package host

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// ManifestSuffix ends the file name of every manifest: <name>.plugin.json.
const ManifestSuffix = ".plugin.json"

// maxManifestBytes bounds what is read of a manifest file.
const maxManifestBytes = 64 << 10

// Manifest describes one installed plugin. It lives in <Name>.plugin.json
// in the plugins directory, next to the binary:
//
//	{"name": "example", "version": "0.1.0", "binary": "assay-example",
//	 "sha256": "<sha256sum of the binary>"}
type Manifest struct {
	// Name is the plugin's name, as it describes itself: lower-case
	// letters, digits, '.', '_' and '-'.
	Name string `json:"name"`
	// Version is informational (the binary is pinned by SHA256); reports
	// record the version the plugin describes itself with.
	Version string `json:"version"`
	// Binary is a file name in the same directory (no path separators).
	Binary string `json:"binary"`
	// SHA256 is the hex SHA-256 of the binary. A binary that does not
	// match is never run.
	SHA256 string `json:"sha256"`
	// Input is what the plugin reads: InputTree (the default: the
	// image's merged tree, unpacked into a read-only view) or
	// InputLayers (the layer blobs, streamed by sdk.ServeExtractors).
	Input string `json:"input,omitempty"`
	// Extractors names the extractors of a layer plugin, so that
	// plugins.enabled may name them one by one.
	Extractors []string `json:"extractors,omitempty"`
}

// What a plugin reads (Manifest.Input).
const (
	InputTree   = "tree"
	InputLayers = "layers"
)

// Layers reports whether the plugin reads layers.
func (m Manifest) Layers() bool { return m.Input == InputLayers }

var (
	nameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// Validate checks the manifest's fields.
func (m Manifest) Validate() error {
	if !nameRE.MatchString(m.Name) {
		return fmt.Errorf("invalid name %q (want 1-64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit)", m.Name)
	}
	if m.Version == "" || len(m.Version) > 128 || strings.ContainsFunc(m.Version, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return fmt.Errorf("invalid version %q", m.Version)
	}
	if m.Binary == "" || m.Binary == "." || m.Binary == ".." || strings.ContainsAny(m.Binary, "/\\\x00") ||
		strings.HasSuffix(m.Binary, ManifestSuffix) {
		return fmt.Errorf("invalid binary %q (want a file name in the plugins directory)", m.Binary)
	}
	if !sha256RE.MatchString(m.SHA256) {
		return fmt.Errorf("invalid sha256 %q (want 64 lower-case hex digits, as sha256sum prints)", m.SHA256)
	}
	if m.Input != "" && m.Input != InputTree && m.Input != InputLayers {
		return fmt.Errorf("invalid input %q (want %q or %q)", m.Input, InputTree, InputLayers)
	}
	if len(m.Extractors) > 0 && !m.Layers() {
		return fmt.Errorf("extractors are listed but input is not %q", InputLayers)
	}
	for _, e := range m.Extractors {
		if !nameRE.MatchString(e) {
			return fmt.Errorf("invalid extractor name %q", e)
		}
	}
	return nil
}

// ReadManifest reads and validates one manifest file. Unknown fields are
// an error, so that a misspelt field is not silently ignored.
func ReadManifest(path string) (Manifest, error) {
	var m Manifest
	f, err := os.Open(path)
	if err != nil {
		return m, fmt.Errorf("host: manifest %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxManifestBytes+1))
	if err != nil {
		return m, fmt.Errorf("host: manifest %s: %w", path, err)
	}
	if len(data) > maxManifestBytes {
		return m, fmt.Errorf("host: manifest %s: larger than %d bytes", path, maxManifestBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("host: manifest %s: %w", path, err)
	}
	if dec.More() {
		return m, fmt.Errorf("host: manifest %s: data after the JSON object", path)
	}
	m.SHA256 = strings.ToLower(m.SHA256)
	if err := m.Validate(); err != nil {
		return m, fmt.Errorf("host: manifest %s: %w", path, err)
	}
	return m, nil
}

// Discover reads every <name>.plugin.json in dir and returns the manifests
// sorted by name. A manifest whose name differs from its file name, whose
// binary is missing or not a regular file, or a name given twice is an
// error that names the file. Binaries are not hashed here: Host.Run
// verifies them each time it runs one.
func Discover(dir string) ([]Manifest, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("host: plugins directory: %w", err)
	}
	var ms []Manifest
	files := map[string]string{}
	var errs []error
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ManifestSuffix) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		m, err := ReadManifest(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if want := m.Name + ManifestSuffix; e.Name() != want {
			errs = append(errs, fmt.Errorf("host: manifest %s: name %q wants the file name %s", path, m.Name, want))
			continue
		}
		if prev, ok := files[m.Name]; ok {
			errs = append(errs, fmt.Errorf("host: manifest %s: plugin %q is already defined by %s", path, m.Name, prev))
			continue
		}
		files[m.Name] = path
		fi, err := os.Stat(filepath.Join(dir, m.Binary))
		if err == nil && !fi.Mode().IsRegular() {
			err = errors.New("not a regular file")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("host: manifest %s: binary %s: %w", path, m.Binary, err))
			continue
		}
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b Manifest) int { return strings.Compare(a.Name, b.Name) })
	if err := errors.Join(errs...); err != nil {
		// The valid ones are returned too: a caller may go on without
		// the others.
		return ms, err
	}
	return ms, nil
}
