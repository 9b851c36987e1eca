package formats

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/assayhq/assay/daemon/report"
)

// imageRef is the parts of the scanned reference that the documents name.
type imageRef struct {
	repository string // registry/path, without tag or digest
	name       string // the last path element: "debian" for .../library/debian
	tag        string
}

// parseImage splits a reference such as 127.0.0.1:5000/library/debian:12 or
// docker.io/library/alpine@sha256:... It never fails: an odd reference
// gives odd parts, and an empty one gives none.
func parseImage(ref string) imageRef {
	ref = strings.TrimSpace(ref)
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	var im imageRef
	// A tag is the part after the last colon, if that colon comes after the
	// last slash (a colon before it is a registry port).
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref, im.tag = ref[:i], ref[i+1:]
	}
	im.repository = ref
	im.name = strings.ToLower(ref[strings.LastIndex(ref, "/")+1:])
	return im
}

// imagePURL is the image's package URL, pkg:oci/<name>@<digest> with the
// repository, tag and architecture as qualifiers (the purl specification's
// oci type), or "" when the report has no digest or no image name.
func imagePURL(r *report.Report) string {
	im := parseImage(r.Image)
	if r.Digest == "" || im.name == "" {
		return ""
	}
	q := map[string]string{}
	if im.repository != "" && im.repository != im.name {
		q["repository_url"] = strings.ToLower(im.repository)
	}
	if im.tag != "" {
		q["tag"] = im.tag
	}
	// Platform is os/arch[/variant].
	if parts := strings.Split(r.Platform, "/"); len(parts) >= 2 && parts[1] != "" {
		q["arch"] = parts[1]
	}
	return packageurl.NewPackageURL("oci", "", im.name, r.Digest, packageurl.QualifiersFromMap(q), "").ToString()
}

// imageTitle names the image in documents that require a name.
func imageTitle(r *report.Report) string {
	switch {
	case r.Image != "":
		return r.Image
	case r.Digest != "":
		return r.Digest
	}
	return "unnamed image"
}

// inventory indexes the report's packages: one stable, unique reference
// per package (CycloneDX bom-ref, SPDX id), and the package a finding is
// about.
type inventory struct {
	pkgs []report.Package
	// refs[i] is packages[i]'s bom-ref: its purl when no other package has
	// the same one, else an id derived from what identifies the package.
	refs []string
	// ids[i] is packages[i]'s SPDX element id (without "SPDXRef-").
	ids []string
	// byKey indexes pkgs by ecosystem, name and version.
	byKey map[string][]int
}

func pkgKey(ecosystem, name, version string) string {
	return ecosystem + "\x00" + name + "\x00" + version
}

func newInventory(pkgs []report.Package) *inventory {
	inv := &inventory{pkgs: slices.Clone(pkgs), byKey: map[string][]int{}}
	purls := map[string]int{}
	for _, p := range pkgs {
		if p.PURL != "" {
			purls[p.PURL]++
		}
	}
	used := map[string]bool{}
	for i, p := range pkgs {
		k := pkgKey(p.Ecosystem, p.Name, p.Version)
		inv.byKey[k] = append(inv.byKey[k], i)
		h := packageHash(p)
		ref := p.PURL
		if ref == "" || purls[ref] > 1 {
			ref = "assay:package:" + h
		}
		id := "Package-" + spdxIDPart(p.Name) + "-" + h[:12]
		// Identical packages (same everything) still need distinct refs.
		for n := 2; used[ref] || used["spdx:"+id]; n++ {
			ref = fmt.Sprintf("assay:package:%s-%d", h, n)
			id = fmt.Sprintf("Package-%s-%s-%d", spdxIDPart(p.Name), h[:12], n)
		}
		used[ref], used["spdx:"+id] = true, true
		inv.refs = append(inv.refs, ref)
		inv.ids = append(inv.ids, id)
	}
	return inv
}

// reportInventory is the inventory of r, plus a package for each finding
// whose package the inventory lacks (a report put together by hand, or an
// inventory cut short), so that every finding has a package to point to.
func reportInventory(r *report.Report) *inventory {
	inv := newInventory(r.Packages)
	var missing []report.Package
	for _, f := range r.Findings {
		if _, ok := inv.find(f); ok {
			continue
		}
		p := packageOf(f)
		if !slices.ContainsFunc(missing, func(m report.Package) bool { return packageHash(m) == packageHash(p) }) {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return inv
	}
	return newInventory(append(slices.Clone(r.Packages), missing...))
}

// find returns the index of the package finding f is about: same
// ecosystem, name and version (and purl when both have one); among several,
// the one sharing a location with the finding.
func (inv *inventory) find(f report.Finding) (int, bool) {
	found := -1
	for _, i := range inv.byKey[pkgKey(f.Package.Ecosystem, f.Package.Name, f.Package.Version)] {
		p := inv.pkgs[i]
		if p.PURL != "" && f.Package.PURL != "" && p.PURL != f.Package.PURL {
			continue
		}
		if found < 0 {
			found = i
		}
		for _, l := range f.Locations {
			if slices.Contains(p.Locations, l) {
				return i, true
			}
		}
	}
	return found, found >= 0
}

// packageOf is the package a finding names, for a finding whose package is
// not in the inventory.
func packageOf(f report.Finding) report.Package {
	return report.Package{
		Ecosystem: f.Package.Ecosystem,
		Name:      f.Package.Name,
		Version:   f.Package.Version,
		PURL:      f.Package.PURL,
		Locations: slices.Clone(f.Locations),
	}
}

// packageHash is a short digest of what identifies a package in an image.
func packageHash(p report.Package) string {
	h := sha256.New()
	for _, s := range []string{p.Ecosystem, p.Name, p.Version, p.PURL, p.Owner} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	for _, l := range p.Locations {
		h.Write([]byte(l))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// spdxIDPart keeps what an SPDX id may hold (letters, digits, '.', '-').
func spdxIDPart(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			b[i] = '-'
		}
	}
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
}

// relativeURI makes an image path a relative URI reference: no leading
// slash (code-scanning tools resolve locations against a checkout root),
// percent-encoded where a path needs it.
func relativeURI(path string) string {
	path = strings.TrimLeft(path, "/")
	if path == "" {
		return ""
	}
	u := (&url.URL{Path: path}).EscapedPath()
	// A first segment with a colon would read as a scheme.
	if first, _, _ := strings.Cut(u, "/"); strings.Contains(first, ":") {
		u = "./" + u
	}
	return u
}

// advisoryURL is where an OSV id is described.
func advisoryURL(id string) string {
	return "https://osv.dev/vulnerability/" + url.PathEscape(id)
}
