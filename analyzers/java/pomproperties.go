package java

import (
	"fmt"
	"strings"
)

// ParsePomProperties reads a META-INF/maven/<groupId>/<artifactId>/pom.properties
// file, which Maven's archiver writes into every artifact it builds, and
// returns its groupId, artifactId and version. The file is read as Java's
// Properties.load reads it (see parseProperties); the three keys are
// required, blanks around the values are removed, and each must be what
// Maven accepts (ids of [A-Za-z0-9_.-], a version without blanks); errors
// about the content wrap ErrMalformed and never quote it.
func ParsePomProperties(data []byte) (Coordinates, error) {
	props, err := parseProperties(data)
	if err != nil {
		return Coordinates{}, err
	}
	c := Coordinates{
		GroupID:    strings.TrimSpace(props["groupId"]),
		ArtifactID: strings.TrimSpace(props["artifactId"]),
		Version:    strings.TrimSpace(props["version"]),
	}
	if err := c.check(); err != nil {
		return Coordinates{}, err
	}
	return c, nil
}

// maxProperties bounds how many distinct keys parseProperties keeps: a
// pom.properties has three to five.
const maxProperties = 1024

// parseProperties reads data as java.util.Properties.load(InputStream)
// does: ISO 8859-1 bytes; natural lines end at \n, \r or \r\n; leading
// blanks (space, tab, form feed) are skipped; blank lines and lines whose
// first non-blank character is # or ! are comments; a line ending in an
// odd number of backslashes continues on the next one (whose leading
// blanks are dropped); the key ends at the first unescaped =, : or blank,
// then blanks and one = or : are skipped; escapes \t \n \r \f \uXXXX are
// decoded and any other backslash is dropped. A later key replaces an
// earlier one. A malformed \u escape fails (Java throws), as do more than
// maxProperties keys.
func parseProperties(data []byte) (map[string]string, error) {
	props := map[string]string{}
	lines := naturalLines(data)
	for i := 0; i < len(lines); i++ {
		line := trimLeadingBlanks(lines[i])
		if len(line) == 0 || line[0] == '#' || line[0] == '!' {
			continue
		}
		// A logical line: join continuations (never copying more than
		// data holds in total).
		var logical []byte
		for {
			if !continues(line) {
				logical = append(logical, line...)
				break
			}
			logical = append(logical, line[:len(line)-1]...)
			if i+1 >= len(lines) {
				break // a backslash at the end of the file is dropped
			}
			i++
			line = trimLeadingBlanks(lines[i])
		}
		k, v := splitKeyValue(logical)
		key, err := unescape(k)
		if err != nil {
			return nil, err
		}
		value, err := unescape(v)
		if err != nil {
			return nil, err
		}
		if _, ok := props[key]; !ok && len(props) >= maxProperties {
			return nil, fmt.Errorf("%w: more than %d properties", ErrMalformed, maxProperties)
		}
		props[key] = value
	}
	return props, nil
}

// naturalLines splits data at \n, \r and \r\n.
func naturalLines(data []byte) [][]byte {
	var lines [][]byte
	for len(data) > 0 {
		i := 0
		for i < len(data) && data[i] != '\n' && data[i] != '\r' {
			i++
		}
		lines = append(lines, data[:i])
		switch {
		case i == len(data):
			data = nil
		case data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n':
			data = data[i+2:]
		default:
			data = data[i+1:]
		}
	}
	return lines
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\f' }

func trimLeadingBlanks(b []byte) []byte {
	for len(b) > 0 && isBlank(b[0]) {
		b = b[1:]
	}
	return b
}

// continues tells whether line ends in an odd number of backslashes.
func continues(line []byte) bool {
	n := 0
	for i := len(line) - 1; i >= 0 && line[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

// splitKeyValue splits a logical line into its (still escaped) key and
// value.
func splitKeyValue(line []byte) (key, value []byte) {
	i := 0
	for i < len(line) {
		c := line[i]
		if c == '\\' {
			i += 2
			continue
		}
		if c == '=' || c == ':' {
			return line[:i], trimLeadingBlanks(line[i+1:])
		}
		if isBlank(c) {
			key = line[:i]
			rest := trimLeadingBlanks(line[i:])
			if len(rest) > 0 && (rest[0] == '=' || rest[0] == ':') {
				rest = trimLeadingBlanks(rest[1:])
			}
			return key, rest
		}
		i++
	}
	return line, nil
}

// unescape decodes the escapes of a key or value and its ISO 8859-1
// bytes into a Go (UTF-8) string.
func unescape(b []byte) (string, error) {
	var sb strings.Builder
	sb.Grow(len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\\' {
			sb.WriteRune(rune(c)) // ISO 8859-1: each byte is its code point
			continue
		}
		i++
		if i >= len(b) {
			break // a lone trailing backslash: dropped
		}
		switch c = b[i]; c {
		case 't':
			sb.WriteByte('\t')
		case 'n':
			sb.WriteByte('\n')
		case 'r':
			sb.WriteByte('\r')
		case 'f':
			sb.WriteByte('\f')
		case 'u':
			if i+4 >= len(b) {
				return "", fmt.Errorf("%w: a malformed \\uxxxx escape", ErrMalformed)
			}
			r := rune(0)
			for _, h := range b[i+1 : i+5] {
				d, ok := hexDigit(h)
				if !ok {
					return "", fmt.Errorf("%w: a malformed \\uxxxx escape", ErrMalformed)
				}
				r = r<<4 | d
			}
			sb.WriteRune(r) // a lone surrogate becomes U+FFFD
			i += 4
		default:
			sb.WriteRune(rune(c))
		}
	}
	return sb.String(), nil
}

func hexDigit(c byte) (rune, bool) {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0'), true
	case 'a' <= c && c <= 'f':
		return rune(c-'a') + 10, true
	case 'A' <= c && c <= 'F':
		return rune(c-'A') + 10, true
	}
	return 0, false
}
