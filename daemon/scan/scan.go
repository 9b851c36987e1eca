// Package scan runs one scan: it acquires the image through containerd,
// runs the analyzers, and builds the report.
//
// Layer plugins (the built-in extractors) read the layer blobs, so the
// image is only fetched, without the layers whose results are cached;
// only when a plugin reads the whole tree is the image unpacked into a
// read-only view (pull, unpack, view, limits, clean-up). The analyzers
// run in sandboxes;
// the inventory is then assessed (daemon/assess: matched against the
// vulnerability database, filtered by policy, given a verdict). With no
// analyzer enabled every report is "incomplete": a scan that did not look
// is never called healthy.
package scan

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/assayhq/assay/daemon/analyze"
	"github.com/assayhq/assay/daemon/images"
	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
)

// NoAnalyzersWarning is the warning of a scan that ran no analyzer.
var NoAnalyzersWarning = report.Warning{Source: report.WarnScan, Message: "no analyzer is enabled (plugins.enabled): the image content was not examined"}

// Analyzers runs the enabled analyzer plugins over an acquired image.
type Analyzers interface {
	// Plan starts a scan's view of the layer cache: which layers must be
	// fetched (Plan.LayerNeeded), and their cached results for Run.
	Plan() *analyze.Plan
	Run(ctx context.Context, img *images.Image, plan *analyze.Plan) (*analyze.Result, error)
	// NeedsTree tells whether a plugin reads the unpacked tree.
	NeedsTree() bool
}

// Acquirer gets an image: as a mounted read-only view (Acquire), or as
// blobs in the content store, the layers nobody needs left out (Fetch).
type Acquirer interface {
	Acquire(ctx context.Context, scanID, ref, platform string) (*images.Image, error)
	Fetch(ctx context.Context, scanID, ref, platform string, skip func(layerDigest string) bool) (*images.Image, error)
}

// Assessor matches a report's inventory and decides its verdict
// (daemon/assess).
type Assessor interface {
	Assess(ctx context.Context, rep *report.Report) error
}

// Scanner is the daemon's scanner.
type Scanner struct {
	Images    Acquirer
	Analyzers Analyzers
	Assessor  Assessor
	// Platforms are the configured platforms, the first one the default.
	Platforms []string
	// MaxPackages and MaxLocations cap what a report keeps
	// (report.Truncate); 0 is no cap.
	MaxPackages, MaxLocations int
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
	// Only a plugin that reads the whole tree needs the image unpacked;
	// layer plugins read the layer blobs, and only those not cached.
	if a := sc.Auth; a != nil {
		ctx = images.WithAuthorization(ctx, a.Host, a.Authorization)
	}
	var img *images.Image
	var err error
	plan := s.Analyzers.Plan()
	if s.Analyzers.NeedsTree() {
		img, err = s.Images.Acquire(ctx, sc.ID, sc.Image, platform)
	} else {
		img, err = s.Images.Fetch(ctx, sc.ID, sc.Image, platform, func(d string) bool { return !plan.LayerNeeded(d) })
	}
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
	res, err := s.Analyzers.Run(ctx, img, plan)
	if err != nil {
		return nil, err
	}
	progress(scans.Matching)
	rep := &report.Report{
		Image:         sc.Image,
		Digest:        img.Digest,
		Platform:      img.Platform,
		ScannedAt:     time.Now().UTC(),
		ConfigDigest:  img.ConfigDigest,
		Layers:        img.Layers,
		Packages:      res.Packages,
		Findings:      res.Findings,
		Analyzers:     res.Analyzers,
		Warnings:      res.Warnings,
		Trigger:       sc.Trigger,
		RequestPolicy: sc.Policy,
	}
	if len(res.Analyzers) == 0 {
		rep.Warnings = append(rep.Warnings, NoAnalyzersWarning)
	}
	if w := report.Truncate(rep, s.MaxPackages, s.MaxLocations); w != "" {
		s.log().Warn("report truncated", "scan", sc.ID, "warning", w)
	}
	if err := s.Assessor.Assess(ctx, rep); err != nil {
		return nil, err
	}
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
		if err := s.Spawn(ctx, scans.Request{Image: sc.Image, Platform: p, Trigger: sc.Trigger, Auth: sc.Auth}); err != nil {
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
