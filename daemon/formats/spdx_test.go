package formats

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/assayhq/assay/daemon/report"
)

// spdxDoc is the part of an SPDX document the tests read, decoded without
// the library that wrote it.
type spdxDoc struct {
	SPDXVersion       string `json:"spdxVersion"`
	SPDXID            string `json:"SPDXID"`
	Name              string `json:"name"`
	DocumentNamespace string `json:"documentNamespace"`
	CreationInfo      struct {
		Created  string   `json:"created"`
		Creators []string `json:"creators"`
	} `json:"creationInfo"`
	Packages []struct {
		SPDXID           string `json:"SPDXID"`
		Name             string `json:"name"`
		VersionInfo      string `json:"versionInfo"`
		DownloadLocation string `json:"downloadLocation"`
		FilesAnalyzed    *bool  `json:"filesAnalyzed"`
		LicenseConcluded string `json:"licenseConcluded"`
		LicenseDeclared  string `json:"licenseDeclared"`
		Purpose          string `json:"primaryPackagePurpose"`
		ExternalRefs     []struct {
			Category string `json:"referenceCategory"`
			Type     string `json:"referenceType"`
			Locator  string `json:"referenceLocator"`
		} `json:"externalRefs"`
	} `json:"packages"`
	Relationships []struct {
		A    string `json:"spdxElementId"`
		B    string `json:"relatedSpdxElement"`
		Type string `json:"relationshipType"`
	} `json:"relationships"`
}

// spdxIDPattern is SPDX 2.3's idstring rule (clause 3.2), which the JSON
// schema does not check.
var spdxIDPattern = regexp.MustCompile(`^SPDXRef-[A-Za-z0-9.-]+$`)

func readSPDX(t *testing.T, doc []byte) spdxDoc {
	t.Helper()
	var d spdxDoc
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSPDX(t *testing.T) {
	r := unhealthyReport(t)
	doc := write(t, SPDX, r)
	validate(t, SPDX, doc)
	d := readSPDX(t, doc)

	if d.SPDXVersion != "SPDX-2.3" || d.SPDXID != "SPDXRef-DOCUMENT" || d.Name != r.Image {
		t.Errorf("version %q, id %q, name %q", d.SPDXVersion, d.SPDXID, d.Name)
	}
	if want := "https://assay.invalid/spdx/" + r.Digest + "-" + r.ScanID; d.DocumentNamespace != want {
		t.Errorf("namespace %q, want %q", d.DocumentNamespace, want)
	}
	if d.CreationInfo.Created != "2026-11-27T12:00:00Z" || len(d.CreationInfo.Creators) != 1 || d.CreationInfo.Creators[0] != "Tool: assay-0.6.0" {
		t.Errorf("creation info %+v", d.CreationInfo)
	}

	// The image and one package per inventory package.
	if len(d.Packages) != len(r.Packages)+1 {
		t.Fatalf("%d packages, want %d + 1 for the image", len(d.Packages), len(r.Packages))
	}
	image := d.Packages[0]
	if image.SPDXID != "SPDXRef-Image" || image.Purpose != "CONTAINER" || image.VersionInfo != r.Digest {
		t.Errorf("image package %+v", image)
	}
	ids := map[string]bool{}
	purls := map[string]bool{}
	for _, p := range d.Packages {
		if ids[p.SPDXID] {
			t.Errorf("SPDX id %s used twice", p.SPDXID)
		}
		ids[p.SPDXID] = true
		if !spdxIDPattern.MatchString(p.SPDXID) {
			t.Errorf("SPDX id %q is not SPDXRef- followed by letters, digits, '.' and '-'", p.SPDXID)
		}
		if p.DownloadLocation != "NOASSERTION" || p.LicenseConcluded != "NOASSERTION" || p.LicenseDeclared != "NOASSERTION" {
			t.Errorf("package %s asserts what assay does not know: %+v", p.Name, p)
		}
		if p.FilesAnalyzed == nil || *p.FilesAnalyzed {
			t.Errorf("package %s: filesAnalyzed must be present and false", p.Name)
		}
		for _, ref := range p.ExternalRefs {
			if ref.Category == "PACKAGE-MANAGER" && ref.Type == "purl" {
				purls[ref.Locator] = true
			}
		}
	}
	for i, p := range r.Packages {
		if !purls[p.PURL] {
			t.Errorf("the purl of %s (%s) is missing", p.Name, p.PURL)
		}
		if got := d.Packages[i+1]; got.Name != p.Name || got.VersionInfo != p.Version {
			t.Errorf("package %d: %s %s, want %s %s", i, got.Name, got.VersionInfo, p.Name, p.Version)
		}
	}

	// DESCRIBES the image, which CONTAINS every package; the owner
	// CONTAINS what it owns; every relationship names known elements.
	contains, describes, owned := 0, 0, 0
	for _, rel := range d.Relationships {
		if rel.A != "SPDXRef-DOCUMENT" && !ids[rel.A] || !ids[rel.B] {
			t.Errorf("relationship %+v names an unknown element", rel)
		}
		switch {
		case rel.Type == "DESCRIBES" && rel.A == "SPDXRef-DOCUMENT" && rel.B == "SPDXRef-Image":
			describes++
		case rel.Type == "CONTAINS" && rel.A == "SPDXRef-Image":
			contains++
		case rel.Type == "CONTAINS":
			owned++
		default:
			t.Errorf("unexpected relationship %+v", rel)
		}
	}
	if describes != 1 || contains != len(r.Packages) || owned != 1 {
		t.Errorf("%d DESCRIBES, %d image CONTAINS, %d owner CONTAINS; want 1, %d, 1", describes, contains, owned, len(r.Packages))
	}

	// No vulnerability data: SPDX 2.3 has no place for it.
	for _, f := range r.Findings {
		if strings.Contains(string(doc), f.ID) {
			t.Errorf("the SPDX document mentions finding %s", f.ID)
		}
	}
}

func TestSPDXIncompleteAndEmpty(t *testing.T) {
	for name, r := range map[string]*report.Report{
		"incomplete": incompleteReport(t),
		"zero":       {},
	} {
		t.Run(name, func(t *testing.T) {
			doc := write(t, SPDX, r)
			validate(t, SPDX, doc)
			d := readSPDX(t, doc)
			if len(d.Packages) != len(r.Packages)+1 {
				t.Errorf("%d packages for %d", len(d.Packages), len(r.Packages))
			}
			if d.Name == "" || !strings.HasPrefix(d.DocumentNamespace, "https://assay.invalid/spdx/") {
				t.Errorf("name %q, namespace %q", d.Name, d.DocumentNamespace)
			}
		})
	}
}

// TestSPDXNamespaceIsUnique: documents of two scans, or of one report
// without a scan id written at two times, have different namespaces.
func TestSPDXNamespaceIsUnique(t *testing.T) {
	a := spdxNamespace(&report.Report{Digest: "sha256:1", ScanID: "A"}, 1)
	b := spdxNamespace(&report.Report{Digest: "sha256:1", ScanID: "B"}, 1)
	c := spdxNamespace(&report.Report{}, 1)
	d := spdxNamespace(&report.Report{}, 2)
	if a == b || c == d {
		t.Errorf("namespaces collide: %s %s %s %s", a, b, c, d)
	}
}
