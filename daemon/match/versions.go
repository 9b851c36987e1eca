package match

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/google/osv-scalibr/semantic"
)

// ErrUnsupportedEcosystem is returned for an ecosystem whose version
// ordering is not known: its versions are never guessed at.
var ErrUnsupportedEcosystem = errors.New("no version ordering is known for this ecosystem")

// ErrInvalidVersion is returned for a version the ecosystem's rules refuse.
var ErrInvalidVersion = errors.New("invalid version")

// Orderings: the version comparison rules. Several ecosystems share one.
const (
	OrderingDebian    = "Debian" // dpkg (Debian, Ubuntu)
	OrderingRPM       = "RPM"    // rpmvercmp (Red Hat and the RPM distributions)
	OrderingAlpine    = "Alpine" // apk (Alpine, Wolfi, Chainguard...)
	OrderingSemVer    = "SemVer" // SemVer 2.0 (Go, npm, crates.io...; SEMVER ranges)
	OrderingPyPI      = "PyPI"   // PEP 440
	OrderingMaven     = "Maven"
	OrderingRubyGems  = "RubyGems"
	OrderingNuGet     = "NuGet"
	OrderingPackagist = "Packagist"
	OrderingPub       = "Pub"
	OrderingCRAN      = "CRAN"
	OrderingHackage   = "Hackage"
)

// orderings maps an OSV ecosystem name, without its ":release" suffix, to
// its ordering. Only ecosystems whose rules semantic implements are here.
var orderings = map[string]string{
	"Debian": OrderingDebian,
	"Ubuntu": OrderingDebian,

	"Red Hat":     OrderingRPM,
	"AlmaLinux":   OrderingRPM,
	"Rocky Linux": OrderingRPM,
	"openSUSE":    OrderingRPM,
	"SUSE":        OrderingRPM,
	"Mageia":      OrderingRPM,
	"openEuler":   OrderingRPM,
	"Photon OS":   OrderingRPM, // RPM packages; OSV names the RPM

	"Alpine":                       OrderingAlpine,
	"Alpaquita":                    OrderingAlpine,
	"BellSoft Hardened Containers": OrderingAlpine,
	"Chainguard":                   OrderingAlpine,
	"MinimOS":                      OrderingAlpine,
	"Wolfi":                        OrderingAlpine,

	"Go":                     OrderingSemVer,
	"npm":                    OrderingSemVer,
	"crates.io":              OrderingSemVer,
	"Hex":                    OrderingSemVer,
	"Bitnami":                OrderingSemVer,
	"Bioconductor":           OrderingSemVer,
	"ConanCenter":            OrderingSemVer,
	"Docker Hardened Images": OrderingSemVer,
	"GHC":                    OrderingSemVer,
	"Julia":                  OrderingSemVer,
	"SwiftURL":               OrderingSemVer,

	"PyPI":      OrderingPyPI,
	"Maven":     OrderingMaven,
	"RubyGems":  OrderingRubyGems,
	"NuGet":     OrderingNuGet,
	"Packagist": OrderingPackagist,
	"Pub":       OrderingPub,
	"CRAN":      OrderingCRAN,
	"Hackage":   OrderingHackage,
}

// semanticName is the ecosystem name semantic.Parse is given per ordering.
var semanticName = map[string]string{
	OrderingDebian:    "Debian",
	OrderingRPM:       "Red Hat",
	OrderingAlpine:    "Alpine",
	OrderingSemVer:    "npm",
	OrderingPyPI:      "PyPI",
	OrderingMaven:     "Maven",
	OrderingRubyGems:  "RubyGems",
	OrderingNuGet:     "NuGet",
	OrderingPackagist: "Packagist",
	OrderingPub:       "Pub",
	OrderingCRAN:      "CRAN",
	OrderingHackage:   "Hackage",
}

// BaseEcosystem strips the release or repository suffix from an OSV
// ecosystem name: "Debian:12" → "Debian", "Ubuntu:Pro:18.04:LTS" →
// "Ubuntu", "Maven:https://maven.google.com" → "Maven".
func BaseEcosystem(ecosystem string) string {
	base, _, _ := strings.Cut(ecosystem, ":")
	return base
}

// Ordering returns the name of the version ordering an OSV ecosystem uses
// (one of the Ordering constants), or ErrUnsupportedEcosystem.
func Ordering(ecosystem string) (string, error) {
	o, ok := orderings[BaseEcosystem(ecosystem)]
	if !ok {
		return "", fmt.Errorf("match: ecosystem %q: %w", ecosystem, ErrUnsupportedEcosystem)
	}
	return o, nil
}

// Supported reports whether versions of the ecosystem can be ordered.
func Supported(ecosystem string) bool {
	_, ok := orderings[BaseEcosystem(ecosystem)]
	return ok
}

// Version is a version parsed under one ordering's rules. The zero value is
// not a valid version.
type Version struct {
	ordering string
	raw      string
	v        semantic.Version
}

// ParseVersion parses s under the rules of the OSV ecosystem. For Go, a
// toolchain version ("go1.21.3", "go1.21rc2", as binaries report the
// stdlib) is read as the semver the Go advisories use ("1.21.3",
// "1.21.0-rc.2"); a module version's "v" prefix is optional.
func ParseVersion(ecosystem, s string) (Version, error) {
	o, err := Ordering(ecosystem)
	if err != nil {
		return Version{}, err
	}
	if BaseEcosystem(ecosystem) == "Go" {
		s = goVersion(s)
	}
	return parseOrdered(o, s)
}

// parseSemVer parses s as SemVer 2.0, as OSV's SEMVER ranges are ordered
// whatever the ecosystem.
func parseSemVer(s string) (Version, error) { return parseOrdered(OrderingSemVer, s) }

func parseOrdered(ordering, s string) (v Version, err error) {
	if strings.TrimSpace(s) == "" {
		return Version{}, fmt.Errorf("match: empty version: %w", ErrInvalidVersion)
	}
	if ordering == OrderingSemVer && !semverLike(s) {
		return Version{}, fmt.Errorf("match: %q is not a semantic version (it must start with a number): %w", short(s), ErrInvalidVersion)
	}
	defer func() {
		// semantic is not ours: a panic on some input must not end the
		// scan.
		if r := recover(); r != nil {
			v, err = Version{}, fmt.Errorf("match: parsing %q as a %s version failed: %v: %w", short(s), ordering, r, ErrInvalidVersion)
		}
	}()
	sv, perr := semantic.Parse(s, semanticName[ordering])
	if perr != nil {
		return Version{}, fmt.Errorf("match: %q is not a valid %s version: %w (%w)", short(s), ordering, ErrInvalidVersion, perr)
	}
	// Comparing with itself catches what semantic only finds when
	// comparing (a Debian revision with a number too large to read).
	if _, cerr := sv.Compare(sv); cerr != nil {
		return Version{}, fmt.Errorf("match: %q is not a valid %s version: %w (%w)", short(s), ordering, ErrInvalidVersion, cerr)
	}
	return Version{ordering: ordering, raw: s, v: sv}, nil
}

// String returns the version as it was given (after Go's toolchain
// normalisation).
func (v Version) String() string { return v.raw }

// Ordering returns the name of the ordering v was parsed under.
func (v Version) Ordering() string { return v.ordering }

// Compare returns -1, 0 or +1 as v is lower than, equal to or higher than
// w. Versions of different orderings cannot be compared.
func (v Version) Compare(w Version) (c int, err error) {
	if v.v == nil || w.v == nil {
		return 0, fmt.Errorf("match: comparing a version that was not parsed: %w", ErrInvalidVersion)
	}
	if v.ordering != w.ordering {
		return 0, fmt.Errorf("match: cannot compare a %s version with a %s version", v.ordering, w.ordering)
	}
	defer func() {
		if r := recover(); r != nil {
			c, err = 0, fmt.Errorf("match: comparing %q with %q failed: %v: %w", short(v.raw), short(w.raw), r, ErrInvalidVersion)
		}
	}()
	c, err = v.v.Compare(w.v)
	if err != nil {
		return 0, fmt.Errorf("match: comparing %q with %q: %w (%w)", short(v.raw), short(w.raw), ErrInvalidVersion, err)
	}
	return sign(c), nil
}

// Compare parses a and b under the rules of the OSV ecosystem and returns
// -1, 0 or +1 as a is lower than, equal to or higher than b.
func Compare(ecosystem, a, b string) (int, error) {
	va, err := ParseVersion(ecosystem, a)
	if err != nil {
		return 0, err
	}
	vb, err := ParseVersion(ecosystem, b)
	if err != nil {
		return 0, err
	}
	return va.Compare(vb)
}

func sign(c int) int {
	switch {
	case c < 0:
		return -1
	case c > 0:
		return 1
	}
	return 0
}

// semverLike accepts what can be read as a semantic version: a number
// first, after an optional "v". semantic itself reads anything ("latest"
// would be 0.0.0-latest and fall into every range), which is a guess.
func semverLike(s string) bool {
	s = strings.TrimPrefix(s, "v")
	return s != "" && s[0] >= '0' && s[0] <= '9'
}

// goTag matches a Go toolchain version: go1.21.3, go1.21, go1.21rc2,
// go1.9beta1.
var goTag = regexp.MustCompile(`^go(\d+\.\d+)(\.\d+)?(?:(beta|rc)(\d+))?$`)

// goVersion turns a Go toolchain version into the semver Go advisories
// use for the stdlib and toolchain ("go1.21.3" → "1.21.3", "go1.21" →
// "1.21.0", "go1.21rc2" → "1.21.0-rc.2", as golang.org/x/vuln does), and
// leaves anything else (module versions) as it is. Only the first word
// counts ("go1.21.3 X:boringcrypto").
func goVersion(s string) string {
	if !strings.HasPrefix(s, "go") {
		return s
	}
	f := strings.Fields(s)
	if len(f) == 0 {
		return s
	}
	if f[0] == "go1" {
		return "1.0.0"
	}
	m := goTag.FindStringSubmatch(f[0])
	if m == nil {
		return s
	}
	v := m[1]
	if m[2] != "" {
		v += m[2]
	} else {
		v += ".0"
	}
	if m[3] != "" {
		v += "-" + m[3] + "." + m[4]
	}
	return v
}

// NormalizeName returns the form of a package name under which an
// ecosystem's advisories and inventories are compared. PyPI names are
// normalised as PEP 503 says (lower case, runs of "-", "_" and "." made
// one "-"); other ecosystems' names are compared as they are. It is the
// one rule: daemon/vulndb indexes records and daemon/store indexes
// inventories by it.
func NormalizeName(ecosystem, name string) string {
	if BaseEcosystem(ecosystem) == "PyPI" {
		return strings.ToLower(pep503Separators.ReplaceAllString(name, "-"))
	}
	return name
}

var pep503Separators = regexp.MustCompile(`[-_.]+`)

// short bounds a string quoted in an error: versions come from records and
// inventories and may be anything.
func short(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
