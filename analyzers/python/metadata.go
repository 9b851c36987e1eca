package python

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Metadata is what the analyzer takes from a distribution's core metadata
// (METADATA or PKG-INFO).
type Metadata struct {
	// Name and Version as the metadata spells them, surrounding blanks
	// removed.
	Name    string
	Version string
}

// ErrMalformed is what ParseMetadata's errors about the content wrap.
// Their messages never quote the content, which may be anything (a link
// could make /etc/shadow the "METADATA").
var ErrMalformed = errors.New("malformed metadata")

// ParseMetadata reads the RFC 822-style header of a core metadata file
// from r: the fields up to the first blank line (the body, the long
// description, is not read), continuation lines joined. Name and Version
// are required, must be valid UTF-8 without control characters, and the
// first field must come on the first line.
func ParseMetadata(r io.Reader) (Metadata, error) {
	br := bufio.NewReader(r)
	// textproto takes a first line that starts with a blank as the
	// continuation of nothing and fails; an empty first line would be an
	// empty header. Either is malformed here.
	if b, err := br.Peek(1); err == nil && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n') {
		return Metadata{}, fmt.Errorf("%w: the file does not start with a field", ErrMalformed)
	}
	h, err := textproto.NewReader(br).ReadMIMEHeader()
	var perr textproto.ProtocolError
	switch {
	case err == nil, errors.Is(err, io.EOF):
	case errors.As(err, &perr):
		return Metadata{}, fmt.Errorf("%w: a line is not \"Name: value\"", ErrMalformed)
	default:
		return Metadata{}, fmt.Errorf("reading: %w", err)
	}
	var m Metadata
	for _, f := range []struct {
		key string
		dst *string
	}{{"Name", &m.Name}, {"Version", &m.Version}} {
		vs := h.Values(f.key)
		if len(vs) == 0 {
			return Metadata{}, fmt.Errorf("%w: no %s field", ErrMalformed, f.key)
		}
		if len(vs) > 1 {
			return Metadata{}, fmt.Errorf("%w: %d %s fields", ErrMalformed, len(vs), f.key)
		}
		v := strings.TrimSpace(vs[0])
		if err := checkValue(v); err != nil {
			return Metadata{}, fmt.Errorf("%w: %s field: %v", ErrMalformed, f.key, err)
		}
		*f.dst = v
	}
	return m, nil
}

// maxValueLen bounds Name and Version: real ones are a few dozen bytes.
const maxValueLen = 1024

func checkValue(v string) error {
	switch {
	case v == "":
		return errors.New("empty")
	case len(v) > maxValueLen:
		return fmt.Errorf("%d bytes, more than %d", len(v), maxValueLen)
	case !utf8.ValidString(v):
		return errors.New("not valid UTF-8")
	case strings.ContainsFunc(v, unicode.IsControl):
		return errors.New("a control character")
	}
	return nil
}

var separators = regexp.MustCompile(`[-_.]+`)

// NormalizeName returns name normalised as PEP 503 says: runs of "-", "_"
// and "." become one "-", and letters are lowercased ("Foo.Bar_baz" →
// "foo-bar-baz"). The purl of a PyPI package uses it.
func NormalizeName(name string) string {
	return strings.ToLower(separators.ReplaceAllString(name, "-"))
}
