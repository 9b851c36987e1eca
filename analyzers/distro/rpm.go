package distro

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/assayhq/assay/analyzers/osrelease"
)

// UnknownEcosystem is the ecosystem of packages of an image whose
// os-release is missing or names no distribution. It is no OSV ecosystem:
// the SDK needs one, and this one names what is known, that the package
// is an RPM.
const UnknownEcosystem = "RPM"

// Ecosystems are the OSV ecosystems this analyzer maps distributions to
// (osv-schema's ecosystem list), each optionally with a ":<release>"
// suffix.
var Ecosystems = []string{"AlmaLinux", "Azure Linux", "Mageia", "Red Hat", "Rocky Linux", "SUSE", "openEuler", "openSUSE"}

// Distro is what the packages of an image take from its os-release.
type Distro struct {
	// Ecosystem is the OSV ecosystem ("Red Hat:enterprise_linux:9::baseos",
	// "AlmaLinux:9", "openSUSE:Leap 15.5"), or, for a distribution OSV does
	// not know, os-release's ID and VERSION_ID as osrelease spells them
	// ("Fedora:42"), or UnknownEcosystem.
	Ecosystem string
	// OSV tells whether Ecosystem is one of OSV's.
	OSV bool
	// Epoch tells whether a non-zero epoch goes into the version
	// ("1:3.0.7-27.el9"): OSV's records of the Red Hat family carry
	// epochs, those of SUSE, openSUSE, openEuler, Azure Linux and Mageia
	// do not (and osv-scalibr's matcher prefixes the epoch only for the
	// former). For a distribution OSV does not know, rpm's own spelling
	// is kept: with the epoch.
	Epoch bool
	// Namespace is the purl namespace, the distribution's vendor:
	// "redhat", "suse", "opensuse", "fedora"; "" when unknown.
	Namespace string
	// Qualifier is the purl distro qualifier, "<ID>-<VERSION_ID>"
	// ("rhel-9.4"); "" when either is unknown.
	Qualifier string
}

// validID is os-release(5)'s charset of ID and VERSION_ID (lower case,
// digits, ".", "_", "-"); upper case is allowed too, for VERSION_IDs seen
// in the wild. A value outside it is not used.
var validID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// validCPESuffix is what a Red Hat CPE_NAME may leave after ":redhat:"
// ("enterprise_linux:9::baseos").
var validCPESuffix = regexp.MustCompile(`^[A-Za-z0-9._:~-]{1,128}$`)

// openEulerPrettyName is how osv-scalibr reads openEuler's release from
// PRETTY_NAME: "openEuler 24.03 (LTS-SP1)" is release "24.03-LTS-SP1".
var openEulerPrettyName = regexp.MustCompile(`^openEuler\s+([0-9]{2}\.[0-9]{2})(?:\s*\((LTS(?:[- ]SP\d+)?)\))?$`)

// RPM returns what packages take from the os-release rel, following
// osv-scalibr v0.5.3's mapping of os-release to OSV ecosystems
// (extractor/filesystem/os/ecosystem, for rpm metadata):
//
//   - rhel: "Red Hat", with ":" and what CPE_NAME has after ":redhat:"
//     ("Red Hat:enterprise_linux:9::baseos"), which is how OSV's Red Hat
//     records name products;
//   - rocky: "Rocky Linux";
//   - almalinux: "AlmaLinux:<major of VERSION_ID>" ("AlmaLinux:9");
//   - sles: "SUSE:<VERSION_ID>";
//   - opensuse-leap: "openSUSE:Leap <VERSION_ID>" ("openSUSE:Leap 15.5");
//   - azurelinux, mariner: "Azure Linux:<VERSION_ID>";
//   - mageia: "Mageia:<VERSION_ID>";
//   - openeuler: "openEuler:<release>" from PRETTY_NAME
//     ("openEuler:24.03-LTS"), else VERSION_ID.
//
// Any other valid ID has no OSV ecosystem (Fedora, CentOS, Amazon Linux,
// Oracle Linux, openSUSE Tumbleweed, ...): Ecosystem is then
// osrelease's spelling ("Fedora:42") and OSV is false. Without a valid
// ID, Ecosystem is UnknownEcosystem.
func RPM(rel osrelease.Release) Distro {
	id := rel.ID
	if !validID.MatchString(id) {
		return Distro{Ecosystem: UnknownEcosystem, Epoch: true}
	}
	ver := rel.VersionID
	if !validID.MatchString(ver) {
		ver = ""
	}
	d := Distro{Namespace: namespace(id), Epoch: true}
	if v := ver; v != "" {
		d.Qualifier = id + "-" + v
	} else if b := rel.Fields["BUILD_ID"]; validID.MatchString(b) {
		d.Qualifier = id + "-" + b
	}
	with := func(name, suffix string) {
		d.Ecosystem, d.OSV = name, true
		if suffix != "" {
			d.Ecosystem += ":" + suffix
		}
	}
	switch id {
	case "rhel":
		suffix := ""
		if _, s, ok := strings.Cut(rel.Fields["CPE_NAME"], ":redhat:"); ok && validCPESuffix.MatchString(s) {
			suffix = s
		}
		with("Red Hat", suffix)
	case "rocky":
		with("Rocky Linux", "")
	case "almalinux":
		major, _, _ := strings.Cut(ver, ".")
		with("AlmaLinux", major)
	case "sles":
		with("SUSE", ver)
		d.Epoch = false
	case "opensuse-leap":
		if ver != "" {
			ver = "Leap " + ver
		}
		with("openSUSE", ver)
		d.Epoch = false
	case "azurelinux", "mariner":
		with("Azure Linux", ver)
		d.Epoch = false
	case "mageia":
		with("Mageia", ver)
		d.Epoch = false
	case "openeuler":
		with("openEuler", openEulerRelease(rel, ver))
		d.Epoch = false
	default:
		d.Ecosystem = osrelease.Release{ID: id, VersionID: ver}.Ecosystem()
	}
	return d
}

// namespace returns the purl namespace of a distribution: its vendor, as
// the purl specification's rpm type asks ("fedora", "opensuse").
func namespace(id string) string {
	switch {
	case id == "rhel":
		return "redhat" // as Red Hat's own purls spell it (VEX, CSAF)
	case id == "sles" || strings.HasPrefix(id, "sles_") || id == "sle-micro" || id == "sl-micro":
		return "suse"
	case strings.HasPrefix(id, "opensuse"):
		return "opensuse"
	case id == "mariner":
		return "azurelinux"
	}
	return id
}

// openEulerRelease is osv-scalibr's openEuler release: "24.03-LTS-SP1"
// from PRETTY_NAME "openEuler 24.03 (LTS SP1)", else VERSION_ID.
func openEulerRelease(rel osrelease.Release, ver string) string {
	m := openEulerPrettyName.FindStringSubmatch(strings.TrimSpace(rel.PrettyName))
	if m == nil {
		return ver
	}
	if q := strings.Trim(strings.ReplaceAll(strings.TrimSpace(m[2]), " ", "-"), "-"); q != "" {
		return m[1] + "-" + q
	}
	return m[1]
}

// EVR returns a package's version as the distribution's OSV records
// spell it: "<version>-<release>", with "<epoch>:" in front when the epoch
// is not zero and d.Epoch says the records carry epochs.
func (d Distro) EVR(epoch int, version, release string) string {
	vr := version + "-" + release
	if epoch != 0 && d.Epoch {
		return strconv.Itoa(epoch) + ":" + vr
	}
	return vr
}

// PURL returns the package URL of an rpm, as the purl specification's rpm
// type says: pkg:rpm/<vendor>/<name>@<version>-<release>?arch=<arch>&epoch=<epoch>&distro=<id>-<version-id>,
// with epoch only when it is not zero.
func (d Distro) PURL(name string, epoch int, version, release, arch string) string {
	q := map[string]string{}
	if arch != "" {
		q["arch"] = arch
	}
	if epoch != 0 {
		q["epoch"] = strconv.Itoa(epoch)
	}
	if d.Qualifier != "" {
		q["distro"] = d.Qualifier
	}
	return packageurl.NewPackageURL(packageurl.TypeRPM, d.Namespace, name, version+"-"+release, packageurl.QualifiersFromMap(q), "").ToString()
}
