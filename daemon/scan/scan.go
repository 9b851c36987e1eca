// Package scan runs one scan: it gets the image, runs the analyzers and
// builds the report.
//
// What it does so far: it resolves the image in its registry and records the
// manifest digest, platform, config digest and layers. No analyzer exists
// yet (they arrive with the sandbox and analyzer work), so every report is
// "incomplete": a scan that did not look is never called healthy.
package scan

import (
	"context"
	"time"

	"github.com/assayhq/assay/daemon/registry"
	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
)

// NoAnalyzersWarning is the warning every report carries until analyzers exist.
const NoAnalyzersWarning = "no analyzers are available in this version of assayd: the image content was not examined"

// Scanner is the daemon's scanner.
type Scanner struct{}

// Scan implements the queue's Scanner.
func (Scanner) Scan(ctx context.Context, sc scans.Scan, progress func(scans.Status)) (*report.Report, error) {
	image := sc.Image
	m, err := registry.Resolve(ctx, image, sc.Platform)
	if err != nil {
		return nil, err
	}
	progress(scans.Analyzing)
	var analyzers []report.Analyzer // none exist yet
	progress(scans.Matching)
	rep := &report.Report{
		Image:        image,
		Digest:       m.Digest,
		Platform:     m.Platform,
		ScannedAt:    time.Now().UTC(),
		ConfigDigest: m.ConfigDigest,
		Layers:       m.Layers,
		Packages:     []report.Package{},
		Findings:     []report.Finding{},
		Analyzers:    []report.Analyzer{},
		Warnings:     []string{NoAnalyzersWarning},
	}
	rep.Verdict = report.DecideVerdict(analyzers, 0)
	return rep, nil
}
