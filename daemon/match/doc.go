// Package match matches an image's inventory (report.Package) against OSV
// records and produces report.Finding values. It provides:
//
//   - version ordering per ecosystem (versions.go): OSV ecosystem names,
//     release suffixes included ("Debian:12", "Ubuntu:22.04:LTS",
//     "Alpine:v3.20", "Red Hat:rhel_aus:8.4::appstream"), mapped to the
//     comparators of osv-scalibr's semantic package; Go toolchain versions
//     ("go1.21.3") normalised to the semver advisories use ("1.21.3");
//   - OSV's affected-range semantics (ranges.go): ECOSYSTEM and SEMVER
//     ranges with introduced/fixed/last_affected/limit events sorted as the
//     OSV specification's evaluation algorithm says, explicit versions[],
//     GIT ranges ignored, withdrawn records skipped;
//   - one finding per vulnerability and package (match.go): records that
//     share an id or alias are merged, with the remediation that fixes all
//     of them;
//   - severity (severity.go): from CVSS v4 or v3 vectors scored with
//     go-cvss, else from the database's or the ecosystem's own rating.
//
// Distribution packages are matched through their source package (Debian,
// Ubuntu and Alpine advisories name source packages), and language packages
// shipped by the distribution (Package.Owner set) are left to the
// distribution's advisories unless Options.MatchOSOwned says otherwise.
//
// The package does no I/O of its own: records come from a DB (implemented
// by daemon/vulndb), and it never decides a verdict or applies policy
// (suppression, VEX) — that is daemon/policy's job. Bad data in a record (a
// version the ecosystem's rules refuse, an invalid CVSS vector) never stops
// matching: the part that cannot be evaluated is skipped and a warning says
// so.
package match
