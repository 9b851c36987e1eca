package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/openvex/go-vex/pkg/vex"
	"github.com/package-url/packageurl-go"
)

// maxVEXBytes bounds one OpenVEX document: real ones are kilobytes, and a
// wrong path (a disk image, /dev/zero) must not exhaust the daemon's memory.
const maxVEXBytes = 32 << 20

// statement is one OpenVEX statement with where it came from. Its
// Timestamp is set: inherited from the document when the statement has
// none.
type statement struct {
	vex.Statement
	file  string
	order int // position over every document, for ties of timestamps
}

// loadVEX reads and checks one OpenVEX document. The error says what is
// wrong, for the caller to prefix with the file's name.
func loadVEX(ctx context.Context, file string) ([]vex.Statement, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("cannot be read: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxVEXBytes+1))
	if err != nil {
		return nil, fmt.Errorf("cannot be read: %w", err)
	}
	if len(data) > maxVEXBytes {
		return nil, fmt.Errorf("is larger than %d MiB, too large for an OpenVEX document", maxVEXBytes>>20)
	}

	var head struct {
		Context string `json:"@context"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("is not valid JSON: %w", err)
	}
	if !strings.HasPrefix(head.Context, vex.Context) {
		return nil, fmt.Errorf("is not an OpenVEX document: its @context is %q, want %q", head.Context, vex.ContextLocator())
	}
	var doc *vex.VEX
	if head.Context == vex.ContextLocator() {
		doc, err = vex.Parse(data)
	} else {
		// Older versions of the format: go-vex converts what it knows
		// (v0.0.1) and refuses the rest.
		doc, err = vex.Open(file)
	}
	if err != nil {
		return nil, fmt.Errorf("is not a valid OpenVEX document: %w", err)
	}

	var errs []error
	for i := range doc.Statements {
		s := &doc.Statements[i]
		name := vulnName(s.Vulnerability)
		where := fmt.Sprintf("statement %d", i+1)
		if name != "" {
			where += " (" + name + ")"
		}
		switch {
		case name == "":
			errs = append(errs, fmt.Errorf("%s names no vulnerability", where))
		case len(s.Products) == 0:
			errs = append(errs, fmt.Errorf("%s lists no products", where))
		case s.Timestamp == nil && doc.Timestamp == nil:
			errs = append(errs, fmt.Errorf("%s has no timestamp and neither has the document: statements cannot be ordered without one", where))
		}
		if err := s.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("is not a valid OpenVEX document: %w", errors.Join(errs...))
	}
	out := make([]vex.Statement, 0, len(doc.Statements))
	for _, s := range doc.ExtractStatements() {
		out = append(out, *s)
	}
	return out, nil
}

func vulnName(v vex.Vulnerability) string {
	if v.Name != "" {
		return string(v.Name)
	}
	return v.ID
}

// subject is what a finding is, for matching against VEX products: the
// vulnerability's ids, the package's purl and the image's digest.
type subject struct {
	ids    []string
	purl   string
	digest string // sha256:<hex>
}

// effective returns the statement that decides the finding: among the
// statements naming one of its ids and a product that is the package, or
// the image (as a whole, or with the package as a subcomponent), the one
// with the latest timestamp; on equal timestamps the one read last. It
// returns nil when no statement applies.
func effective(stmts []statement, s subject) *statement {
	var best *statement
	for i := range stmts {
		st := &stmts[i]
		if !st.namesAny(s.ids) || !st.covers(s) {
			continue
		}
		if best == nil || !stamp(st).Before(stamp(best)) {
			best = st
		}
	}
	return best
}

func stamp(s *statement) time.Time {
	if s.Timestamp == nil {
		return time.Time{}
	}
	return *s.Timestamp
}

func (st *statement) namesAny(ids []string) bool {
	for _, id := range ids {
		if id != "" && st.Vulnerability.Matches(id) {
			return true
		}
	}
	return false
}

// covers reports whether one of the statement's products is the finding's
// package or its image.
func (st *statement) covers(s subject) bool {
	for i := range st.Products {
		p := &st.Products[i]
		if isImage(&p.Component, s.digest) {
			if len(p.Subcomponents) == 0 {
				return true
			}
			if s.purl == "" {
				continue
			}
			for j := range p.Subcomponents {
				if p.Subcomponents[j].Matches(s.purl) {
					return true
				}
			}
			continue
		}
		if s.purl != "" && p.Matches(s.purl, "") {
			return true
		}
	}
	return false
}

// isImage reports whether a VEX component names the image with the
// manifest digest: a pkg:oci purl whose version is the digest (its name and
// qualifiers are not compared: the digest names the content wherever it is
// stored), the digest itself, or its sha-256 hash.
func isImage(c *vex.Component, digest string) bool {
	if digest == "" {
		return false
	}
	ids := []string{c.ID}
	for _, v := range c.Identifiers {
		ids = append(ids, v)
	}
	for _, id := range ids {
		if id == digest {
			return true
		}
		if !strings.HasPrefix(id, "pkg:oci/") {
			continue
		}
		if p, err := packageurl.FromString(id); err == nil && p.Type == packageurl.TypeOCI && p.Version == digest {
			return true
		}
	}
	if hex, ok := strings.CutPrefix(digest, "sha256:"); ok && c.Hashes[vex.SHA256] == vex.Hash(hex) {
		return true
	}
	return false
}
