package distro

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/assayhq/assay/analyzers/osrelease"
)

// readRelease parses one of the real os-release files of
// testdata/os-release (see testdata/README.md).
func readRelease(t *testing.T, name string) osrelease.Release {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "os-release", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kv, err := osrelease.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return osrelease.FromFields(kv)
}

// DistroOf on real os-release files. The expected ecosystems are
// osv-scalibr v0.5.3's (extractor/filesystem/os/ecosystem/ecosystem.go,
// the *rpmmeta.Metadata case), the purl namespaces and distro qualifiers
// its purl code's and the purl specification's, except rhel → redhat (as
// Red Hat's own purls have it).
func TestRPM(t *testing.T) {
	for _, tc := range []struct {
		file string
		want Distro
	}{
		{"rhel", Distro{Ecosystem: "Red Hat:enterprise_linux:9::baseos", OSV: true, Epoch: true, Namespace: "redhat", Qualifier: "rhel-9.4"}},
		{"rocky", Distro{Ecosystem: "Rocky Linux", OSV: true, Epoch: true, Namespace: "rocky", Qualifier: "rocky-9.3"}},
		{"alma", Distro{Ecosystem: "AlmaLinux:9", OSV: true, Epoch: true, Namespace: "almalinux", Qualifier: "almalinux-9.4"}},
		{"sles", Distro{Ecosystem: "SUSE:15.3", OSV: true, Namespace: "suse", Qualifier: "sles-15.3"}},
		{"opensuseleap-15.2.1", Distro{Ecosystem: "openSUSE:Leap 15.2.1", OSV: true, Namespace: "opensuse", Qualifier: "opensuse-leap-15.2.1"}},
		{"azurelinux-3.0", Distro{Ecosystem: "Azure Linux:3.0", OSV: true, Namespace: "azurelinux", Qualifier: "azurelinux-3.0"}},
		{"mariner-2.0", Distro{Ecosystem: "Azure Linux:2.0", OSV: true, Namespace: "azurelinux", Qualifier: "mariner-2.0"}},
		// No OSV ecosystem: osrelease's spelling, epochs as rpm has them.
		{"fedora", Distro{Ecosystem: "Fedora:42", Epoch: true, Namespace: "fedora", Qualifier: "fedora-42"}},
		{"centos", Distro{Ecosystem: "Centos:7", Epoch: true, Namespace: "centos", Qualifier: "centos-7"}},
		{"oracle", Distro{Ecosystem: "Ol:8.10", Epoch: true, Namespace: "ol", Qualifier: "ol-8.10"}},
		{"opensusetumbleweed", Distro{Ecosystem: "Opensuse-tumbleweed:20220412", Epoch: true, Namespace: "opensuse", Qualifier: "opensuse-tumbleweed-20220412"}},
		{"no-id", Distro{Ecosystem: "RPM", Epoch: true}},
	} {
		if got := RPM(readRelease(t, tc.file)); got != tc.want {
			t.Errorf("%s: DistroOf = %+v\nwant %+v", tc.file, got, tc.want)
		}
	}
}

func TestRPMOddFields(t *testing.T) {
	for _, tc := range []struct {
		name string
		rel  osrelease.Release
		want Distro
	}{
		{"rhel without a Red Hat CPE", osrelease.Release{ID: "rhel", VersionID: "9.4", Fields: map[string]string{"CPE_NAME": "cpe:/o:other:x:9"}},
			Distro{Ecosystem: "Red Hat", OSV: true, Epoch: true, Namespace: "redhat", Qualifier: "rhel-9.4"}},
		{"rhel with a CPE that is not one", osrelease.Release{ID: "rhel", Fields: map[string]string{"CPE_NAME": "cpe:/o:redhat:enterprise linux\n9"}},
			Distro{Ecosystem: "Red Hat", OSV: true, Epoch: true, Namespace: "redhat"}},
		{"BUILD_ID for the qualifier", osrelease.Release{ID: "fedora", Fields: map[string]string{"BUILD_ID": "rawhide"}},
			Distro{Ecosystem: "Fedora", Epoch: true, Namespace: "fedora", Qualifier: "fedora-rawhide"}},
		{"invalid ID", osrelease.Release{ID: "rhel 9", VersionID: "9"}, Distro{Ecosystem: "RPM", Epoch: true}},
		{"invalid VERSION_ID", osrelease.Release{ID: "almalinux", VersionID: "9 (x)"},
			Distro{Ecosystem: "AlmaLinux", OSV: true, Epoch: true, Namespace: "almalinux"}},
		{"openEuler LTS", osrelease.Release{ID: "openeuler", VersionID: "24.03", PrettyName: "openEuler 24.03 (LTS SP1)"},
			Distro{Ecosystem: "openEuler:24.03-LTS-SP1", OSV: true, Namespace: "openeuler", Qualifier: "openeuler-24.03"}},
		{"openEuler innovation", osrelease.Release{ID: "openeuler", VersionID: "24.09", PrettyName: "openEuler 24.09"},
			Distro{Ecosystem: "openEuler:24.09", OSV: true, Namespace: "openeuler", Qualifier: "openeuler-24.09"}},
		{"empty", osrelease.Release{}, Distro{Ecosystem: "RPM", Epoch: true}},
	} {
		if got := RPM(tc.rel); got != tc.want {
			t.Errorf("%s: DistroOf = %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
}

func TestEVRAndPURL(t *testing.T) {
	rh := RPM(readRelease(t, "rhel"))
	suse := RPM(readRelease(t, "sles"))
	for _, tc := range []struct {
		d                 Distro
		epoch             int
		name, v, r, arch  string
		wantEVR, wantPURL string
	}{
		{rh, 1, "openssl", "3.0.7", "27.el9", "x86_64", "1:3.0.7-27.el9", "pkg:rpm/redhat/openssl@3.0.7-27.el9?arch=x86_64&distro=rhel-9.4&epoch=1"},
		{rh, 0, "bash", "5.1.8", "9.el9", "x86_64", "5.1.8-9.el9", "pkg:rpm/redhat/bash@5.1.8-9.el9?arch=x86_64&distro=rhel-9.4"},
		{suse, 3, "libstdc++6", "11.2.1+git610", "1.3.9", "", "11.2.1+git610-1.3.9", "pkg:rpm/suse/libstdc%2B%2B6@11.2.1%2Bgit610-1.3.9?distro=sles-15.3&epoch=3"},
		{Distro{}, 0, "x", "1", "1", "noarch", "1-1", "pkg:rpm/x@1-1?arch=noarch"},
	} {
		if got := tc.d.EVR(tc.epoch, tc.v, tc.r); got != tc.wantEVR {
			t.Errorf("EVR = %q, want %q", got, tc.wantEVR)
		}
		if got := tc.d.PURL(tc.name, tc.epoch, tc.v, tc.r, tc.arch); got != tc.wantPURL {
			t.Errorf("PURL = %q, want %q", got, tc.wantPURL)
		}
	}
}
