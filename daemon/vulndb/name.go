package vulndb

import "strings"

// NormalizeName is the package-name rule shared by the index and the
// matcher: PyPI names are normalized per PEP 503 (lowercase, every run of
// "-", "_" and "." becomes one "-"); every other ecosystem's names are
// compared as they are.
func NormalizeName(ecosystem, name string) string {
	if ecosystem == "PyPI" {
		return normalizePyPI(name)
	}
	return name
}

func normalizePyPI(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	sep := false
	for _, r := range strings.ToLower(name) {
		if r == '-' || r == '_' || r == '.' {
			sep = true
			continue
		}
		if sep {
			b.WriteByte('-')
			sep = false
		}
		b.WriteRune(r)
	}
	if sep {
		b.WriteByte('-')
	}
	return b.String()
}
