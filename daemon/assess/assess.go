// Package assess turns an inventory into a verdict: it matches the
// report's packages against the vulnerability database, checks that the
// database covers the image's ecosystems, applies the policy (the
// configured one and the scan request's) and decides the verdict and the
// recommendations.
//
// It runs after every scan, and again over stored reports when the
// database changes (re-matching needs no pull: the inventory is in the
// report).
package assess

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/assayhq/assay/daemon/policy"
	"github.com/assayhq/assay/daemon/report"
)

// Matcher finds the advisories affecting packages (daemon/match).
type Matcher interface {
	Match(ctx context.Context, pkgs []report.Package) ([]report.Finding, []string, error)
}

// DB is what assessing needs to know of the database (daemon/vulndb).
type DB interface {
	// State is the database's last change and record count.
	State(ctx context.Context) (report.DBInfo, error)
	HasEcosystem(ctx context.Context, ecosystem string) (bool, error)
}

// EmptyDBWarning is on every report matched against an empty database.
var EmptyDBWarning = report.Warning{Source: report.WarnVulnDB, Message: "it holds no advisories (import OSV data with `assay db import` or set vulndb.sources): packages were inventoried but not matched, so the image cannot be called healthy"}

// Assessor matches, filters and decides. It is safe for concurrent use.
type Assessor struct {
	Matcher Matcher
	DB      DB
	// Policy is the configured policy, compiled once (its VEX documents
	// loaded, its Compare set); a scan request's policy is added to it.
	// nil applies none.
	Policy *policy.Compiled
	// RequireCoverage makes an image with packages of an ecosystem the
	// database has no advisory for incomplete rather than healthy.
	RequireCoverage bool
	// OSOwned: language packages owned by an OS package are matched (and
	// so need coverage) only when true.
	OSOwned bool
	// Need, if set, is told the ecosystems of every assessed image (the
	// updater fetches their advisories); Unavailable says why an
	// ecosystem's advisories are missing ("" for nothing to say).
	Need        func(ctx context.Context, ecosystems ...string)
	Unavailable func(ecosystem string) string
	Now         func() time.Time
}

// Assess (re)computes rep's findings, summary, verdict and
// recommendations from its packages. Findings that an analyzer reported
// (Analyzer set) are kept; matched ones are replaced. The scan request's
// policy (rep.RequestPolicy) is added to the configured one.
func (a *Assessor) Assess(ctx context.Context, rep *report.Report) error {
	now := a.now()
	compiled := a.Policy
	if compiled == nil {
		compiled = &policy.Compiled{}
	}
	if len(rep.RequestPolicy) > 0 {
		var req policy.Policy
		if err := json.Unmarshal(rep.RequestPolicy, &req); err != nil {
			return fmt.Errorf("assess: the scan request's policy: %w", err)
		}
		var err error
		if compiled, err = compiled.With(ctx, req); err != nil {
			return fmt.Errorf("assess: the scan request's policy: %w", err)
		}
	}

	if a.Need != nil {
		// Announced before matching: the data of a new ecosystem may
		// arrive in time for this report.
		a.Need(ctx, a.ecosystems(rep.Packages)...)
	}
	state, err := a.DB.State(ctx)
	if err != nil {
		return fmt.Errorf("assess: vulnerability database: %w", err)
	}
	matched, warnings, err := a.Matcher.Match(ctx, rep.Packages)
	if err != nil {
		return fmt.Errorf("assess: matching: %w", err)
	}

	// Keep the analyzers' own findings and warnings; replace ours.
	findings := slices.DeleteFunc(slices.Clone(rep.Findings), func(f report.Finding) bool { return f.Analyzer == "" })
	for i := range findings {
		findings[i].Suppressed = nil
	}
	rep.Findings = append(findings, matched...)
	rep.Warnings = report.DropWarnings(rep.Warnings, report.WarnMatching, report.WarnVulnDB) // policy replaces its own
	for _, w := range warnings {
		rep.Warnings = append(rep.Warnings, report.Warning{Source: report.WarnMatching, Message: w})
	}

	uncovered, err := a.uncovered(ctx, rep.Packages)
	if err != nil {
		return err
	}
	switch {
	case state.Records == 0:
		rep.Warnings = append(rep.Warnings, EmptyDBWarning)
	case len(uncovered) > 0:
		rep.Warnings = append(rep.Warnings, report.Warning{Source: report.WarnVulnDB, Message: fmt.Sprintf("it holds no advisories for %s: those packages were not matched", strings.Join(uncovered, ", "))})
	}
	if a.Unavailable != nil {
		seen := map[string]bool{}
		for _, e := range uncovered {
			if why := a.Unavailable(e); why != "" && !seen[why] {
				seen[why] = true
				rep.Warnings = append(rep.Warnings, report.Warning{Source: report.WarnVulnDB, Message: "vulnerability data unavailable: " + why})
			}
		}
	}

	compiled.Apply(rep, now)
	if rep.Verdict == report.Healthy && (state.Records == 0 || rep.Truncated || (a.RequireCoverage && len(uncovered) > 0)) {
		rep.Verdict = report.Incomplete
	}
	st := state
	rep.VulnDB = &st
	rep.MatchedAt = now
	return nil
}

// uncovered lists the ecosystems of matched packages the database holds
// nothing for.
func (a *Assessor) uncovered(ctx context.Context, pkgs []report.Package) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, p := range pkgs {
		if p.Ecosystem == "" || seen[p.Ecosystem] || (p.Owner != "" && !a.OSOwned) {
			continue
		}
		seen[p.Ecosystem] = true
		ok, err := a.DB.HasEcosystem(ctx, p.Ecosystem)
		if err != nil {
			return nil, fmt.Errorf("assess: vulnerability database: %w", err)
		}
		if !ok {
			out = append(out, p.Ecosystem)
		}
	}
	sort.Strings(out)
	return out, nil
}

// ecosystems are those of the packages that are matched.
func (a *Assessor) ecosystems(pkgs []report.Package) []string {
	seen := map[string]bool{}
	for _, p := range pkgs {
		if p.Ecosystem != "" && (p.Owner == "" || a.OSOwned) {
			seen[p.Ecosystem] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// Changed reports whether a re-match changed what a user acts on: the
// verdict, the findings (ids, packages, severities, fixes, suppression),
// or what the report says of the database (an ecosystem uncovered, its
// data unavailable and why).
func Changed(before, after *report.Report) bool {
	if before.Verdict != after.Verdict || len(before.Findings) != len(after.Findings) {
		return true
	}
	// What the report says of the database (uncovered ecosystems, data
	// unavailable and why).
	dbSays := func(r *report.Report) []string {
		var out []string
		for _, w := range r.Warnings {
			if w.Source == report.WarnVulnDB {
				out = append(out, w.Message)
			}
		}
		sort.Strings(out)
		return out
	}
	if !slices.Equal(dbSays(before), dbSays(after)) {
		return true
	}
	key := func(f report.Finding) string {
		s := f.ID + "|" + f.Package.Ecosystem + "|" + f.Package.Name + "|" + f.Package.Version + "|" + string(f.Severity) + "|" + f.FixedVersion
		if f.Suppressed != nil {
			s += "|" + f.Suppressed.Kind
		}
		return s
	}
	a := make([]string, len(before.Findings))
	b := make([]string, len(after.Findings))
	for i := range before.Findings {
		a[i], b[i] = key(before.Findings[i]), key(after.Findings[i])
	}
	sort.Strings(a)
	sort.Strings(b)
	return !slices.Equal(a, b)
}

func (a *Assessor) now() time.Time {
	if a.Now != nil {
		return a.Now().UTC()
	}
	return time.Now().UTC()
}
