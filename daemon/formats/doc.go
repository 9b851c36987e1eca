// Package formats writes an assay report (report.Report) in the formats
// that other tools read: the report's own JSON, SARIF 2.1.0 (code-scanning
// dashboards), CycloneDX 1.6 JSON (an SBOM with its vulnerabilities and
// their VEX analysis) and SPDX 2.3 JSON (an SBOM). It also says which media
// type each format has and picks a format from an HTTP Accept header.
//
// Each format is built with the maintained library for it
// (owenrumney/go-sarif, CycloneDX/cyclonedx-go, spdx/tools-golang) and the
// tests validate every output against the format's official JSON schema
// (testdata/schema, with their origin in its README).
//
// What each format holds:
//
//   - SARIF: one run whose driver has one rule per advisory id; one result
//     per finding. Findings that policy suppressed are results with a
//     `suppressions` entry, so dashboards show them as dismissed rather
//     than losing them. The run's properties carry the verdict and the
//     image digest; an incomplete verdict marks the invocation as not
//     successful, with the failed analyzers as notifications.
//   - CycloneDX: the image as metadata.component, every inventory package
//     as a component and every finding as a vulnerability whose `affects`
//     names its component; suppressed findings carry an `analysis` (see
//     analysisOf for how suppressions map onto CycloneDX's VEX states).
//   - SPDX: the image and the packages it contains. Vulnerabilities are not
//     part of SPDX 2.3 (its security external references point to
//     advisories about a package, not to a scanner's findings), so the SPDX
//     output carries none: nothing is made up to fill the gap. Use SARIF or
//     CycloneDX for findings.
//
// Nothing here does I/O beyond writing to the given io.Writer, and nothing
// reaches the network: the SPDX document namespace is an
// https://assay.invalid/ URI, a name only (.invalid never resolves).
//
// The human-readable "table" format is the CLI's; Write refuses it.
package formats
