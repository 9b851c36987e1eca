package policy

import (
	"path"
	"strings"

	"github.com/openvex/go-vex/pkg/vex"

	"github.com/assayhq/assay/daemon/report"
)

// rule is an ignore rule ready to match: trimmed, its glob split.
type rule struct {
	Rule
	n    int      // position in the policy, from 1
	glob []string // Path split into segments; nil when unset
}

func compileRule(r Rule, n int) rule {
	r.ID = strings.TrimSpace(r.ID)
	r.Package = strings.TrimSpace(r.Package)
	r.Path = strings.TrimSpace(r.Path)
	c := rule{Rule: r, n: n}
	if r.Path != "" {
		c.glob = splitPath(r.Path)
	}
	return c
}

// matches reports whether every field the rule sets matches f, whose
// package lies at locations.
func (r *rule) matches(f *report.Finding, locations []string) bool {
	if r.ID != "" && !idMatches(r.ID, f) {
		return false
	}
	if r.Package != "" && !packageMatches(r.Package, f) {
		return false
	}
	if r.glob != nil && !anyLocationMatches(r.glob, locations) {
		return false
	}
	return true
}

func idMatches(id string, f *report.Finding) bool {
	if strings.EqualFold(id, f.ID) {
		return true
	}
	for _, a := range f.Aliases {
		if strings.EqualFold(id, a) {
			return true
		}
	}
	return false
}

// packageMatches matches a rule's package against a finding's: a purl
// (OpenVEX's purl matching: no version matches any version, qualifiers in
// the rule must be present), a name, or ecosystem/name. Names are tried
// whole first, so names that hold a slash (golang.org/x/net, @types/node)
// work without an ecosystem.
func packageMatches(spec string, f *report.Finding) bool {
	if strings.HasPrefix(spec, "pkg:") {
		return f.Package.PURL != "" && vex.PurlMatches(spec, f.Package.PURL)
	}
	if nameMatches(spec, f) {
		return true
	}
	eco, name, ok := strings.Cut(spec, "/")
	return ok && ecosystemMatches(eco, f.Package.Ecosystem) && nameMatches(name, f)
}

// nameMatches compares a name with the package's and, for findings matched
// through a source package (Debian), the source package's: an advisory for
// source perl concerns perl-base as much as perl.
func nameMatches(name string, f *report.Finding) bool {
	if strings.EqualFold(name, f.Package.Name) {
		return true
	}
	return f.MatchedSource != nil && strings.EqualFold(name, f.MatchedSource.Name)
}

// ecosystemMatches accepts the ecosystem with or without its release:
// "Debian" matches "Debian:12", "Debian:12" only "Debian:12".
func ecosystemMatches(want, got string) bool {
	if strings.EqualFold(want, got) {
		return true
	}
	base, _, _ := strings.Cut(got, ":")
	return strings.EqualFold(want, base)
}

func anyLocationMatches(glob []string, locations []string) bool {
	for _, l := range locations {
		if globMatch(glob, splitPath(l)) {
			return true
		}
	}
	return false
}

// splitPath splits a slash-separated path into its segments, ignoring a
// leading slash: image paths are absolute either way.
func splitPath(p string) []string {
	p = strings.Trim(path.Clean("/"+p), "/")
	if p == "" {
		return []string{}
	}
	return strings.Split(p, "/")
}

// globMatch matches path segments against pattern segments, each with
// path.Match, where a "**" segment stands for any number of segments (none
// included). It is a dynamic programme over both lists, so patterns with
// many "**" cannot make it slow.
func globMatch(pat, name []string) bool {
	// m[j] says whether pat[i:] matches name[j:], for the current i.
	m := make([]bool, len(name)+1)
	m[len(name)] = true // the empty pattern matches the empty path
	for i := len(pat) - 1; i >= 0; i-- {
		next := m
		m = make([]bool, len(name)+1)
		if pat[i] == "**" {
			// ** matches name[j:k] for any k >= j: m[j] = next[j] || m[j+1].
			m[len(name)] = next[len(name)]
			for j := len(name) - 1; j >= 0; j-- {
				m[j] = next[j] || m[j+1]
			}
			continue
		}
		for j := len(name) - 1; j >= 0; j-- {
			if !next[j+1] {
				continue
			}
			ok, err := path.Match(pat[i], name[j])
			m[j] = ok && err == nil
		}
	}
	return m[0]
}
