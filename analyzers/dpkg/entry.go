package dpkg

import (
	"errors"
	"fmt"
	"net/textproto"
	"strings"
)

// Entry is what the analyzer takes from one paragraph.
type Entry struct {
	Package      string
	Version      string
	Architecture string
	// Status is the paragraph's Status field, "want flag status"
	// ("install ok installed"); empty in distroless status.d files,
	// which list only installed packages.
	Status string
	// SourceName and SourceVersion are the source package, from the
	// Source field ("name" or "name (version)"); the binary package's
	// name and version when the field or its version is absent, as
	// dpkg-query's ${source:Package} and ${source:Version} say.
	SourceName    string
	SourceVersion string
	// BadSource is set when the Source field could not be parsed; the
	// source is then the binary package.
	BadSource bool
}

// Installed reports whether the package's files are on disk as dpkg
// installed them: the third word of Status (dpkg's "status", after the
// "want" and "flag" words) is "installed". That includes held packages
// ("hold ok installed"). An empty Status (status.d) counts as installed.
// Everything else (not-installed, config-files, half-installed,
// unpacked, half-configured, triggers-awaited, triggers-pending) is not.
func (e Entry) Installed() bool {
	if e.Status == "" {
		return true
	}
	return e.state() == "installed"
}

// state returns the third word of Status (entryFromFields checked that
// there are three).
func (e Entry) state() string {
	w := strings.Fields(e.Status)
	if len(w) != 3 {
		return ""
	}
	return w[2]
}

var (
	errNoPackage   = errors.New("no Package field")
	errNoVersion   = errors.New("no Version field")
	errBadName     = errors.New("invalid package name")
	errBadVersion  = errors.New("invalid version")
	errBadArch     = errors.New("invalid architecture")
	errBadStatus   = errors.New(`invalid Status (not "want flag status")`)
	errMultiValued = errors.New("a field appears twice")
)

// entryFromFields checks a paragraph's fields as dpkg would and picks
// what the analyzer reports. The errors never quote the fields' values
// beyond a valid package name.
func entryFromFields(h textproto.MIMEHeader) (Entry, error) {
	for _, k := range []string{"Package", "Version", "Architecture", "Status", "Source"} {
		if len(h[k]) > 1 {
			return Entry{}, fmt.Errorf("%w: %s", errMultiValued, k)
		}
	}
	e := Entry{
		Package:      h.Get("Package"),
		Version:      h.Get("Version"),
		Architecture: h.Get("Architecture"),
		Status:       h.Get("Status"),
	}
	switch {
	case e.Package == "":
		return Entry{}, errNoPackage
	case !validName(e.Package):
		return Entry{}, errBadName
	case e.Version == "":
		return Entry{}, fmt.Errorf("%s: %w", e.Package, errNoVersion)
	case !validVersion(e.Version):
		return Entry{}, fmt.Errorf("%s: %w", e.Package, errBadVersion)
	case e.Architecture != "" && !validArch(e.Architecture):
		return Entry{}, fmt.Errorf("%s: %w", e.Package, errBadArch)
	case e.Status != "" && len(strings.Fields(e.Status)) != 3:
		return Entry{}, fmt.Errorf("%s: %w", e.Package, errBadStatus)
	}
	e.SourceName, e.SourceVersion = e.Package, e.Version
	if src := h.Get("Source"); src != "" {
		name, version, ok := parseSource(src)
		if ok {
			e.SourceName = name
			if version != "" {
				e.SourceVersion = version
			}
		} else {
			e.BadSource = true
		}
	}
	return e, nil
}

// parseSource splits a Source field, "name" or "name (version)".
func parseSource(s string) (name, version string, ok bool) {
	name, rest, _ := strings.Cut(strings.TrimSpace(s), " ")
	if !validName(name) {
		return "", "", false
	}
	rest = strings.TrimSpace(rest)
	if rest == "" {
		return name, "", true
	}
	v, found := strings.CutPrefix(rest, "(")
	v, closed := strings.CutSuffix(v, ")")
	v = strings.TrimSpace(v)
	if !found || !closed || !validVersion(v) {
		return "", "", false
	}
	return name, v, true
}

// validName is dpkg's rule for package names: an alphanumeric, then
// alphanumerics and "+-._".
func validName(s string) bool {
	if s == "" || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && !strings.ContainsRune("+-._", rune(c)) {
			return false
		}
	}
	return true
}

// validVersion accepts the characters dpkg allows in a version
// ([epoch:]upstream[-revision]): alphanumerics and ".+~:-". It does not
// check their order; dpkg itself only warns about that.
func validVersion(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && !strings.ContainsRune(".+~:-", rune(c)) {
			return false
		}
	}
	return true
}

// validArch accepts Debian architecture names ("amd64", "all",
// "musl-linux-arm64").
func validArch(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '-' {
			return false
		}
	}
	return s != ""
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
