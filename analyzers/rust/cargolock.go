package rust

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// LockPackage is one [[package]] entry of a Cargo.lock: what the analyzer
// takes of it. Dependencies and checksums are not read.
type LockPackage struct {
	Name    string
	Version string
	// Source is where Cargo got the package:
	// "registry+https://github.com/rust-lang/crates.io-index",
	// "sparse+https://...", "git+https://...#<commit>", or "" for a path
	// dependency or a member of the workspace itself.
	Source string
}

// Lockfile is what ParseCargoLock returns.
type Lockfile struct {
	// Version is the lockfile format's version (3, 4); 0 for the v1 and
	// v2 formats, which do not say.
	Version int
	// Packages are the well-formed [[package]] entries, in file order.
	Packages []LockPackage
	// Invalid counts the entries left out because a name or version was
	// missing, empty, over maxValueLen bytes or held a control character.
	Invalid int
}

// ErrMalformed is what ParseCargoLock's errors about the content wrap.
// Their messages never quote the content (a link could make any file of
// the image the "Cargo.lock").
var ErrMalformed = errors.New("malformed Cargo.lock")

// The shape a file must have before it is given to the TOML decoder.
// BurntSushi/toml spends time and memory quadratic in the length of a key
// path (a 10 KB dotted key or a few thousand nested inline tables cost
// gigabytes), so a file with deeper nesting or longer dotted keys than a
// Cargo.lock ever has is refused first. Real lockfiles nest at most two
// levels ([[package]], dependencies = [ ... ]) and have one dotted key
// ([[patch.unused]]).
const (
	maxNesting = 4 // brackets and braces open at once, outside strings and comments
	maxKeyDots = 4 // dots outside strings between two of \n , = [ ] { }
)

// maxValueLen bounds a name and a version: crates.io allows 64-byte names,
// and versions are a few dozen bytes.
const maxValueLen = 1024

// cargoLock is the part of a Cargo.lock that is decoded.
type cargoLock struct {
	Version int `toml:"version"`
	Package []struct {
		Name    string `toml:"name"`
		Version string `toml:"version"`
		Source  string `toml:"source"`
	} `toml:"package"`
}

// ParseCargoLock parses a Cargo.lock (any format version: v1 with its
// [metadata] checksums, v2, v3, v4) and returns its [[package]] entries.
// A file that is not TOML, is not UTF-8, nests deeper or has longer dotted
// keys than a Cargo.lock ever does, or whose package fields have the
// wrong types, fails with an error wrapping ErrMalformed. A file without
// any [[package]] is an empty Lockfile.
func ParseCargoLock(data []byte) (Lockfile, error) {
	if !utf8.Valid(data) {
		return Lockfile{}, fmt.Errorf("%w: not UTF-8 text", ErrMalformed)
	}
	if err := checkShape(data); err != nil {
		return Lockfile{}, err
	}
	var lf cargoLock
	if _, err := toml.Decode(string(data), &lf); err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) && perr.Position.Line > 0 {
			return Lockfile{}, fmt.Errorf("%w: not valid TOML (line %d)", ErrMalformed, perr.Position.Line)
		}
		// The decoder's other errors name the key and the types; the
		// key is content, so it is not quoted.
		return Lockfile{}, fmt.Errorf("%w: a field has a type a Cargo.lock never gives it", ErrMalformed)
	}
	out := Lockfile{Version: lf.Version}
	for _, p := range lf.Package {
		if checkValue(p.Name) != nil || checkValue(p.Version) != nil || (p.Source != "" && checkValue(p.Source) != nil) {
			out.Invalid++
			continue
		}
		out.Packages = append(out.Packages, LockPackage{Name: p.Name, Version: p.Version, Source: p.Source})
	}
	return out, nil
}

// checkShape refuses what would make the TOML decoder slow: more than
// maxNesting brackets open at once, or more than maxKeyDots dots in one
// key. It follows TOML's lexical rules for strings (basic, literal and
// their multi-line forms, escapes) and comments, so that brackets and dots
// inside them are not counted and none outside them is missed; a string
// that a TOML parser would reject (a newline in a one-line string, no
// closing quotes) is malformed here already.
func checkShape(data []byte) error {
	depth, dots := 0, 0
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case '#':
			for i+1 < len(data) && data[i+1] != '\n' {
				i++
			}
		case '"', '\'':
			end, err := stringEnd(data, i)
			if err != nil {
				return err
			}
			i = end - 1
		case '[', '{':
			depth++
			dots = 0
			if depth > maxNesting {
				return fmt.Errorf("%w: nested deeper than %d levels", ErrMalformed, maxNesting)
			}
		case ']', '}':
			if depth > 0 {
				depth--
			}
			dots = 0
		case '\n', ',', '=':
			dots = 0
		case '.':
			if dots++; dots > maxKeyDots {
				return fmt.Errorf("%w: a dotted key of more than %d parts", ErrMalformed, maxKeyDots+1)
			}
		}
	}
	return nil
}

// stringEnd returns the index just past the TOML string that starts at
// data[start] (a quote or an apostrophe).
func stringEnd(data []byte, start int) (int, error) {
	q := data[start]
	multi := start+2 < len(data) && data[start+1] == q && data[start+2] == q
	escapes := q == '"'
	i := start + 1
	if multi {
		i = start + 3
	}
	for i < len(data) {
		c := data[i]
		switch {
		case c == '\\' && escapes:
			i += 2 // the escaped character, whatever it is
			continue
		case c == '\n' && !multi:
			return 0, fmt.Errorf("%w: a string runs past the end of its line", ErrMalformed)
		case c == q && !multi:
			return i + 1, nil
		case c == q:
			// In a multi-line string, three or more quotes end it; up to
			// two more before the closing three belong to the content.
			// A run of more than five is an error a TOML parser
			// reports: taking the whole run as the end agrees with it
			// up to there.
			n := 0
			for i+n < len(data) && data[i+n] == q {
				n++
			}
			if n >= 3 {
				return i + n, nil
			}
			i += n
			continue
		}
		i++
	}
	return 0, fmt.Errorf("%w: a string without its closing quote", ErrMalformed)
}

// checkValue checks a name, version or source: present, bounded, without
// control characters. TOML strings are valid UTF-8 already.
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
