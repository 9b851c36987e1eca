// Package distro says what the packages of an OS package database take
// from the image's os-release: the OSV ecosystem ("Debian:12",
// "Alpine:v3.20", "Red Hat:enterprise_linux:9::baseos"), the version's
// spelling (rpm epochs) and the purl's namespace and distro qualifier.
//
// Extractors read a layer without knowing the image's os-release (it may
// sit in another layer), so they emit OS packages with sdk.Package.OS set
// and the family as ecosystem; the image merge (analyzers/inventory) calls
// Finish on each once the layers are merged.
package distro

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/assayhq/assay/analyzers/osrelease"
	"github.com/assayhq/assay/plugins/sdk"
)

// The OS package databases (sdk.Package.OS).
const (
	Dpkg = "dpkg"
	Apk  = "apk"
	RPMs = "rpm"
)

// Finish sets p's Ecosystem, Version and PURL from the image's
// os-release; found is false when the image has none. It returns a
// warning for the image ("" when there is nothing to say); the same
// warning comes for every package of the same database, so the caller
// keeps one of each.
func Finish(p *sdk.Package, rel osrelease.Release, found bool) string {
	switch p.OS {
	case Dpkg:
		return finishDpkg(p, rel, found)
	case Apk:
		return finishApk(p, rel, found)
	case RPMs:
		return finishRPM(p, rel, found)
	}
	return ""
}

func noRelease(os, eco string, rel osrelease.Release, found bool, why string) string {
	if !found {
		return fmt.Sprintf("no os-release (%s): %s packages are reported as ecosystem %q, without a release", strings.Join(osrelease.Paths, ", "), os, eco)
	}
	return fmt.Sprintf("%s %s: %s packages are reported as ecosystem %q, without a release", rel.Path, why, os, eco)
}

func finishDpkg(p *sdk.Package, rel osrelease.Release, found bool) string {
	if p.Ecosystem == "" {
		p.Ecosystem = "Debian"
	}
	namespace, qualifier, warn := strings.ToLower(p.Ecosystem), "", ""
	switch {
	case !found:
		warn = noRelease(Dpkg, p.Ecosystem, rel, found, "")
	case rel.ID == "":
		warn = noRelease(Dpkg, p.Ecosystem, rel, found, "has no ID")
	default:
		p.Ecosystem = rel.Ecosystem()
		namespace = rel.ID
		if rel.VersionID != "" {
			qualifier = rel.ID + "-" + rel.VersionID
		}
	}
	p.PURL = purl(packageurl.TypeDebian, namespace, p.Name, p.Version, p.Arch, 0, qualifier)
	return warn
}

func finishApk(p *sdk.Package, rel osrelease.Release, found bool) string {
	p.Ecosystem = "Alpine"
	qualifier, warn := "", ""
	switch {
	case !found:
		warn = noRelease(Apk, p.Ecosystem, rel, found, "")
	case rel.ID != "alpine":
		warn = noRelease(Apk, p.Ecosystem, rel, found, "has an ID other than alpine")
	default:
		if eco, ok := AlpineEcosystem(rel.VersionID); ok {
			p.Ecosystem = eco
			qualifier = "alpine-" + rel.VersionID
		} else {
			warn = noRelease(Apk, p.Ecosystem, rel, found, "has a VERSION_ID that is not an Alpine release (major.minor[.patch])")
		}
	}
	p.PURL = purl(packageurl.TypeApk, "alpine", p.Name, p.Version, p.Arch, 0, qualifier)
	return warn
}

func finishRPM(p *sdk.Package, rel osrelease.Release, found bool) string {
	if !found {
		rel = osrelease.Release{}
	}
	d := RPM(rel)
	warn := ""
	switch {
	case !found:
		warn = noRelease(RPMs, d.Ecosystem, rel, found, "")
	case d.Ecosystem == UnknownEcosystem:
		warn = noRelease(RPMs, d.Ecosystem, rel, found, "names no distribution")
	}
	p.Ecosystem = d.Ecosystem
	vr := p.Version // "<version>-<release>"
	if p.Epoch != 0 && d.Epoch {
		p.Version = strconv.Itoa(p.Epoch) + ":" + vr
	}
	p.PURL = purl(packageurl.TypeRPM, d.Namespace, p.Name, vr, p.Arch, p.Epoch, d.Qualifier)
	return warn
}

func purl(typ, namespace, name, version, arch string, epoch int, qualifier string) string {
	q := map[string]string{}
	if arch != "" {
		q["arch"] = arch
	}
	if epoch != 0 {
		q["epoch"] = strconv.Itoa(epoch)
	}
	if qualifier != "" {
		q["distro"] = qualifier
	}
	return packageurl.NewPackageURL(typ, namespace, name, version, packageurl.QualifiersFromMap(q), "").ToString()
}

// AlpineEcosystem returns OSV's name of an Alpine release's ecosystem from
// os-release's VERSION_ID: "3.20.3" → "Alpine:v3.20". OSV names Alpine's
// branches, major.minor, with a "v". ok is false unless versionID starts
// with two dot-separated decimal numbers of at most 4 digits (a third
// component, and a suffix after it such as "_alpha20240807" of edge
// snapshots, is allowed and ignored).
func AlpineEcosystem(versionID string) (string, bool) {
	major, rest, ok := strings.Cut(versionID, ".")
	if !ok || !decimal(major) {
		return "", false
	}
	minor := rest
	if i := strings.IndexAny(rest, "._"); i >= 0 {
		minor = rest[:i]
	}
	if !decimal(minor) {
		return "", false
	}
	return "Alpine:v" + major + "." + minor, true
}

func decimal(s string) bool {
	if s == "" || len(s) > 4 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
