package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/assayhq/assay/daemon/errdefs"
	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
)

func finishWith(t *testing.T, s *Store, image string, r *report.Report) scans.Scan {
	t.Helper()
	ctx := context.Background()
	sc, _ := create(t, s, image)
	if _, ok, err := s.Claim(ctx); !ok || err != nil {
		t.Fatalf("claim: %v %v", ok, err)
	}
	r.Image = image
	out, err := s.Finish(ctx, sc.ID, scans.Done, "", r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func debianReport(digest string, perlVersion string, findings ...report.Finding) *report.Report {
	return &report.Report{
		Digest:   digest,
		Platform: "linux/amd64",
		Verdict:  report.Unhealthy,
		Packages: []report.Package{
			{Ecosystem: "Debian:12", Name: "perl-base", Version: perlVersion, Locations: []string{"/var/lib/dpkg/status"}},
			{Ecosystem: "PyPI", Name: "Jinja2", Version: "3.1.2", Locations: []string{"/usr/lib/python3/dist-packages/Jinja2-3.1.2.egg-info"}},
		},
		Findings: findings,
	}
}

func perlFinding(id string, aliases ...string) report.Finding {
	return report.Finding{ID: id, Aliases: aliases, Severity: report.High,
		Package: report.PackageRef{Ecosystem: "Debian:12", Name: "perl-base", Version: "5.36.0-7+deb12u1"}}
}

func TestIndexesFollowTheLatestReport(t *testing.T) {
	ctx := context.Background()
	s, path := open(t)
	finishWith(t, s, "r/a:1", debianReport("sha256:aa", "5.36.0-7+deb12u1", perlFinding("DEBCL-CVE-2023-47038", "CVE-2023-47038")))
	finishWith(t, s, "r/b:1", debianReport("sha256:bb", "5.36.0-7+deb12u1"))

	hits, err := s.PackageImages(ctx, "Debian", "perl-base")
	if err != nil || len(hits) != 2 || hits[0].Image != "r/a:1" || hits[1].Image != "r/b:1" {
		t.Fatalf("PackageImages(Debian, perl-base) = %+v, %v; want r/a:1 and r/b:1", hits, err)
	}
	if hits, _ := s.PackageImages(ctx, "Debian:11", "perl-base"); len(hits) != 0 {
		t.Fatalf("Debian:11 matched Debian:12 packages: %+v", hits)
	}
	// PyPI names are compared in their PEP 503 form.
	if hits, _ := s.PackageImages(ctx, "PyPI", "jinja2"); len(hits) != 2 {
		t.Fatalf("PackageImages(PyPI, jinja2) = %+v, want 2 hits", hits)
	}
	for _, id := range []string{"DEBCL-CVE-2023-47038", "cve-2023-47038"} {
		v, err := s.VulnerabilityImages(ctx, id)
		if err != nil || len(v) != 1 || v[0].Digest != "sha256:aa" || v[0].ID != "DEBCL-CVE-2023-47038" {
			t.Fatalf("VulnerabilityImages(%s) = %+v, %v; want one hit on sha256:aa", id, v, err)
		}
	}

	// A newer report of sha256:aa without the finding and with another
	// version replaces the index entries.
	finishWith(t, s, "r/a:1", debianReport("sha256:aa", "5.36.0-7+deb12u2"))
	if v, _ := s.VulnerabilityImages(ctx, "CVE-2023-47038"); len(v) != 0 {
		t.Fatalf("the fixed image is still listed: %+v", v)
	}
	hits, _ = s.PackageImages(ctx, "Debian:12", "perl-base")
	if len(hits) != 2 || hits[0].Version != "5.36.0-7+deb12u2" {
		t.Fatalf("after the new report: %+v", hits)
	}

	// The indexes are rebuilt for a store written before they existed.
	err = s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketPkgIndex, bucketVulnIndex} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Delete([]byte("index"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if hits, _ := s2.PackageImages(ctx, "", "perl-base"); len(hits) != 2 {
		t.Fatalf("after reopen: %+v", hits)
	}
}

func TestPutRematch(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	finishWith(t, s, "r/a:1", debianReport("sha256:aa", "5.36.0-7+deb12u1"))
	prev, err := s.LatestReport(ctx, "sha256:aa")
	if err != nil {
		t.Fatal(err)
	}
	next := *prev
	next.Findings = []report.Finding{perlFinding("DEBCL-CVE-2023-47038", "CVE-2023-47038")}
	next.Trigger = "rematch"
	next.MatchedAt = time.Now().UTC()
	if err := s.PutRematch(ctx, prev, &next); err != nil {
		t.Fatal(err)
	}
	got, _ := s.LatestReport(ctx, "sha256:aa")
	if got.Trigger != "rematch" || len(got.Findings) != 1 || got.ScanID != prev.ScanID {
		t.Fatalf("latest after rematch: trigger %q, %d findings, scan %s", got.Trigger, len(got.Findings), got.ScanID)
	}
	if v, _ := s.VulnerabilityImages(ctx, "CVE-2023-47038"); len(v) != 1 {
		t.Fatalf("rematch finding not indexed: %+v", v)
	}
	// The stale base (prev) is refused now that the latest changed.
	if err := s.PutRematch(ctx, prev, &next); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("a rematch over a changed latest report: %v, want ErrConflict", err)
	}
	if reps, _ := s.Reports(ctx, "sha256:aa"); len(reps) != 2 {
		t.Fatalf("%d reports, want 2", len(reps))
	}
}

// 100,000 packages of one name (a lock file of 20,000 lodash entries
// reaches this) are one index entry written once. Written the old way
// (read, extend and rewrite the entry per package) this took hours.
func TestIndexManySameNamePackages(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	r := &report.Report{Digest: "sha256:lo", Platform: "linux/amd64", Verdict: report.Healthy}
	for i := range 100_000 {
		r.Packages = append(r.Packages, report.Package{Ecosystem: "npm", Name: "lodash", Version: fmt.Sprintf("4.17.%d", i),
			Locations: []string{fmt.Sprintf("/app/%d/node_modules/lodash/package.json", i)}})
	}
	start := time.Now()
	finishWith(t, s, "r/lodash:1", r)
	t.Logf("stored and indexed 100,000 same-name packages in %s", time.Since(start))
	hits, err := s.PackageImages(ctx, "npm", "lodash")
	if err != nil || len(hits) != 1 {
		t.Fatalf("PackageImages: %d hits, %v; want 1", len(hits), err)
	}
	if h := hits[0]; h.Version != "4.17.0" || len(h.Locations) != MaxHitLocations || h.Locations[1] != "/app/1/node_modules/lodash/package.json" {
		t.Errorf("hit: version %s, %d locations, want the first version and %d locations in order", h.Version, len(h.Locations), MaxHitLocations)
	}
	// Replacing the report removes the entry.
	finishWith(t, s, "r/lodash:1", &report.Report{Digest: "sha256:lo", Verdict: report.Healthy})
	if hits, _ := s.PackageImages(ctx, "npm", "lodash"); len(hits) != 0 {
		t.Errorf("stale hits after the next report: %d", len(hits))
	}
}

// A report with a scan request's own policy (which may ignore everything)
// never becomes the digest's latest nor feeds the indexes; it is kept
// beside, found by its scan.
func TestRequestPolicyReportKeptBeside(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	configured := finishWith(t, s, "r/a:1", debianReport("sha256:aa", "5.36.0-7+deb12u1", perlFinding("DEBCL-CVE-2023-47038", "CVE-2023-47038")))
	quiet := debianReport("sha256:aa", "5.36.0-7+deb12u1")
	quiet.Verdict = report.Healthy
	quiet.RequestPolicy = []byte(`{"ignore":[{"path":"/**"}]}`)
	own := finishWith(t, s, "r/a:1", quiet)
	latest, err := s.LatestReport(ctx, "sha256:aa")
	if err != nil || latest.ScanID != configured.ID || latest.Verdict != report.Unhealthy {
		t.Fatalf("latest = %+v, %v; want the configured policy's report of scan %s", latest, err, configured.ID)
	}
	if hits, _ := s.VulnerabilityImages(ctx, "CVE-2023-47038"); len(hits) != 1 {
		t.Errorf("the request's report changed the index: %d hits", len(hits))
	}
	got, err := s.ReportOfScan(ctx, "sha256:aa", own.ID)
	if err != nil || got.Verdict != report.Healthy || len(got.RequestPolicy) == 0 {
		t.Errorf("the request's own report: %+v, %v", got, err)
	}
	if all, _ := s.Reports(ctx, "sha256:aa"); len(all) != 2 {
		t.Errorf("history has %d reports, want both", len(all))
	}
	// Only a request-policy report: no latest of the configured policy.
	only := debianReport("sha256:bb", "5.36.0-7+deb12u1")
	only.RequestPolicy = []byte(`{"min_severity":"critical"}`)
	finishWith(t, s, "r/b:1", only)
	if _, err := s.LatestReport(ctx, "sha256:bb"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("latest of a digest with only a request-policy report: %v, want ErrNotFound", err)
	}
}
