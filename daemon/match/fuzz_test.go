package match

import (
	"testing"
)

// fuzzCompare seeds a fuzz target with the vector files' pairs and checks
// that comparing never panics, that a version equals itself, and that
// Compare is antisymmetric: Compare(a, b) == -Compare(b, a), with an error
// either both ways or neither.
func fuzzCompare(f *testing.F, ecosystem string, files ...string) {
	for _, file := range files {
		vs := readVectors(f, file)
		if len(vs) > 500 {
			vs = vs[:500]
		}
		for _, v := range vs {
			f.Add(v.a, v.b)
		}
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ab, errAB := Compare(ecosystem, a, b)
		ba, errBA := Compare(ecosystem, b, a)
		if (errAB == nil) != (errBA == nil) {
			t.Fatalf("Compare(%q, %q): %v; the other way round: %v", a, b, errAB, errBA)
		}
		if errAB == nil && ab != -ba {
			t.Fatalf("Compare(%q, %q) = %d but Compare(%q, %q) = %d", a, b, ab, b, a, ba)
		}
		if ab < -1 || ab > 1 {
			t.Fatalf("Compare(%q, %q) = %d", a, b, ab)
		}
		for _, s := range []string{a, b} {
			v, err := ParseVersion(ecosystem, s)
			if err != nil {
				continue
			}
			if c, err := v.Compare(v); err != nil || c != 0 {
				t.Fatalf("%q compared with itself: %d, %v", s, c, err)
			}
		}
	})
}

func FuzzCompareDebian(f *testing.F) {
	fuzzCompare(f, "Debian:12", "debian-versions.txt", "debian-versions-generated.txt")
}

func FuzzComparePyPI(f *testing.F) {
	fuzzCompare(f, "PyPI", "pypi-versions.txt", "pypi-versions-generated.txt")
}

func FuzzCompareSemver(f *testing.F) {
	fuzzCompare(f, "npm", "semver-versions.txt")
}

func FuzzCompareGo(f *testing.F) {
	f.Add("go1.21rc2", "1.21.0-rc.2")
	f.Add("go1.20", "v1.20.0")
	fuzzCompare(f, "Go", "semver-versions.txt")
}
