package policy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openvex/go-vex/pkg/vex"

	"github.com/assayhq/assay/daemon/errdefs"
	"github.com/assayhq/assay/daemon/report"
)

var now = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

const (
	vendorVEX = "testdata/vendor.openvex.json"
	updateVEX = "testdata/update.openvex.json"
	// perlBase is the dpkg analyzer's purl of the image's perl-base.
	perlBase = "pkg:deb/debian/perl-base@5.36.0-7%2Bdeb12u3?arch=amd64&distro=debian-12"
)

// The test documents are OpenVEX as go-vex itself reads it, and go-vex's
// own choice of the effective statement agrees with the tests below.
func TestVEXDocumentsAreOpenVEX(t *testing.T) {
	for file, n := range map[string]int{vendorVEX: 14, updateVEX: 2} {
		doc, err := vex.Open(file)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(doc.Statements) != n {
			t.Errorf("%s: %d statements, want %d", file, len(doc.Statements), n)
		}
		for i := range doc.Statements {
			if err := doc.Statements[i].Validate(); err != nil {
				t.Errorf("%s: statement %d: %v", file, i+1, err)
			}
		}
	}
	doc, err := vex.Open(vendorVEX)
	if err != nil {
		t.Fatal(err)
	}
	for vuln, want := range map[string]vex.Status{
		"CVE-2026-7010":  vex.StatusNotAffected, // the later of two statements
		"CVE-2026-7017":  vex.StatusNotAffected, // the later one, listed first
		"CVE-2025-15649": vex.StatusAffected,
		"CVE-2026-13221": vex.StatusNotAffected, // a purl without version
	} {
		st := doc.EffectiveStatement(perlBase, vuln)
		if st == nil || st.Status != want {
			t.Errorf("go-vex: effective statement on %s for perl-base: %+v, want %s", vuln, st, want)
		}
	}
}

func compile(t *testing.T, p Policy) *Compiled {
	t.Helper()
	c, err := p.Compile(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c.Compare = compareVersions
	return c
}

// vexCase is what the policy must do with one finding of the Debian
// report: kind "" means it stays.
type vexCase struct {
	id, kind, justification, reason string
}

func checkSuppressions(t *testing.T, r *report.Report, cases []vexCase) {
	t.Helper()
	for _, c := range cases {
		f := findingByID(r, c.id)
		if f == nil {
			t.Errorf("%s: no such finding", c.id)
			continue
		}
		s := f.Suppressed
		switch {
		case c.kind == "" && s != nil:
			t.Errorf("%s: suppressed (%+v), want it to stay", c.id, *s)
		case c.kind == "":
		case s == nil:
			t.Errorf("%s: not suppressed, want %s", c.id, c.kind)
		case s.Kind != c.kind || s.Justification != c.justification || (c.reason != "" && s.Reason != c.reason):
			t.Errorf("%s: suppressed as %+v, want kind %s, justification %q, reason %q", c.id, *s, c.kind, c.justification, c.reason)
		case s.Reason == "":
			t.Errorf("%s: suppressed without a reason", c.id)
		}
	}
}

func TestVEX(t *testing.T) {
	r := debianReport(t)
	compile(t, Policy{VEX: []string{vendorVEX}}).Apply(r, now)
	checkSuppressions(t, r, []vexCase{
		// not_affected for the image with libpcre2 as subcomponent: the
		// justification and the impact statement are carried.
		{"DEBCL-CVE-2026-103111", report.SuppressedVEX, "vulnerable_code_not_in_execute_path",
			"No program in this image compiles untrusted regular expressions with PCRE2's JIT."},
		// the same package's other advisory is not named
		{"DEBCL-GHSA-r9hj-j2rw-4q3m", "", "", ""},
		// affected and under_investigation leave the finding
		{"DEBCL-CVE-2025-15649", "", "", ""},
		{"DEBCL-CVE-2026-12087", "", "", ""},
		// a purl without version is any version of perl-base
		{"DEBCL-CVE-2026-13221", report.SuppressedVEX, "vulnerable_code_not_present", "The vulnerable module is not part of perl-base."},
		// another image (this one's config digest, not its manifest)
		{"DEBCL-CVE-2026-19487", "", "", ""},
		// another version of perl-base
		{"DEBCL-CVE-2026-42496", "", "", ""},
		// this version, written with a plain "+" and fewer qualifiers
		{"DEBCL-CVE-2026-42497", report.SuppressedVEX, "vulnerable_code_cannot_be_controlled_by_adversary", ""},
		// fixed, for the image named by its sha-256 hash, liblzma5 by an identifier
		{"DEBCL-GHSA-5qpq-xqfv-j9pg", report.SuppressedVEX, "",
			"VEX document testdata/vendor.openvex.json says GHSA-5qpq-xqfv-j9pg is fixed"},
		// the whole image, by its digest alone: an impact statement, no justification
		{"DEBCL-CVE-2026-48959", report.SuppressedVEX, "", "The image runs no Perl code received from outside."},
		// the later of two statements decides, wherever it is in the file
		{"DEBCL-CVE-2026-7010", report.SuppressedVEX, "vulnerable_code_not_in_execute_path", ""},
		{"DEBCL-CVE-2026-7017", report.SuppressedVEX, "vulnerable_code_not_present", ""},
		// not named at all
		{"DEBCL-CVE-2026-8376", "", "", ""},
	})
	// One advisory of source apt, in two binaries: the image's statement
	// names libapt-pkg6.0 as its subcomponent, not apt.
	var apt []string
	for _, f := range r.Findings {
		if f.ID == "DEBCL-CVE-2026-109518" {
			s := "stays"
			if f.Suppressed != nil {
				s = f.Suppressed.Kind + " " + f.Suppressed.Justification
			}
			apt = append(apt, f.Package.Name+": "+s)
		}
	}
	if want := []string{"apt: stays", "libapt-pkg6.0: vex vulnerable_code_not_present"}; !slices.Equal(apt, want) {
		t.Errorf("CVE-2026-109518: %q, want %q", apt, want)
	}
	if r.Summary.Suppressed != 8 {
		t.Errorf("summary counts %d suppressed, want 8", r.Summary.Suppressed)
	}
}

// A later document revises the first: its statements win for the
// (vulnerability, product) pairs it names, whatever order the documents
// are given in, and the first document's other statements still hold.
func TestVEXLaterDocument(t *testing.T) {
	for _, order := range [][]string{{vendorVEX, updateVEX}, {updateVEX, vendorVEX}} {
		r := debianReport(t)
		compile(t, Policy{VEX: order}).Apply(r, now)
		checkSuppressions(t, r, []vexCase{
			// not_affected on 2026-11-28, affected on 2026-12-02
			{"DEBCL-CVE-2026-103111", "", "", ""},
			// under_investigation, then not_affected (image + subcomponent)
			{"DEBCL-CVE-2026-12087", report.SuppressedVEX, "vulnerable_code_not_in_execute_path",
				"Investigated: no program in the image reaches the vulnerable code."},
			{"DEBCL-CVE-2026-13221", report.SuppressedVEX, "vulnerable_code_not_present", ""},
			{"DEBCL-CVE-2025-15649", "", "", ""},
		})
	}
}

// Statements for another image suppress nothing here, even through the
// package: the product is the image, the package only its subcomponent.
func TestVEXOtherImage(t *testing.T) {
	r := debianReport(t)
	r.Digest = "sha256:b58990e26b8accd54626a32a461152580239a6a91a0c43735d010ae5344c0fe3"
	compile(t, Policy{VEX: []string{vendorVEX}}).Apply(r, now)
	checkSuppressions(t, r, []vexCase{
		{"DEBCL-CVE-2026-103111", "", "", ""},                                             // image + subcomponent: other image
		{"DEBCL-GHSA-5qpq-xqfv-j9pg", "", "", ""},                                         // image by hash: other image
		{"DEBCL-CVE-2026-48959", "", "", ""},                                              // image by digest: other image
		{"DEBCL-CVE-2026-19487", report.SuppressedVEX, "component_not_present", ""},       // that image's statement
		{"DEBCL-CVE-2026-13221", report.SuppressedVEX, "vulnerable_code_not_present", ""}, // the package itself
	})
}

func TestCompileBadVEX(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.json")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	osv := filepath.Join(sharedOSV, "debian", "DEBCL-CVE-2026-8376.json")
	cases := []struct {
		file string
		want []string
	}{
		{"testdata/bad-justification.openvex.json", []string{"statement 1 (CVE-2026-8376)", "justification or impact statement must be defined"}},
		{"testdata/bad-status.openvex.json", []string{"statement 1 (CVE-2026-8376)", `invalid status value "not_vulnerable"`}},
		{"testdata/bad-truncated.openvex.json", []string{"is not valid JSON"}},
		{empty, []string{"is not valid JSON"}},
		{osv, []string{"is not an OpenVEX document", `its @context is ""`}},
		{filepath.Join(dir, "missing.openvex.json"), []string{"cannot be read", "no such file"}},
		{dir, []string{"cannot be read"}},
	}
	for _, c := range cases {
		_, err := Policy{VEX: []string{vendorVEX, c.file}}.Compile(context.Background())
		if err == nil {
			t.Errorf("%s: Compile accepted it", c.file)
			continue
		}
		if !strings.Contains(err.Error(), "VEX document "+c.file+" ") {
			t.Errorf("%s: error %q does not name the file", c.file, err)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", c.file, err, w)
			}
		}
		if !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("%s: error %v is not errdefs.ErrInvalid", c.file, err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (Policy{VEX: []string{vendorVEX}}).Compile(ctx); !errors.Is(err, context.Canceled) || errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("Compile with a cancelled context: %v", err)
	}
}
