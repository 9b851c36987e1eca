package match

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/ossf/osv-schema/bindings/go/osvschema"

	"github.com/assayhq/assay/daemon/report"
)

// DB gives the OSV records that name a package. daemon/vulndb implements
// it. name is normalised with NormalizeName; the records returned may name
// other packages too (Match checks every affected entry itself).
type DB interface {
	Query(ctx context.Context, ecosystem, name string) ([]*osvschema.Vulnerability, error)
}

// Options change what is matched.
type Options struct {
	// MatchOSOwned matches language packages that an OS package owns
	// (report.Package.Owner set: the egg-info of Debian's python3-urllib3)
	// against their language ecosystem's advisories too. By default they
	// are not: the distribution patches its own builds, and its advisories
	// cover the owning package.
	MatchOSOwned bool
}

// Matcher matches inventories against the records of DB.
type Matcher struct {
	DB      DB
	Options Options
}

// sourceNamed are the ecosystems whose advisories name source packages
// (OSV's ecosystem list says so): a package that carries its Source is
// matched through it.
var sourceNamed = map[string]bool{
	"Debian": true, "Ubuntu": true,
	"Alpine": true, "Alpaquita": true, "BellSoft Hardened Containers": true,
	"AlmaLinux": true, "Rocky Linux": true, "Mageia": true,
	"openSUSE": true, "SUSE": true, "openEuler": true,
}

// hit is one record that affects one package.
type hit struct {
	rec    *osvschema.Vulnerability
	fix    string // "" when the record names no fix above the version
	rating Rating
}

// Match returns the findings for pkgs: one per package and vulnerability,
// records sharing an id or alias merged, sorted by package and id.
// warnings name what could not be evaluated (an ecosystem without a known
// version ordering, a version or a range its rules refuse); they never
// stop matching. err is set only when the DB fails or ctx ends: findings
// are then incomplete and must not be used.
//
// For each package:
//   - a package with Owner set is skipped unless Options.MatchOSOwned;
//   - a package of a source-named ecosystem (Debian, Ubuntu, Alpine...)
//     with a Source is looked up by the source's name and compared by the
//     source's version (epoch included), and its findings carry
//     MatchedSource; every binary package of a source gets its own
//     findings;
//   - a record applies when it is not withdrawn and one of its affected
//     entries names exactly the package's ecosystem (Debian:12 records
//     apply to Debian:12 packages only) and its name (NormalizeName), and
//     the version is in one of the entry's SEMVER or ECOSYSTEM ranges or
//     listed in its versions[]. GIT ranges are ignored.
func (m *Matcher) Match(ctx context.Context, pkgs []report.Package) (findings []report.Finding, warnings []string, err error) {
	if m.DB == nil {
		return nil, nil, fmt.Errorf("match: no vulnerability database")
	}
	w := &warner{seen: map[string]bool{}}
	cache := map[string][]*osvschema.Vulnerability{}
	unsupported := map[string]int{}
	var unsupportedOrder []string
	skippedOwned := 0

	for i := range pkgs {
		if err := ctx.Err(); err != nil {
			return nil, nil, fmt.Errorf("match: %w", err)
		}
		p := &pkgs[i]
		if p.Owner != "" && !m.Options.MatchOSOwned {
			skippedOwned++
			continue
		}
		if !Supported(p.Ecosystem) {
			if unsupported[p.Ecosystem] == 0 {
				unsupportedOrder = append(unsupportedOrder, p.Ecosystem)
			}
			unsupported[p.Ecosystem]++
			continue
		}
		name, version, src := p.Name, p.Version, (*report.Source)(nil)
		if p.Source != nil && p.Source.Name != "" && sourceNamed[BaseEcosystem(p.Ecosystem)] {
			name = p.Source.Name
			if p.Source.Version != "" {
				version = p.Source.Version
			}
			src = &report.Source{Name: name, Version: version}
		}
		installed, err := ParseVersion(p.Ecosystem, version)
		if err != nil {
			w.add(fmt.Sprintf("match: %s package %s %q was not matched: its version cannot be ordered: %v", p.Ecosystem, short(p.Name), short(version), err))
			continue
		}
		norm := NormalizeName(p.Ecosystem, name)
		key := p.Ecosystem + "\x00" + norm
		recs, ok := cache[key]
		if !ok {
			recs, err = m.DB.Query(ctx, p.Ecosystem, norm)
			if err != nil {
				return nil, nil, fmt.Errorf("match: looking up advisories for %s package %s: %w", p.Ecosystem, name, err)
			}
			cache[key] = recs
		}
		var hits []hit
		for _, rec := range recs {
			if rec.GetWithdrawn() != nil {
				continue
			}
			h, ok := evalRecord(rec, p.Ecosystem, norm, installed, version, w)
			if ok {
				hits = append(hits, h)
			}
		}
		for _, g := range mergeAliases(hits) {
			findings = append(findings, finding(p, src, g))
		}
	}
	for _, eco := range unsupportedOrder {
		w.add(fmt.Sprintf("match: %d %s package(s) were not matched: %v", unsupported[eco], eco, ErrUnsupportedEcosystem))
	}
	sortFindings(findings)
	slog.DebugContext(ctx, "match: done", "packages", len(pkgs), "findings", len(findings),
		"warnings", len(w.list), "skipped_os_owned", skippedOwned, "queries", len(cache))
	return findings, w.list, nil
}

// warner collects warnings once each, in the order first seen.
type warner struct {
	seen map[string]bool
	list []string
}

func (w *warner) add(s string) {
	if !w.seen[s] {
		w.seen[s] = true
		w.list = append(w.list, s)
	}
}

// evalRecord decides whether rec affects the package (ecosystem eco,
// normalised name, installed version, raw the version string compared).
// The fix is the highest of the matching entries' fixes (each the lowest
// fix above the version in its ranges), or "" when one of them has none.
func evalRecord(rec *osvschema.Vulnerability, eco, name string, installed Version, raw string, w *warner) (hit, bool) {
	var matched []*osvschema.Affected
	var fixes []string
	noFix := false
	for ai, a := range rec.GetAffected() {
		pkg := a.GetPackage()
		if pkg.GetEcosystem() != eco || NormalizeName(eco, pkg.GetName()) != name {
			continue
		}
		hitAny, fix, fixKnown := false, "", true
		for ri, r := range a.GetRanges() {
			var (
				pr  parsedRange
				err error
				v   = installed
			)
			switch r.GetType() {
			case osvschema.Range_GIT:
				continue
			case osvschema.Range_ECOSYSTEM:
				pr, err = parseRange(installed.Ordering(), func(s string) (Version, error) { return ParseVersion(eco, s) }, r)
			case osvschema.Range_SEMVER:
				// SEMVER ranges are ordered by SemVer 2.0 whatever the
				// ecosystem.
				if v, err = semverOf(eco, installed); err != nil {
					w.add(fmt.Sprintf("match: %s: %s package %s: version %q is not a semantic version, SEMVER range %d skipped", rec.GetId(), eco, short(name), short(raw), ri+1))
					continue
				}
				pr, err = parseRange(OrderingSemVer, parseSemVer, r)
			default:
				w.add(fmt.Sprintf("match: %s: affected %d range %d has unknown type %s, skipped", rec.GetId(), ai+1, ri+1, r.GetType()))
				continue
			}
			if err != nil {
				w.add(fmt.Sprintf("match: %s: %s package %s: range %d skipped: %v", rec.GetId(), eco, short(pkg.GetName()), ri+1, err))
				continue
			}
			in, f, err := pr.contains(v)
			if err != nil {
				w.add(fmt.Sprintf("match: %s: %s package %s: range %d skipped: %v", rec.GetId(), eco, short(pkg.GetName()), ri+1, err))
				continue
			}
			if !in {
				continue
			}
			hitAny = true
			if f == "" {
				fixKnown = false
			} else if fix == "" || higher(eco, f, fix) {
				// Out of every matching range only at the highest of
				// their lowest fixes.
				fix = f
			}
		}
		if !hitAny && inVersions(eco, installed, raw, a.GetVersions()) {
			hitAny = true
			// Listed but in no range: the lowest fix the ranges name
			// above the version, if any.
			fix, fixKnown = lowestFixAbove(eco, installed, a), true
			if fix == "" {
				fixKnown = false
			}
		}
		if !hitAny {
			continue
		}
		matched = append(matched, a)
		if !fixKnown {
			noFix = true
		} else if fix != "" {
			fixes = append(fixes, fix)
		}
	}
	if len(matched) == 0 {
		return hit{}, false
	}
	h := hit{rec: rec, rating: Rate(rec, matched...)}
	for _, p := range h.rating.Problems {
		w.add("match: " + p)
	}
	if !noFix {
		for _, f := range fixes {
			if h.fix == "" || higher(eco, f, h.fix) {
				h.fix = f
			}
		}
	}
	return h, true
}

// semverOf reads an installed version as SemVer for a SEMVER range.
func semverOf(eco string, installed Version) (Version, error) {
	if installed.Ordering() == OrderingSemVer {
		return installed, nil
	}
	return parseSemVer(installed.String())
}

// inVersions reports whether the version is listed in versions: the same
// string, or a version its ecosystem's rules call equal ("v1.2.3" and
// "1.2.3"). Entries the rules refuse are ignored: OSV allows versions[] to
// hold anything (git tags).
func inVersions(eco string, installed Version, raw string, versions []string) bool {
	for _, s := range versions {
		if s == raw || s == installed.String() {
			return true
		}
	}
	for _, s := range versions {
		v, err := ParseVersion(eco, s)
		if err != nil {
			continue
		}
		if c, err := installed.Compare(v); err == nil && c == 0 {
			return true
		}
	}
	return false
}

// lowestFixAbove returns the lowest fixed event of a's ECOSYSTEM and
// SEMVER ranges above the installed version, or "".
func lowestFixAbove(eco string, installed Version, a *osvschema.Affected) string {
	best := ""
	var bestV Version
	for _, r := range a.GetRanges() {
		if r.GetType() != osvschema.Range_ECOSYSTEM && r.GetType() != osvschema.Range_SEMVER {
			continue
		}
		for _, e := range r.GetEvents() {
			if e.GetFixed() == "" {
				continue
			}
			v, err := ParseVersion(eco, e.GetFixed())
			if err != nil {
				continue
			}
			if c, err := v.Compare(installed); err != nil || c <= 0 {
				continue
			}
			if best == "" {
				best, bestV = e.GetFixed(), v
			} else if c, err := v.Compare(bestV); err == nil && c < 0 {
				best, bestV = e.GetFixed(), v
			}
		}
	}
	return best
}

// higher reports whether version a is above b in eco; a pair that cannot
// be compared is not.
func higher(eco, a, b string) bool {
	c, err := Compare(eco, a, b)
	if err != nil {
		c, err = parseAndCompareSemVer(a, b)
	}
	return err == nil && c > 0
}

func parseAndCompareSemVer(a, b string) (int, error) {
	va, err := parseSemVer(a)
	if err != nil {
		return 0, err
	}
	vb, err := parseSemVer(b)
	if err != nil {
		return 0, err
	}
	return va.Compare(vb)
}

// group is the records of one vulnerability that affect one package.
type group struct {
	hits []hit
}

// mergeAliases groups the hits whose records share an id or an alias,
// directly or through another record (GO-2023-1234 aliasing GHSA-x and
// GHSA-x aliasing CVE-y make one group). Groups come out in the order of
// their first hit.
func mergeAliases(hits []hit) []group {
	parent := make([]int, len(hits))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	owner := map[string]int{}
	for i, h := range hits {
		for _, id := range append([]string{h.rec.GetId()}, h.rec.GetAliases()...) {
			if id == "" {
				continue
			}
			if j, ok := owner[id]; ok {
				ri, rj := find(i), find(j)
				if ri != rj {
					parent[max(ri, rj)] = min(ri, rj)
				}
			} else {
				owner[id] = i
			}
		}
	}
	index := map[int]int{}
	var groups []group
	for i, h := range hits {
		r := find(i)
		gi, ok := index[r]
		if !ok {
			gi = len(groups)
			index[r] = gi
			groups = append(groups, group{})
		}
		groups[gi].hits = append(groups[gi].hits, h)
	}
	return groups
}

// finding builds the finding of one group for package p.
//
// The primary id is the record id that sorts first by idRank (a
// database's own advisory id such as GO-, PYSEC-, DSA-, DEBIAN- or RUSTSEC-
// before GHSA- before CVE-), then by natural order (numbers compared as
// numbers: PYSEC-2021-88 before PYSEC-2021-104). Aliases are every other
// id and alias of the group's records. The severity is the highest of the
// records' (the first record in primary order wins a tie); the fixed
// version the highest of their fixes, as the version that fixes them all.
// A record of the group that names no fix is passed over there: records of
// one vulnerability from several databases often disagree only in that
// one lags behind (a GHSA without a patched version yet), and a known fix
// is the more useful remediation. Within one record, a matching range
// without a fix leaves the record without one.
func finding(p *report.Package, src *report.Source, g group) report.Finding {
	hits := slices.Clone(g.hits)
	slices.SortStableFunc(hits, func(a, b hit) int { return compareIDs(a.rec.GetId(), b.rec.GetId()) })
	primary := hits[0].rec.GetId()

	ids := map[string]bool{}
	for _, h := range hits {
		for _, id := range append([]string{h.rec.GetId()}, h.rec.GetAliases()...) {
			if id != "" && id != primary {
				ids[id] = true
			}
		}
	}
	aliases := make([]string, 0, len(ids))
	for id := range ids {
		aliases = append(aliases, id)
	}
	slices.SortFunc(aliases, compareIDs)

	best := hits[0].rating
	for _, h := range hits[1:] {
		if h.rating.Severity.Rank() > best.Severity.Rank() {
			best = h.rating
		}
	}
	fix := ""
	for _, h := range hits {
		if h.fix != "" && (fix == "" || higher(p.Ecosystem, h.fix, fix)) {
			fix = h.fix
		}
	}
	summary := ""
	for _, h := range hits {
		if summary = oneLine(h.rec.GetSummary()); summary != "" {
			break
		}
	}
	if summary == "" {
		for _, h := range hits {
			if summary = oneLine(h.rec.GetDetails()); summary != "" {
				break
			}
		}
	}
	sev := best.Severity
	if sev == "" {
		sev = report.Unknown
	}
	f := report.Finding{
		ID:      primary,
		Aliases: aliases,
		Package: report.PackageRef{
			Ecosystem: p.Ecosystem,
			Name:      p.Name,
			Version:   p.Version,
			PURL:      p.PURL,
		},
		Severity:       sev,
		SeveritySource: best.Source,
		CVSS:           best.CVSS,
		CVSSv3:         best.CVSSv3,
		FixedVersion:   fix,
		Summary:        summary,
		Locations:      slices.Clone(p.Locations),
	}
	if src != nil {
		s := *src
		f.MatchedSource = &s
	}
	return f
}

// idRank orders id prefixes for the primary id: a database's own advisory
// first, then GHSA, then CVE.
func idRank(id string) int {
	switch {
	case strings.HasPrefix(id, "CVE-"):
		return 2
	case strings.HasPrefix(id, "GHSA-"):
		return 1
	}
	return 0
}

func compareIDs(a, b string) int {
	if c := cmp.Compare(idRank(a), idRank(b)); c != 0 {
		return c
	}
	if c := naturalCompare(a, b); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

// naturalCompare compares strings with runs of digits compared as numbers.
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digitRun(a), digitRun(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if c := cmp.Compare(len(na), len(nb)); c != 0 {
				return c
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return cmp.Compare(a[0], b[0])
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

func digitRun(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// oneLine returns the first non-empty line of s, bounded.
func oneLine(s string) string {
	for line := range strings.Lines(s) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		const max = 200
		if len(line) > max {
			cut := max
			for cut > 0 && !utf8.RuneStart(line[cut]) {
				cut--
			}
			line = line[:cut] + "..."
		}
		return line
	}
	return ""
}

// sortFindings orders findings by package (ecosystem, name, version, purl,
// locations), then by id.
func sortFindings(fs []report.Finding) {
	slices.SortStableFunc(fs, func(a, b report.Finding) int {
		return cmp.Or(
			cmp.Compare(a.Package.Ecosystem, b.Package.Ecosystem),
			cmp.Compare(a.Package.Name, b.Package.Name),
			cmp.Compare(a.Package.Version, b.Package.Version),
			cmp.Compare(a.Package.PURL, b.Package.PURL),
			slices.Compare(a.Locations, b.Locations),
			compareIDs(a.ID, b.ID),
		)
	})
}
