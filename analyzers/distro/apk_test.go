package distro

import (
	"strings"
	"testing"

	"github.com/assayhq/assay/analyzers/osrelease"
	"github.com/assayhq/assay/plugins/sdk"
)

// The cases of the apk analyzer's Ecosystem test, which AlpineEcosystem
// replaced.
func TestAlpineEcosystem(t *testing.T) {
	for in, want := range map[string]string{
		"3.20.3": "Alpine:v3.20", "3.20": "Alpine:v3.20", "3.4.6": "Alpine:v3.4",
		"3.21.0_alpha20240807": "Alpine:v3.21", "3.21_alpha20240807": "Alpine:v3.21",
		"3": "", "": "", "v3.20": "", "3.x": "", "edge": "", "3.20.3\n": "Alpine:v3.20", "12345.1": "",
	} {
		got, ok := AlpineEcosystem(in)
		if got != want || ok != (want != "") {
			t.Errorf("AlpineEcosystem(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

// Finish of an apk package, as the apk extractor emits it, for the
// os-release cases the apk analyzer's tests had: a usable Alpine release,
// none, another distribution, a VERSION_ID that is not a release. The
// warnings never quote the file.
func TestFinishApk(t *testing.T) {
	parse := func(s string) osrelease.Release {
		kv, err := osrelease.Parse(strings.NewReader(s))
		if err != nil {
			t.Fatal(err)
		}
		r := osrelease.FromFields(kv)
		r.Path = "/etc/os-release"
		return r
	}
	for _, tc := range []struct {
		name      string
		rel       osrelease.Release
		found     bool
		ecosystem string
		purl      string
		warning   string
	}{
		{"alpine", parse("NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\n"), true, "Alpine:v3.20", "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.20.3", ""},
		{"no os-release", osrelease.Release{}, false, "Alpine", "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64",
			`no os-release (/etc/os-release, /usr/lib/os-release): apk packages are reported as ecosystem "Alpine", without a release`},
		{"another distribution", parse("ID=SECRET\nVERSION_ID=1.2\n"), true, "Alpine", "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64",
			`/etc/os-release has an ID other than alpine: apk packages are reported as ecosystem "Alpine", without a release`},
		{"no usable VERSION_ID", parse("ID=alpine\nVERSION_ID=SECRET\n"), true, "Alpine", "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64",
			`/etc/os-release has a VERSION_ID that is not an Alpine release (major.minor[.patch]): apk packages are reported as ecosystem "Alpine", without a release`},
	} {
		p := sdk.Package{OS: Apk, Ecosystem: "Alpine", Name: "musl", Version: "1.2.5-r0", Arch: "x86_64", SourceName: "musl", SourceVersion: "1.2.5-r0"}
		w := Finish(&p, tc.rel, tc.found)
		if p.Ecosystem != tc.ecosystem || p.PURL != tc.purl || p.Version != "1.2.5-r0" || w != tc.warning {
			t.Errorf("%s: %+v, warning %q; want %s, %s, warning %q", tc.name, p, w, tc.ecosystem, tc.purl, tc.warning)
		}
		if strings.Contains(w, "SECRET") {
			t.Errorf("%s: warning %q quotes the file", tc.name, w)
		}
	}
	// No arch: no qualifier for it.
	p := sdk.Package{OS: Apk, Ecosystem: "Alpine", Name: "a", Version: "1-r0"}
	Finish(&p, parse("ID=alpine\nVERSION_ID=3.20.3\n"), true)
	if p.PURL != "pkg:apk/alpine/a@1-r0?distro=alpine-3.20.3" || p.Ecosystem != "Alpine:v3.20" {
		t.Errorf("a = %+v", p)
	}
}
