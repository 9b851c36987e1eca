// Package policy is the user's policy over matched findings: which findings
// to hide (a minimum severity, only findings with a fix, ignore rules,
// OpenVEX statements), the verdict that follows, and the recommendations
// of an unhealthy report.
//
// A Policy is plain data, decoded from the daemon's configuration or from
// a scan request and merged (Merge). Compile validates it and loads its
// OpenVEX documents once; the Compiled policy is read-only and applies to
// any number of reports, concurrently, with Apply. Apply never removes a
// finding: a hidden finding stays in the report with Suppressed saying
// why, so users can audit what their policy hides.
//
// The package must not match advisories or order versions itself: the
// findings come matched, and the version order used for recommendations is
// given to it (Compiled.Compare), so that it does not import the matcher.
package policy
