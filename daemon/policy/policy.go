package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/package-url/packageurl-go"

	"github.com/assayhq/assay/daemon/errdefs"
	"github.com/assayhq/assay/daemon/report"
)

// Policy is what a user asks to hide. The daemon's configuration holds one;
// a scan request may add to it (Merge).
type Policy struct {
	// MinSeverity hides findings less severe than it ("" hides none).
	MinSeverity report.Severity `json:"min_severity,omitempty" mapstructure:"min_severity"`
	// OnlyFixed hides findings for which no fixed version is known.
	OnlyFixed bool `json:"only_fixed,omitempty" mapstructure:"only_fixed"`
	// Ignore rules hide the findings they match, until they expire.
	Ignore []Rule `json:"ignore,omitempty" mapstructure:"ignore"`
	// VEX are paths of OpenVEX JSON documents whose not_affected and fixed
	// statements hide the findings they name.
	VEX []string `json:"vex,omitempty" mapstructure:"vex"`
}

// Rule hides the findings it matches. Every field that is set must match.
type Rule struct {
	// ID is an advisory id or any of its aliases (CVE-2023-47038,
	// DEBCL-CVE-2023-47038, GHSA-...), compared case-insensitively.
	ID string `json:"id,omitempty" mapstructure:"id"`
	// Package is a package name ("perl-base"; the source package's name
	// also matches findings matched through it), "ecosystem/name"
	// ("Debian/perl-base" or "Debian:12/perl-base"), or a purl: without a
	// version it matches every version, with @version only that one.
	Package string `json:"package,omitempty" mapstructure:"package"`
	// Path is a glob on the package's locations in the image, as path.Match
	// with "**" standing for any number of directories ("/usr/lib/**").
	Path string `json:"path,omitempty" mapstructure:"path"`
	// Reason says why the findings may be hidden; it is required and is
	// shown on every finding the rule hides.
	Reason string `json:"reason" mapstructure:"reason"`
	// Expires is when the rule stops applying; nil for never. In JSON it is
	// a date ("2026-12-31": the rule applies through that day, UTC) or an
	// RFC 3339 time; see ParseExpiry.
	Expires *time.Time `json:"expires,omitempty" mapstructure:"expires"`
}

// ParseExpiry reads an ignore rule's expiry: a date ("2026-12-31"), meaning
// the end of that day in UTC, or an RFC 3339 time ("2026-12-31T18:00:00Z").
func ParseExpiry(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if d, err := time.Parse(time.DateOnly, s); err == nil {
		return endOfDay(d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("policy: expiry %q is neither a date (2026-12-31) nor an RFC 3339 time (2026-12-31T18:00:00Z)", s)
}

// endOfDay is the last instant of d's day in UTC: a rule that expires on a
// date still applies during that whole day.
func endOfDay(d time.Time) time.Time {
	y, m, day := d.Date()
	return time.Date(y, m, day+1, 0, 0, 0, 0, time.UTC).Add(-time.Nanosecond)
}

// formatExpiry prints an expiry the way a user wrote it: a date when it is
// the end of a day in UTC, else the RFC 3339 time.
func formatExpiry(t time.Time) string {
	if t.Location() == time.UTC && t.Equal(endOfDay(t)) {
		return t.Format(time.DateOnly)
	}
	return t.Format(time.RFC3339)
}

// UnmarshalJSON decodes a rule, accepting both forms of expires and
// refusing unknown keys: a misspelt "expire" must not make a rule
// permanent without anyone noticing.
func (r *Rule) UnmarshalJSON(b []byte) error {
	var raw struct {
		ID      string  `json:"id"`
		Package string  `json:"package"`
		Path    string  `json:"path"`
		Reason  string  `json:"reason"`
		Expires *string `json:"expires"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return fmt.Errorf("policy: ignore rule: %w", err)
	}
	*r = Rule{ID: raw.ID, Package: raw.Package, Path: raw.Path, Reason: raw.Reason}
	if raw.Expires != nil && strings.TrimSpace(*raw.Expires) != "" {
		t, err := ParseExpiry(*raw.Expires)
		if err != nil {
			return err
		}
		r.Expires = &t
	}
	return nil
}

// Validate says what is wrong with the rule, if anything.
func (r Rule) Validate() error {
	var errs []error
	if strings.TrimSpace(r.Reason) == "" {
		errs = append(errs, errors.New("needs a reason saying why the findings may be hidden"))
	}
	id, pkg, glob := strings.TrimSpace(r.ID), strings.TrimSpace(r.Package), strings.TrimSpace(r.Path)
	if id == "" && pkg == "" && glob == "" {
		errs = append(errs, errors.New("needs at least one of id, package or path (else it would hide everything)"))
	}
	if strings.HasPrefix(pkg, "pkg:") {
		if _, err := packageurl.FromString(pkg); err != nil {
			errs = append(errs, fmt.Errorf("package %q is not a valid purl: %v", pkg, err))
		}
	}
	if glob != "" {
		for _, seg := range splitPath(glob) {
			if _, err := path.Match(seg, ""); err != nil {
				errs = append(errs, fmt.Errorf("path %q is not a valid glob: %v", glob, err))
				break
			}
		}
	}
	return errors.Join(errs...)
}

// label names a rule in messages: by its number (the first rule is 1) and
// its most telling field.
func (r Rule) label(n int) string {
	switch {
	case r.ID != "":
		return fmt.Sprintf("ignore rule %d (id %s)", n, r.ID)
	case r.Package != "":
		return fmt.Sprintf("ignore rule %d (package %s)", n, r.Package)
	case r.Path != "":
		return fmt.Sprintf("ignore rule %d (path %s)", n, r.Path)
	}
	return fmt.Sprintf("ignore rule %d", n)
}

// Validate says everything that is wrong with the policy, naming the
// setting or the ignore rule (numbered from 1). The error is an
// errdefs.ErrInvalid.
func (p Policy) Validate() error {
	var errs []error
	if p.MinSeverity != "" {
		if _, err := report.ParseSeverity(string(p.MinSeverity)); err != nil {
			errs = append(errs, fmt.Errorf("policy: min_severity: %w", err))
		}
	}
	for i, r := range p.Ignore {
		if err := r.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("policy: %s: %w", r.label(i+1), err))
		}
	}
	for i, v := range p.VEX {
		if strings.TrimSpace(v) == "" {
			errs = append(errs, fmt.Errorf("policy: vex document %d: the path is empty", i+1))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return invalid(errors.Join(errs...))
}

// Merge puts a per-request policy on top of p: override's MinSeverity wins
// when set, OnlyFixed holds if either asks for it, and override's ignore
// rules and VEX documents are added to p's. Neither policy is modified.
func (p Policy) Merge(override Policy) Policy {
	out := Policy{
		MinSeverity: p.MinSeverity,
		OnlyFixed:   p.OnlyFixed || override.OnlyFixed,
		Ignore:      append(slices.Clone(p.Ignore), override.Ignore...),
	}
	if override.MinSeverity != "" {
		out.MinSeverity = override.MinSeverity
	}
	for _, v := range append(slices.Clone(p.VEX), override.VEX...) {
		if !slices.Contains(out.VEX, v) {
			out.VEX = append(out.VEX, v)
		}
	}
	return out
}

// invalidError marks an error as errdefs.ErrInvalid without adding words
// to its message.
type invalidError struct{ err error }

func invalid(err error) error { return invalidError{err} }

func (e invalidError) Error() string   { return e.err.Error() }
func (e invalidError) Unwrap() []error { return []error{e.err, errdefs.ErrInvalid} }
