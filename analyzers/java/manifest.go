package java

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Manifest holds the attributes of a JAR manifest's main section that
// the analyzer uses when an archive has no pom.properties.
type Manifest struct {
	ImplementationTitle    string
	ImplementationVersion  string
	ImplementationVendorID string // Implementation-Vendor-Id
	BundleSymbolicName     string // OSGi; directives (";singleton:=true") removed
	BundleVersion          string // OSGi
}

// manifestAttrs maps the attribute names ParseManifest keeps (compared
// without regard to case, as java.util.jar.Attributes.Name does) to their
// fields.
var manifestAttrs = map[string]func(*Manifest) *string{
	"implementation-title":     func(m *Manifest) *string { return &m.ImplementationTitle },
	"implementation-version":   func(m *Manifest) *string { return &m.ImplementationVersion },
	"implementation-vendor-id": func(m *Manifest) *string { return &m.ImplementationVendorID },
	"bundle-symbolicname":      func(m *Manifest) *string { return &m.BundleSymbolicName },
	"bundle-version":           func(m *Manifest) *string { return &m.BundleVersion },
}

// maxAttrNameLen is the JAR specification's limit on an attribute name.
const maxAttrNameLen = 70

// ParseManifest reads the main section of a META-INF/MANIFEST.MF (the JAR
// File Specification's format): lines end at \r\n, \n or \r; the main
// section ends at the first empty line; each line is "Name: value" (a
// colon and one space, as java.util.jar.Manifest requires) or, starting
// with one space, the continuation of the previous value. A later
// attribute replaces an earlier one of the same name. Only the attributes
// of Manifest are kept, blanks around them removed, Bundle-SymbolicName
// cut at its first ';'. A line that is neither fails with an error
// wrapping ErrMalformed, which never quotes the content; so does a kept
// value that is not valid UTF-8.
func ParseManifest(data []byte) (Manifest, error) {
	var m Manifest
	var cur *strings.Builder // the value being continued, if kept
	kept := map[*string]*strings.Builder{}
	seen := false // a first attribute was read: continuations allowed
	for _, line := range naturalLines(data) {
		if len(line) == 0 {
			break // the end of the main section
		}
		if line[0] == ' ' {
			if !seen {
				return Manifest{}, fmt.Errorf("%w: a continuation line before the first attribute", ErrMalformed)
			}
			if cur != nil {
				if cur.Len()+len(line) > maxManifestValue {
					return Manifest{}, fmt.Errorf("%w: an attribute of more than %d bytes", ErrMalformed, maxManifestValue)
				}
				cur.Write(line[1:])
			}
			continue
		}
		name, value, ok := strings.Cut(string(line), ": ")
		if !ok || !validAttrName(name) {
			return Manifest{}, fmt.Errorf("%w: a line is not \"Name: value\"", ErrMalformed)
		}
		seen = true
		cur = nil
		if field, ok := manifestAttrs[strings.ToLower(name)]; ok {
			cur = &strings.Builder{}
			cur.WriteString(value)
			kept[field(&m)] = cur
		}
	}
	for dst, b := range kept {
		v := b.String()
		if !utf8.ValidString(v) {
			return Manifest{}, fmt.Errorf("%w: an attribute that is not valid UTF-8", ErrMalformed)
		}
		*dst = strings.TrimSpace(v)
	}
	if bsn, _, ok := strings.Cut(m.BundleSymbolicName, ";"); ok {
		m.BundleSymbolicName = strings.TrimSpace(bsn)
	}
	return m, nil
}

// maxManifestValue bounds one kept attribute value; Export-Package and
// the like, which can be far longer, are not kept.
const maxManifestValue = 4096

// validAttrName: the JAR specification's alphanum, '-' and '_', 1 to 70
// bytes.
func validAttrName(s string) bool {
	if s == "" || len(s) > maxAttrNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ErrNoCoordinates says that a manifest does not name an artifact.
var ErrNoCoordinates = errors.New("the manifest names no artifact")

// Coordinates guesses Maven coordinates from a manifest. It is a guess:
// none of these attributes is required to hold a Maven coordinate, and
// often none does, so a package named this way may carry a name no
// advisory uses (a missed match, not a false one), and now and then a
// wrong version (junit 4.13.2 of Debian 12 says Bundle-Version 4.12). The
// rules, in order:
//
//   - groupId: Implementation-Vendor-Id, else Bundle-SymbolicName (by the
//     maven-bundle-plugin's convention, groupId.artifactId, so taken
//     whole as the group), whichever is first a valid Maven id;
//   - artifactId: Implementation-Title if it is a valid Maven id (a
//     title is often a phrase, "Commons Logging"), else the last
//     dot-separated part of Bundle-SymbolicName;
//   - version: the first word of Implementation-Version, else of
//     Bundle-Version.
//
// Debian 12's hamcrest 2.2 comes out right (org.hamcrest:hamcrest),
// commons-logging 1.2 does not (org.apache:logging; the artifact is
// commons-logging:commons-logging). Without all three it returns an
// error wrapping ErrNoCoordinates.
func (m Manifest) Coordinates() (Coordinates, error) {
	var c Coordinates
	switch {
	case validID(m.ImplementationVendorID):
		c.GroupID = m.ImplementationVendorID
	case validID(m.BundleSymbolicName):
		c.GroupID = m.BundleSymbolicName
	}
	switch {
	case validID(m.ImplementationTitle):
		c.ArtifactID = m.ImplementationTitle
	case validID(m.BundleSymbolicName):
		c.ArtifactID = m.BundleSymbolicName[strings.LastIndexByte(m.BundleSymbolicName, '.')+1:]
	}
	for _, v := range []string{m.ImplementationVersion, m.BundleVersion} {
		if f := strings.Fields(v); len(f) > 0 {
			c.Version = f[0]
			break
		}
	}
	if c.GroupID == "" || c.ArtifactID == "" || c.Version == "" {
		return Coordinates{}, fmt.Errorf("%w: no groupId, artifactId and version in Implementation-Vendor-Id, Implementation-Title, Implementation-Version, Bundle-SymbolicName, Bundle-Version", ErrNoCoordinates)
	}
	if err := c.check(); err != nil {
		return Coordinates{}, fmt.Errorf("%w: %w", ErrNoCoordinates, err)
	}
	return c, nil
}
