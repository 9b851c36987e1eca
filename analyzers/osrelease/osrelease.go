// Package osrelease parses os-release(5) and names the distribution as OSV
// does ("Debian:12", "Ubuntu:22.04:LTS"); analyzers/distro uses it to
// complete the OS packages (dpkg, apk, rpm) of an image.
//
// Its extractor (NewExtractor) sends, for each layer, what sits at Paths:
// a regular file's parsed fields (at most MaxBytes of it: the framework
// skips a larger file with a warning), or a symbolic link's target, which
// it does not follow. /etc/os-release is usually a relative link to
// ../usr/lib/os-release and sometimes an absolute one; the image merge,
// which sees every layer, resolves it inside the merged image (never
// outside it) and turns the file's item into a Release (FromItem).
package osrelease

import (
	"bufio"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Paths are the files os-release(5) says to read, in order: the second
// only when the first does not exist.
var Paths = []string{"/etc/os-release", "/usr/lib/os-release"}

// MaxBytes bounds how much of an os-release file is read. Real ones are
// well under 1 KiB.
const MaxBytes = 64 << 10

// Release is what an os-release file says about the distribution.
type Release struct {
	// ID is the lower-case distribution identifier: "debian", "ubuntu".
	ID string
	// IDLike lists the distributions this one derives from.
	IDLike []string
	// VersionID is the release: "12", "22.04", "3.20.3"; empty for
	// rolling releases such as Debian sid.
	VersionID string
	// Version is the human-readable release: "22.04.4 LTS (Jammy
	// Jellyfish)".
	Version         string
	VersionCodename string
	Name            string
	PrettyName      string
	// Path is the file it was read from, as an image path.
	Path string
	// Fields holds every assignment of the file.
	Fields map[string]string
}

// FromFields picks the fields of a Release out of a parsed os-release.
func FromFields(kv map[string]string) Release {
	return Release{
		ID:              strings.ToLower(kv["ID"]),
		IDLike:          strings.Fields(strings.ToLower(kv["ID_LIKE"])),
		VersionID:       kv["VERSION_ID"],
		Version:         kv["VERSION"],
		VersionCodename: kv["VERSION_CODENAME"],
		Name:            kv["NAME"],
		PrettyName:      kv["PRETTY_NAME"],
		Fields:          kv,
	}
}

// Ecosystem returns the OSV ecosystem of the distribution's packages:
//
//   - Debian: "Debian:<VERSION_ID>" ("Debian:12"); "Debian" when there is
//     no VERSION_ID (testing, sid).
//   - Ubuntu: "Ubuntu:<VERSION_ID>" with ":LTS" for long-term releases
//     ("Ubuntu:22.04:LTS", "Ubuntu:24.10"). A release is LTS when its
//     VERSION says so, or, without VERSION, when it is an April release of
//     an even year, which is Ubuntu's rule.
//   - Any other ID: the ID with its first letter in upper case, then
//     ":<VERSION_ID>" if there is one ("linuxmint", "21.3" → "Linuxmint:21.3").
//     This is a best effort: OSV spells some distributions otherwise, and
//     the analyzer for that ecosystem should add its own case here.
//
// It returns "" when the ID is empty.
func (r Release) Ecosystem() string {
	switch r.ID {
	case "":
		return ""
	case "debian":
		return withVersion("Debian", r.VersionID)
	case "ubuntu":
		e := withVersion("Ubuntu", r.VersionID)
		if r.VersionID != "" && r.isUbuntuLTS() {
			e += ":LTS"
		}
		return e
	}
	first, n := utf8.DecodeRuneInString(r.ID)
	return withVersion(string(unicode.ToUpper(first))+r.ID[n:], r.VersionID)
}

func withVersion(name, version string) string {
	if version == "" {
		return name
	}
	return name + ":" + version
}

func (r Release) isUbuntuLTS() bool {
	if r.Version != "" {
		return strings.Contains(r.Version, "LTS")
	}
	year, month, ok := strings.Cut(r.VersionID, ".")
	if !ok || month != "04" || len(year) != 2 || year[0] < '0' || year[0] > '9' || year[1] < '0' || year[1] > '9' {
		return false
	}
	return (year[1]-'0')%2 == 0
}

// Parse reads the KEY=value assignments of an os-release file (a subset of
// shell syntax, os-release(5)): blank lines and lines starting with "#"
// are ignored; a value may be in double quotes (where \ escapes the next
// character), in single quotes (taken literally), or bare (where \
// escapes the next character). Lines that are not an assignment to a
// valid name ([A-Za-z_][A-Za-z0-9_]*) are skipped, as a shell would fail
// on them but a reader of the file should not. Values are made valid
// UTF-8 (invalid bytes become U+FFFD). A later assignment wins.
func Parse(r io.Reader) (map[string]string, error) {
	kv := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || !validName(k) {
			continue
		}
		kv[k] = strings.ToValidUTF8(unquote(v), "\uFFFD")
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return kv, nil
}

func validName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || i > 0 && '0' <= c && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// unquote reads one shell word: a double-quoted, single-quoted or bare
// value. Whatever follows the closing quote, or the bare word's first
// unescaped blank, is ignored (os-release(5) allows no concatenation); an
// unclosed quote runs to the end of the line.
func unquote(v string) string {
	var b strings.Builder
	switch {
	case strings.HasPrefix(v, `"`):
		for i := 1; i < len(v); i++ {
			switch c := v[i]; c {
			case '"':
				return b.String()
			case '\\':
				if i+1 < len(v) {
					i++
					b.WriteByte(v[i])
				}
			default:
				b.WriteByte(c)
			}
		}
		return b.String()
	case strings.HasPrefix(v, "'"):
		s, _, _ := strings.Cut(v[1:], "'")
		return s
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == ' ' || c == '\t' {
			break // a bare word ends at white space (a comment may follow)
		}
		if c == '\\' {
			if i+1 < len(v) {
				i++
				b.WriteByte(v[i])
			}
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
