package policy

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/openvex/go-vex/pkg/vex"

	"github.com/assayhq/assay/daemon/report"
)

// CompareFunc orders two versions of one ecosystem: negative when a is
// older than b, zero when equal, positive when newer. match.Compare fits.
type CompareFunc func(ecosystem, a, b string) (int, error)

// Compiled is a validated policy with its OpenVEX documents loaded, ready
// to apply to reports. It is not modified by Apply and may be shared.
type Compiled struct {
	// Compare orders fixed versions, to recommend the highest. Set it
	// before the first Apply; without it a package whose findings are
	// fixed in different versions gets no single recommended version.
	Compare CompareFunc

	minSeverity report.Severity // "" for none
	onlyFixed   bool
	rules       []rule
	vex         []statement

	// policy is what was compiled, and loaded its VEX documents' statements
	// by file, so that With adds a scan request's policy without reading
	// the configured documents again.
	policy Policy
	loaded map[string][]vex.Statement
}

// Compile validates the policy and loads its OpenVEX documents. Errors
// name the setting, rule or file at fault, and are errdefs.ErrInvalid
// unless ctx ended.
func (p Policy) Compile(ctx context.Context) (*Compiled, error) {
	return p.compile(ctx, nil)
}

// With returns c with a scan request's policy added, as Merge adds it:
// the same as c's policy merged with req and compiled, except that the VEX
// documents c already loaded are not read again. c is not changed.
func (c *Compiled) With(ctx context.Context, req Policy) (*Compiled, error) {
	out, err := c.policy.Merge(req).compile(ctx, c.loaded)
	if err != nil {
		return nil, err
	}
	out.Compare = c.Compare
	return out, nil
}

// compile is Compile taking the statements of documents already loaded
// from loaded (which it does not change).
func (p Policy) compile(ctx context.Context, loaded map[string][]vex.Statement) (*Compiled, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	c := &Compiled{onlyFixed: p.OnlyFixed, policy: p, loaded: map[string][]vex.Statement{}}
	if p.MinSeverity != "" {
		c.minSeverity, _ = report.ParseSeverity(string(p.MinSeverity)) // checked by Validate
	}
	for i, r := range p.Ignore {
		c.rules = append(c.rules, compileRule(r, i+1))
	}
	for _, file := range p.VEX {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("policy: loading VEX documents: %w", err)
		}
		stmts, ok := loaded[file]
		var err error
		if !ok {
			stmts, err = loadVEX(ctx, file)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("policy: loading VEX document %s: %w", file, err)
			}
			return nil, invalid(fmt.Errorf("policy: VEX document %s %w", file, err))
		}
		c.loaded[file] = stmts
		for _, s := range stmts {
			c.vex = append(c.vex, statement{Statement: s, file: file, order: len(c.vex)})
		}
		if !ok {
			slog.DebugContext(ctx, "policy: VEX document loaded", "file", file, "statements", len(stmts))
		}
	}
	return c, nil
}

// Apply applies the policy to r's findings (already matched) at time now,
// then sets r's summary, verdict and recommendations. Each finding the
// policy hides gets Suppressed, by the first of: a VEX statement
// (not_affected or fixed), an unexpired ignore rule, only_fixed,
// min_severity. Apply first undoes what an earlier Apply did, so applying
// again (to a re-matched stored report, or with another policy) gives the
// same result as applying once.
func (c *Compiled) Apply(r *report.Report, now time.Time) {
	if r == nil {
		return
	}
	r.Recommendations = nil
	r.Warnings = report.DropWarnings(r.Warnings, report.WarnPolicy)

	for _, ru := range c.rules {
		if ru.expired(now) {
			r.Warnings = append(r.Warnings, report.Warning{Source: report.WarnPolicy, Message: fmt.Sprintf("%s expired on %s and no longer applies",
				ru.label(ru.n), formatExpiry(*ru.Expires))})
		}
	}

	locs := packageLocations(r.Packages)
	var sum report.Summary
	remaining := 0
	for i := range r.Findings {
		f := &r.Findings[i]
		f.Suppressed = c.suppression(r, f, locationsOf(f, locs), now)
		if f.Suppressed != nil {
			sum.Suppressed++
			continue
		}
		sum.Add(f.Severity)
		remaining++
	}
	r.Summary = sum
	r.Verdict = report.DecideVerdict(r.Analyzers, remaining)
	if r.Verdict == report.Unhealthy {
		r.Recommendations = c.recommend(r, locs)
	}
}

func (ru *rule) expired(now time.Time) bool {
	return ru.Expires != nil && now.After(*ru.Expires)
}

// suppression decides whether the policy hides f, and why.
func (c *Compiled) suppression(r *report.Report, f *report.Finding, locations []string, now time.Time) *report.Suppression {
	if s := c.vexSuppression(r, f); s != nil {
		return s
	}
	for i := range c.rules {
		ru := &c.rules[i]
		if ru.expired(now) || !ru.matches(f, locations) {
			continue
		}
		s := &report.Suppression{Kind: report.SuppressedIgnore, Reason: ru.Reason}
		if ru.Expires != nil {
			t := *ru.Expires
			s.Expires = &t
		}
		return s
	}
	if c.onlyFixed && f.FixedVersion == "" {
		return &report.Suppression{
			Kind:   report.SuppressedOnlyFixed,
			Reason: "no fixed version is known, and the policy's only_fixed hides such findings",
		}
	}
	// A finding of unknown severity is never hidden by min_severity: the
	// advisory gave no score, which is not the same as a low one (Go's
	// advisories, for one, carry none).
	known := f.Severity != "" && f.Severity != report.Unknown
	if c.minSeverity != "" && c.minSeverity != report.Unknown && known && !f.Severity.AtLeast(c.minSeverity) {
		sev := f.Severity
		return &report.Suppression{
			Kind:   report.SuppressedMinSeverity,
			Reason: fmt.Sprintf("severity %s is below the policy's min_severity %s", sev, c.minSeverity),
		}
	}
	return nil
}

func (c *Compiled) vexSuppression(r *report.Report, f *report.Finding) *report.Suppression {
	if len(c.vex) == 0 {
		return nil
	}
	st := effective(c.vex, subject{
		ids:    append([]string{f.ID}, f.Aliases...),
		purl:   f.Package.PURL,
		digest: r.Digest,
	})
	if st == nil {
		return nil
	}
	switch st.Status {
	case vex.StatusNotAffected, vex.StatusFixed:
	default: // affected, under_investigation: the finding stands
		return nil
	}
	reason := st.ImpactStatement
	if reason == "" {
		reason = fmt.Sprintf("VEX document %s says %s is %s", st.file, vulnName(st.Vulnerability), st.Status)
	}
	return &report.Suppression{
		Kind:          report.SuppressedVEX,
		Reason:        reason,
		Justification: string(st.Justification),
	}
}

// pkgKey identifies a package in the inventory and in findings.
type pkgKey struct{ ecosystem, name, version string }

func keyOf(p report.PackageRef) pkgKey { return pkgKey{p.Ecosystem, p.Name, p.Version} }

func packageLocations(pkgs []report.Package) map[pkgKey][]string {
	m := make(map[pkgKey][]string, len(pkgs))
	for _, p := range pkgs {
		k := pkgKey{p.Ecosystem, p.Name, p.Version}
		m[k] = append(m[k], p.Locations...)
	}
	return m
}

// locationsOf is where f's package lies: the finding's own locations, else
// those of the package in the inventory.
func locationsOf(f *report.Finding, inventory map[pkgKey][]string) []string {
	if len(f.Locations) > 0 {
		return f.Locations
	}
	return inventory[keyOf(f.Package)]
}

// recommend gives one recommendation per package with remaining findings:
// the highest of their fixed versions when every one has a fix, else the
// ids without one.
func (c *Compiled) recommend(r *report.Report, inventory map[pkgKey][]string) []report.Recommendation {
	type group struct {
		rec   report.Recommendation
		fixed []string // fixed versions, one per finding that has one
	}
	groups := map[pkgKey]*group{}
	for i := range r.Findings {
		f := &r.Findings[i]
		if f.Suppressed != nil {
			continue
		}
		k := keyOf(f.Package)
		g := groups[k]
		if g == nil {
			g = &group{rec: report.Recommendation{Package: f.Package}}
			groups[k] = g
		}
		if g.rec.Package.PURL == "" {
			g.rec.Package.PURL = f.Package.PURL
		}
		g.rec.Findings = append(g.rec.Findings, f.ID)
		g.rec.Locations = append(g.rec.Locations, locationsOf(f, inventory)...)
		if f.FixedVersion == "" {
			g.rec.Unfixed = append(g.rec.Unfixed, f.ID)
		} else {
			g.fixed = append(g.fixed, f.FixedVersion)
		}
	}

	gs := make([]*group, 0, len(groups))
	for _, g := range groups {
		gs = append(gs, g)
	}
	slices.SortFunc(gs, func(a, b *group) int {
		return cmp.Or(
			cmp.Compare(a.rec.Package.Ecosystem, b.rec.Package.Ecosystem),
			cmp.Compare(a.rec.Package.Name, b.rec.Package.Name),
			cmp.Compare(a.rec.Package.Version, b.rec.Package.Version),
		)
	})
	recs := make([]report.Recommendation, 0, len(gs))
	for _, g := range gs {
		rec := g.rec
		rec.Findings = sortedUnique(rec.Findings)
		rec.Unfixed = sortedUnique(rec.Unfixed)
		rec.Locations = sortedUnique(rec.Locations)
		if len(rec.Unfixed) == 0 {
			v, err := c.highest(rec.Package.Ecosystem, g.fixed)
			if err != nil {
				r.Warnings = append(r.Warnings, report.Warning{Source: report.WarnPolicy, Message: fmt.Sprintf("no single fixed version is recommended for %s %s %s: %v",
					rec.Package.Ecosystem, rec.Package.Name, rec.Package.Version, err)})
			}
			rec.FixedVersion = v
		}
		recs = append(recs, rec)
	}
	return recs
}

// highest returns the highest of versions (not empty) in the ecosystem's
// order. Equal strings need no comparator.
func (c *Compiled) highest(ecosystem string, versions []string) (string, error) {
	vs := sortedUnique(versions)
	if len(vs) == 1 {
		return vs[0], nil
	}
	if c.Compare == nil {
		return "", fmt.Errorf("the findings are fixed in different versions (%s) and no version order was given", strings.Join(vs, ", "))
	}
	best := vs[0]
	for _, v := range vs[1:] {
		n, err := c.Compare(ecosystem, v, best)
		if err != nil {
			return "", fmt.Errorf("comparing fixed versions %s and %s: %w", v, best, err)
		}
		if n > 0 {
			best = v
		}
	}
	return best, nil
}

func sortedUnique(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}
