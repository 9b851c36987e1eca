package java

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/package-url/packageurl-go"
)

// Coordinates are a Maven artifact's groupId, artifactId and version.
type Coordinates struct {
	GroupID    string
	ArtifactID string
	Version    string
}

// Name is the package name OSV's Maven ecosystem uses: "groupId:artifactId".
func (c Coordinates) Name() string { return c.GroupID + ":" + c.ArtifactID }

// PURL returns pkg:maven/<groupId>/<artifactId>@<version>.
func (c Coordinates) PURL() string {
	return packageurl.NewPackageURL(packageurl.TypeMaven, c.GroupID, c.ArtifactID, c.Version, nil, "").ToString()
}

// ErrMalformed is what the parsers' errors about content wrap. Their
// messages never quote the content, which may be anything (a link can
// make any file of the image the "archive").
var ErrMalformed = errors.New("malformed")

// maxValueLen bounds each coordinate: real ones are a few dozen bytes.
const maxValueLen = 256

// validID tells whether s is a valid groupId or artifactId: Maven's own
// rule (DefaultModelValidator's ID_REGEX, [A-Za-z0-9_\-.]+).
func validID(s string) bool {
	if s == "" || len(s) > maxValueLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// checkVersion accepts what Maven accepts as a version (no blanks, none
// of \/:"<>|?*, which its DefaultModelValidator refuses), valid UTF-8
// without control characters, and not an unresolved ${property}.
func checkVersion(v string) error {
	switch {
	case v == "":
		return errors.New("empty")
	case len(v) > maxValueLen:
		return fmt.Errorf("%d bytes, more than %d", len(v), maxValueLen)
	case !utf8.ValidString(v):
		return errors.New("not valid UTF-8")
	case strings.ContainsFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return errors.New("blanks or control characters")
	case strings.ContainsAny(v, `\/:"<>|?*`):
		return errors.New(`one of \/:"<>|?*`)
	case strings.Contains(v, "${"):
		return errors.New("an unresolved ${property}")
	}
	return nil
}

// check validates all three coordinates.
func (c Coordinates) check() error {
	if !validID(c.GroupID) {
		return fmt.Errorf("%w: the groupId is missing or not a valid Maven id", ErrMalformed)
	}
	if !validID(c.ArtifactID) {
		return fmt.Errorf("%w: the artifactId is missing or not a valid Maven id", ErrMalformed)
	}
	if err := checkVersion(c.Version); err != nil {
		return fmt.Errorf("%w: version: %v", ErrMalformed, err)
	}
	return nil
}
