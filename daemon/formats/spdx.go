package formats

import (
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"

	"github.com/assayhq/assay/daemon/report"
)

const (
	spdxDocumentID = "DOCUMENT"
	spdxImageID    = "Image"
	noAssertion    = "NOASSERTION"
	// spdxComment says what the document leaves out, so nobody takes the
	// missing vulnerabilities for a clean bill of health.
	spdxComment = "Software inventory of a container image, made by assay. " +
		"SPDX 2.3 has no place for vulnerability findings, so this document holds none; " +
		"ask for the SARIF or CycloneDX format for them."
)

func encodeSPDX(w io.Writer, r *report.Report, opts Options) error {
	return spdxjson.Write(buildSPDX(r, opts), w, spdxjson.Indent("  "), spdxjson.EscapeHTML(false))
}

// buildSPDX makes a document that DESCRIBES the image, which CONTAINS
// every inventory package; a package that an operating-system package owns
// (Debian's python3-urllib3 for urllib3's egg-info) is also CONTAINed by
// its owner.
func buildSPDX(r *report.Report, opts Options) *spdx.Document {
	now := opts.now()
	creator := opts.tool()
	if opts.ToolVersion != "" {
		creator += "-" + opts.ToolVersion
	}
	doc := &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    spdxDocumentID,
		DocumentName:      imageTitle(r),
		DocumentNamespace: spdxNamespace(r, now.UnixNano()),
		DocumentComment:   spdxComment,
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{{CreatorType: "Tool", Creator: creator}},
			Created:  now.Format("2006-01-02T15:04:05Z"),
		},
	}

	image := &spdx.Package{
		PackageName:             imageTitle(r),
		PackageSPDXIdentifier:   spdxImageID,
		PackageVersion:          r.Digest,
		PackageDownloadLocation: noAssertion,
		FilesAnalyzed:           false,
		PackageLicenseConcluded: noAssertion,
		PackageLicenseDeclared:  noAssertion,
		PrimaryPackagePurpose:   "CONTAINER",
	}
	if p := imagePURL(r); p != "" {
		image.PackageExternalReferences = []*spdx.PackageExternalReference{purlRef(p)}
	}
	if r.Platform != "" {
		image.PackageComment = "platform " + r.Platform
	}
	doc.Packages = append(doc.Packages, image)
	doc.Relationships = append(doc.Relationships, relationship(spdxDocumentID, "DESCRIBES", spdxImageID))

	inv := newInventory(r.Packages)
	for i, p := range inv.pkgs {
		doc.Packages = append(doc.Packages, spdxPackage(p, inv.ids[i]))
		doc.Relationships = append(doc.Relationships, relationship(spdxImageID, "CONTAINS", inv.ids[i]))
	}
	for i, p := range inv.pkgs {
		if o, ok := ownerOf(inv, p); ok {
			doc.Relationships = append(doc.Relationships, relationship(inv.ids[o], "CONTAINS", inv.ids[i]))
		}
	}
	return doc
}

func spdxPackage(p report.Package, id string) *spdx.Package {
	sp := &spdx.Package{
		PackageName:             p.Name,
		PackageSPDXIdentifier:   common.ElementID(id),
		PackageVersion:          p.Version,
		PackageDownloadLocation: noAssertion,
		FilesAnalyzed:           false,
		PackageLicenseConcluded: noAssertion,
		PackageLicenseDeclared:  noAssertion,
	}
	if p.PURL != "" {
		sp.PackageExternalReferences = []*spdx.PackageExternalReference{purlRef(p.PURL)}
	}
	if p.Source != nil {
		sp.PackageSourceInfo = fmt.Sprintf("built from the source package %s %s", p.Source.Name, p.Source.Version)
	}
	var notes []string
	if p.Ecosystem != "" {
		notes = append(notes, "ecosystem "+p.Ecosystem)
	}
	if len(p.Locations) > 0 {
		notes = append(notes, "found at "+strings.Join(p.Locations, ", "))
	}
	if p.Owner != "" {
		notes = append(notes, "files owned by the package "+p.Owner)
	}
	sp.PackageComment = strings.Join(notes, "; ")
	return sp
}

// ownerOf finds the package named by p.Owner: an operating-system package,
// so one of another ecosystem than p's.
func ownerOf(inv *inventory, p report.Package) (int, bool) {
	if p.Owner == "" {
		return 0, false
	}
	for i, o := range inv.pkgs {
		if o.Name == p.Owner && o.Ecosystem != p.Ecosystem {
			return i, true
		}
	}
	return 0, false
}

// spdxNamespace is the document's unique URI, derived from the image digest
// and the scan: a name, not a place (.invalid never resolves). A report
// without a scan id gets the creation time instead, so that two such
// documents still differ.
func spdxNamespace(r *report.Report, createdNanos int64) string {
	digest, scan := r.Digest, r.ScanID
	if digest == "" {
		digest = "no-digest"
	}
	if scan == "" {
		scan = "created-" + strconv.FormatInt(createdNanos, 10)
	}
	return "https://assay.invalid/spdx/" + url.PathEscape(digest) + "-" + url.PathEscape(scan)
}

func purlRef(purl string) *spdx.PackageExternalReference {
	return &spdx.PackageExternalReference{
		Category: common.CategoryPackageManager,
		RefType:  common.TypePackageManagerPURL,
		Locator:  purl,
	}
}

func relationship(a, kind, b string) *spdx.Relationship {
	return &spdx.Relationship{
		RefA:         common.MakeDocElementID("", a),
		RefB:         common.MakeDocElementID("", b),
		Relationship: kind,
	}
}
