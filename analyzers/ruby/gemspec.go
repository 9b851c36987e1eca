package ruby

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// Gemspec is what the analyzer takes from an installed gem's
// specification.
type Gemspec struct {
	Name    string
	Version string
	// Platform is "ruby" for a pure-Ruby gem, else the platform it was
	// built for ("x86_64-linux", "java").
	Platform string
}

// ErrMalformed is what ParseGemspec's errors about the content wrap. Their
// messages never quote the content, which may be anything (a link could
// make /etc/shadow the "gemspec").
var ErrMalformed = errors.New("malformed gemspec")

// PlatformRuby is the platform of a gem that is not built for one.
const PlatformRuby = "ruby"

// stubPrefix starts the stub line RubyGems writes as the second line of
// every installed specification since RubyGems 2.1 (2013), so that it can
// list gems without evaluating their specifications.
const stubPrefix = "# stub: "

// maxLine bounds the part of a line that is looked at: the lines that
// matter are short, others (s.files = [...]) can be long and are skipped.
const maxLine = 4096

// maxValueLen bounds a name, version or platform.
const maxValueLen = 256

var (
	// RubyGems' own patterns: Gem::Specification's VALID_NAME_PATTERN,
	// Gem::Version's ANCHORED_VERSION_PATTERN (without the blanks it
	// allows around), and a platform's parts (cpu-os-version).
	validName     = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)
	validVersion  = regexp.MustCompile(`^[0-9]+(\.[0-9a-zA-Z]+)*(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`)
	validPlatform = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)

	// The start of the specification block: Gem::Specification.new do
	// |s| (or { |spec| ...), and the block variable.
	specStart = regexp.MustCompile(`^\s*Gem::Specification\.new\b.*\|\s*([a-z_][a-zA-Z0-9_]*)\s*\|`)
	// An attribute assignment on a line of its own.
	assignment = regexp.MustCompile(`^\s*([a-z_][a-zA-Z0-9_]*)\.(name|version|platform)\s*=\s*(.*?)\s*$`)
	// The Ruby literals an installed specification uses for these
	// attributes: a string ("x", 'x', %q{x}) with .freeze or not, in
	// Gem::Version.new(...) or Gem::Platform.new(...), and
	// Gem::Platform::RUBY.
	wrapped = regexp.MustCompile(`^Gem::(?:Version|Platform)\.new\(\s*(.*?)\s*\)$`)
	literal = regexp.MustCompile(`^(?:"([^"\\#]*)"|'([^'\\]*)'|%[qQ]?\{([^{}\\#]*)\}|%[qQ]?\(([^()\\#]*)\)|%[qQ]?\[([^\[\]\\#]*)\]|%[qQ]?<([^<>\\#]*)>)(?:\.freeze)?$`)
)

// ParseGemspec reads an installed gem's specification (what RubyGems'
// Gem::Specification#to_ruby writes into a specifications directory)
// without evaluating it. The stub line ("# stub: NAME VERSION PLATFORM
// PATHS" as the second line) is what RubyGems itself lists gems by; a
// specification without one (RubyGems before 2.1) is read from the
// assignments in its Gem::Specification.new block: s.name = "x",
// s.version = "1.2.3" or Gem::Version.new("1.2.3"), s.platform = "...",
// each a literal on a line of its own, the first of each. Anything that
// would need Ruby to be evaluated (a constant, an interpolation, a
// method call) is not understood, and without a name and a version the
// file is malformed.
func ParseGemspec(r io.Reader) (Gemspec, error) {
	br := bufio.NewReaderSize(r, maxLine)
	var g Gemspec
	inSpec := false
	specVar := ""
	for n := 1; ; n++ {
		line, err := readLine(br)
		if err != nil && !errors.Is(err, io.EOF) {
			return Gemspec{}, fmt.Errorf("reading: %w", err)
		}
		if n == 2 {
			if s, ok := parseStub(line); ok {
				return s, nil
			}
		}
		switch m := assignment.FindStringSubmatch(line); {
		case !inSpec:
			if m := specStart.FindStringSubmatch(line); m != nil {
				inSpec, specVar = true, m[1]
			}
		case m != nil && m[1] == specVar:
			dst := map[string]*string{"name": &g.Name, "version": &g.Version, "platform": &g.Platform}[m[2]]
			if *dst != "" {
				break // the first assignment counts
			}
			v, ok := value(m[3], m[2])
			if !ok {
				return Gemspec{}, fmt.Errorf("%w: the %s is not a literal", ErrMalformed, m[2])
			}
			*dst = v
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	switch {
	case !inSpec:
		return Gemspec{}, fmt.Errorf("%w: no stub line and no Gem::Specification.new block", ErrMalformed)
	case g.Name == "" || g.Version == "":
		return Gemspec{}, fmt.Errorf("%w: no name or no version in the specification block", ErrMalformed)
	}
	if g.Platform == "" {
		g.Platform = PlatformRuby
	}
	if err := g.check(); err != nil {
		return Gemspec{}, err
	}
	return g, nil
}

// readLine returns the next line without its end, its first maxLine bytes
// only (the rest is read and dropped). At the end of the input it returns
// the last line, possibly empty, with io.EOF.
func readLine(br *bufio.Reader) (string, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if room := maxLine - len(line); room > 0 {
			line = append(line, chunk[:min(len(chunk), room)]...)
		}
		switch {
		case err == nil:
			return strings.TrimRight(string(line), "\r\n"), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return strings.TrimRight(string(line), "\r\n"), err
		}
	}
}

// parseStub reads a stub line as RubyGems' Gem::StubSpecification does:
// after the prefix, the name, version and platform separated by blanks
// (the require paths after them are not needed).
func parseStub(line string) (Gemspec, bool) {
	rest, ok := strings.CutPrefix(line, stubPrefix)
	if !ok {
		return Gemspec{}, false
	}
	f := strings.Fields(rest)
	if len(f) < 3 {
		return Gemspec{}, false
	}
	g := Gemspec{Name: f[0], Version: f[1], Platform: f[2]}
	if g.check() != nil {
		return Gemspec{}, false
	}
	return g, true
}

// value returns the string a literal on the right of an assignment to
// attr holds.
func value(rhs, attr string) (string, bool) {
	if attr == "platform" && (rhs == "Gem::Platform::RUBY" || rhs == "Gem::Platform::RUBY.freeze") {
		return PlatformRuby, true
	}
	if m := wrapped.FindStringSubmatch(rhs); m != nil && attr != "name" {
		rhs = m[1]
	}
	m := literal.FindStringSubmatch(rhs)
	if m == nil {
		return "", false
	}
	for _, s := range m[1:] {
		if s != "" {
			return strings.TrimSpace(s), true
		}
	}
	return "", true // an empty literal: check says so
}

// check validates the fields as RubyGems would.
func (g Gemspec) check() error {
	for _, f := range []struct {
		what, v string
		re      *regexp.Regexp
	}{
		{"name", g.Name, validName},
		{"version", g.Version, validVersion},
		{"platform", g.Platform, validPlatform},
	} {
		switch {
		case f.v == "":
			return fmt.Errorf("%w: empty %s", ErrMalformed, f.what)
		case len(f.v) > maxValueLen:
			return fmt.Errorf("%w: a %s of %d bytes, more than %d", ErrMalformed, f.what, len(f.v), maxValueLen)
		case !f.re.MatchString(f.v):
			return fmt.Errorf("%w: not a valid %s", ErrMalformed, f.what)
		}
	}
	return nil
}
