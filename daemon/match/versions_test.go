package match

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// versionsDir holds osv-scalibr's semantic testdata ordering vectors.
const versionsDir = "../../../shared/testdata/versions"

// vectorFiles says which ecosystems each vector file is checked under, and
// how many comparison lines it holds (counted with awk, apart from this
// code: lines that are neither empty nor a "# " or "// " comment).
var vectorFiles = map[string]struct {
	ecosystems []string
	lines      int
}{
	"alpine-versions.txt":              {[]string{"Alpine:v3.20", "Wolfi", "Chainguard"}, 778},
	"alpine-versions-generated.txt":    {[]string{"Alpine:v3.20"}, 13979},
	"cran-versions.txt":                {[]string{"CRAN"}, 21},
	"cran-versions-generated.txt":      {[]string{"CRAN"}, 57},
	"debian-versions.txt":              {[]string{"Debian:12", "Ubuntu:22.04:LTS"}, 30},
	"debian-versions-generated.txt":    {[]string{"Debian:12"}, 14442},
	"hackage-versions.txt":             {[]string{"Hackage"}, 11},
	"maven-versions.txt":               {[]string{"Maven"}, 102},
	"maven-versions-generated.txt":     {[]string{"Maven"}, 14752},
	"nuget-versions.txt":               {[]string{"NuGet"}, 35},
	"packagist-versions.txt":           {[]string{"Packagist"}, 95},
	"packagist-versions-generated.txt": {[]string{"Packagist"}, 10630},
	"pub-versions.txt":                 {[]string{"Pub"}, 100},
	"pypi-versions.txt":                {[]string{"PyPI"}, 37},
	"pypi-versions-generated.txt":      {[]string{"PyPI"}, 12375},
	"redhat-versions.txt": {[]string{
		"Red Hat", "Red Hat:enterprise_linux:9::baseos", "Rocky Linux:9", "AlmaLinux:8",
		"openSUSE:Leap 15.5", "SUSE:Linux Enterprise Server 15 SP5", "Mageia:9", "openEuler:22.03-LTS",
	}, 165},
	"rubygems-versions.txt":           {[]string{"RubyGems"}, 25},
	"rubygems-versions-generated.txt": {[]string{"RubyGems"}, 4098},
	"semver-versions.txt":             {[]string{"npm", "crates.io", "Go"}, 86},
}

type vector struct {
	line    int
	a, b    string
	want    int
	literal string
}

func readVectors(t testing.TB, file string) []vector {
	t.Helper()
	f, err := os.Open(filepath.Join(versionsDir, file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vs []vector
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "# ") || strings.HasPrefix(line, "// ") {
			continue
		}
		p := strings.Split(line, " ")
		if len(p) != 3 {
			t.Fatalf("%s:%d: not 'a op b': %q", file, n, line)
		}
		want := map[string]int{"<": -1, "=": 0, ">": 1}
		w, ok := want[p[1]]
		if !ok {
			t.Fatalf("%s:%d: unknown operator %q", file, n, p[1])
		}
		vs = append(vs, vector{line: n, a: p[0], b: p[2], want: w, literal: line})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return vs
}

// TestVersionVectors checks every line of every vector file, both ways
// round, through Compare and through the parsed form.
func TestVersionVectors(t *testing.T) {
	t.Parallel()
	entries, err := os.ReadDir(versionsDir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".txt") {
			files = append(files, e.Name())
		}
	}
	for name := range vectorFiles {
		if !slices.Contains(files, name) {
			t.Errorf("vector file %s is gone", name)
		}
	}
	total, ecosystems := 0, map[string]bool{}
	for _, file := range files {
		spec, ok := vectorFiles[file]
		if !ok {
			t.Errorf("vector file %s is not checked: add it to vectorFiles", file)
			continue
		}
		vs := readVectors(t, file)
		if len(vs) != spec.lines {
			t.Errorf("%s: read %d lines, the file has %d", file, len(vs), spec.lines)
		}
		for _, eco := range spec.ecosystems {
			ecosystems[eco] = true
			checked, failed := 0, 0
			for _, v := range vs {
				ok := checkVector(t, eco, file, v)
				checked++
				if !ok {
					failed++
				}
				if failed > 20 {
					t.Fatalf("%s under %s: too many failures", file, eco)
				}
			}
			if checked != spec.lines {
				t.Errorf("%s under %s: checked %d of %d lines", file, eco, checked, spec.lines)
			}
			if eco == spec.ecosystems[0] {
				total += checked
			}
			t.Logf("%-34s %-40s %6d lines checked, %d failed", file, eco, checked, failed)
		}
	}
	t.Logf("%d lines of %d files checked under %d ecosystem names (each by Compare and both ways by ParseVersion)", total, len(files), len(ecosystems))
}

func checkVector(t *testing.T, eco, file string, v vector) bool {
	t.Helper()
	ok := true
	// The string form, one way round...
	got, err := Compare(eco, v.a, v.b)
	if err != nil || got != v.want {
		t.Errorf("%s:%d under %s: Compare(%q, %q) = %d, %v; the line says %q", file, v.line, eco, v.a, v.b, got, err, v.literal)
		ok = false
	}
	// ...and the parsed form both ways round.
	pa, errA := ParseVersion(eco, v.a)
	pb, errB := ParseVersion(eco, v.b)
	if errA != nil || errB != nil {
		t.Errorf("%s:%d under %s: ParseVersion: %v, %v", file, v.line, eco, errA, errB)
		return false
	}
	if c, err := pa.Compare(pb); err != nil || c != v.want {
		t.Errorf("%s:%d under %s: %q.Compare(%q) = %d, %v; the line says %q", file, v.line, eco, v.a, v.b, c, err, v.literal)
		ok = false
	}
	if c, err := pb.Compare(pa); err != nil || c != -v.want {
		t.Errorf("%s:%d under %s: %q.Compare(%q) = %d, %v; the line says %q", file, v.line, eco, v.b, v.a, c, err, v.literal)
		ok = false
	}
	return ok
}

func TestGoToolchainVersions(t *testing.T) {
	// The forms golang.org/x/vuln's GoTagToSemver produces, without its
	// "v" (the Go advisories' stdlib ranges have none).
	for tag, want := range map[string]string{
		"go1.21.3":                "1.21.3",
		"go1.20":                  "1.20.0",
		"go1.21rc2":               "1.21.0-rc.2",
		"go1.9beta1":              "1.9.0-beta.1",
		"go1":                     "1.0.0",
		"go1.21.3 X:boringcrypto": "1.21.3",
		"1.21.3":                  "1.21.3",
		"v0.3.5":                  "v0.3.5",
	} {
		if got := goVersion(tag); got != want {
			t.Errorf("goVersion(%q) = %q, want %q", tag, got, want)
		}
	}
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"go1.21.3", "1.21.3", 0},
		{"go1.20.1", "1.20.2", -1},
		{"go1.21rc2", "1.21.0", -1},
		{"go1.21rc2", "1.21.0-rc.1", 1},
		{"go1.21rc2", "1.21.0-0", 1}, // the vulndb's "introduced 1.21.0-0" is below every 1.21 prerelease
		{"go1.20", "1.20.0", 0},
		{"v0.3.5", "0.3.5", 0},
		{"v0.3.5", "0.3.7", -1},
		{"v0.0.0-20210226181525-66e3c3a9f2b0", "0.3.7", -1}, // pseudo-versions are prereleases
	} {
		got, err := Compare("Go", c.a, c.b)
		if err != nil || got != c.want {
			t.Errorf("Compare(Go, %q, %q) = %d, %v; want %d", c.a, c.b, got, err, c.want)
		}
	}
}

func TestUnsupportedEcosystemIsAnError(t *testing.T) {
	for _, eco := range []string{"Linux", "GitHub Actions", "Android", "", "debian:12", "OSS-Fuzz"} {
		if _, err := Compare(eco, "1.0", "2.0"); !errors.Is(err, ErrUnsupportedEcosystem) {
			t.Errorf("Compare(%q) = %v, want ErrUnsupportedEcosystem", eco, err)
		}
		if Supported(eco) {
			t.Errorf("Supported(%q)", eco)
		}
	}
	for _, eco := range []string{"Debian:12", "Ubuntu:Pro:18.04:LTS", "Alpine:v3.20", "Red Hat:rhel_aus:8.4::appstream", "Maven:https://maven.google.com", "Go", "PyPI"} {
		if !Supported(eco) {
			t.Errorf("Supported(%q) = false", eco)
		}
	}
}

func TestInvalidVersions(t *testing.T) {
	for _, c := range []struct{ eco, v string }{
		{"Debian:12", "1.2.3-not-a-debian:version!@#$"}, // from semantic's own test
		{"Debian:12", ""},
		{"npm", "latest"},
		{"Go", "devel go1.22-abcdef"},
		{"Go", ""},
		{"crates.io", "*"},
	} {
		if _, err := ParseVersion(c.eco, c.v); !errors.Is(err, ErrInvalidVersion) {
			t.Errorf("ParseVersion(%q, %q) = %v, want ErrInvalidVersion", c.eco, c.v, err)
		}
	}
	// semver's rules read "1.0" as 1.0.0: the comparator does not refuse
	// the two-part versions some npm advisories hold.
	if c, err := Compare("npm", "1.0", "1.0.0"); err != nil || c != 0 {
		t.Errorf("Compare(npm, 1.0, 1.0.0) = %d, %v", c, err)
	}
	// Versions of different orderings are not compared.
	d, _ := ParseVersion("Debian:12", "1.0")
	p, _ := ParseVersion("PyPI", "1.0")
	if _, err := d.Compare(p); err == nil {
		t.Error("a Debian version compared with a PyPI version")
	}
	if _, err := (Version{}).Compare(d); err == nil {
		t.Error("the zero Version compared")
	}
}

func TestNormalizeName(t *testing.T) {
	for _, c := range []struct{ eco, in, want string }{
		// PEP 503's examples.
		{"PyPI", "Friendly-Bard", "friendly-bard"},
		{"PyPI", "FRIENDLY-BARD", "friendly-bard"},
		{"PyPI", "friendly.bard", "friendly-bard"},
		{"PyPI", "friendly_bard", "friendly-bard"},
		{"PyPI", "friendly--bard", "friendly-bard"},
		{"PyPI", "FrIeNdLy-._.-bArD", "friendly-bard"},
		{"Debian:12", "libapt-pkg6.0", "libapt-pkg6.0"},
		{"Go", "github.com/BurntSushi/toml", "github.com/BurntSushi/toml"},
	} {
		if got := NormalizeName(c.eco, c.in); got != c.want {
			t.Errorf("NormalizeName(%q, %q) = %q, want %q", c.eco, c.in, got, c.want)
		}
	}
}
