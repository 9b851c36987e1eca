// Package scan runs one scan: it acquires the image (through containerd, as
// a read-only view), runs the analyzers over the view, and builds the
// report.
//
// What it does so far: acquisition is real (pull, unpack, read-only view,
// limits, clean-up) and the report records the manifest digest, config
// digest, platform and layers. No analyzer exists yet (they arrive with the
// sandbox and analyzer work), so every report is "incomplete": a scan that
// did not look is never called healthy.
package scan

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/assayhq/assay/daemon/images"
	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
)

// NoAnalyzersWarning is the warning every report carries until analyzers exist.
const NoAnalyzersWarning = "no analyzers are available in this version of assayd: the image content was not examined"

// Acquirer gets an image as a mounted read-only view.
type Acquirer interface {
	Acquire(ctx context.Context, scanID, ref, platform string) (*images.Image, error)
}

// Scanner is the daemon's scanner.
type Scanner struct {
	Images Acquirer
	// Platforms are the configured platforms, the first one the default.
	Platforms []string
	// Spawn queues a scan of another platform of the same index.
	Spawn  func(context.Context, scans.Request) error
	Logger *slog.Logger
}

// Scan implements the queue's Scanner.
func (s *Scanner) Scan(ctx context.Context, sc scans.Scan, progress func(scans.Status)) (*report.Report, error) {
	platform := sc.Platform
	if platform == "" {
		platform = s.Platforms[0]
	}
	img, err := s.Images.Acquire(ctx, sc.ID, sc.Image, platform)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := img.Release(context.WithoutCancel(ctx)); err != nil {
			s.log().Error("releasing the image view failed", "scan", sc.ID, "err", err)
		}
	}()
	if sc.Platform == "" && img.IndexDigest != "" {
		s.spawnOtherPlatforms(ctx, sc, img)
	}

	progress(scans.Analyzing)
	analyzers := []report.Analyzer{} // none exist yet
	progress(scans.Matching)
	rep := &report.Report{
		Image:        sc.Image,
		Digest:       img.Digest,
		Platform:     img.Platform,
		ScannedAt:    time.Now().UTC(),
		ConfigDigest: img.ConfigDigest,
		Layers:       img.Layers,
		Packages:     []report.Package{},
		Findings:     []report.Finding{},
		Analyzers:    analyzers,
		Warnings:     []string{NoAnalyzersWarning},
	}
	rep.Verdict = report.DecideVerdict(analyzers, 0)
	return rep, nil
}

// spawnOtherPlatforms queues one scan per other configured platform that
// the index holds: an index produces one scan per configured platform.
func (s *Scanner) spawnOtherPlatforms(ctx context.Context, sc scans.Scan, img *images.Image) {
	if s.Spawn == nil {
		return
	}
	for _, p := range s.Platforms[1:] {
		if !slices.Contains(img.Platforms, p) {
			continue
		}
		if err := s.Spawn(ctx, scans.Request{Image: sc.Image, Platform: p, Trigger: sc.Trigger}); err != nil {
			s.log().Warn("queueing the scan of another platform failed", "scan", sc.ID, "platform", p, "err", err)
		}
	}
}

func (s *Scanner) log() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}
