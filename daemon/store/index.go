package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/assayhq/assay/daemon/errdefs"
	"github.com/assayhq/assay/daemon/match"
	"github.com/assayhq/assay/daemon/report"
)

// The cross-image indexes cover the latest report of each digest. They are
// kept in the transaction that stores a report: the entries of the digest's
// previous latest report are removed and the new report's added.
var (
	// name (match.NormalizeName) 0x00 ecosystem 0x00 digest -> PackageHit JSON
	bucketPkgIndex = []byte("pkgidx")
	// ID 0x00 digest 0x00 ecosystem 0x00 name 0x00 version -> VulnHit JSON,
	// once under the finding's id and once under each alias (upper case).
	bucketVulnIndex = []byte("vulnidx")
)

const indexVersion = "1"

// PackageHit is an image whose latest report holds a package.
type PackageHit struct {
	Digest    string         `json:"digest"`
	Image     string         `json:"image"`
	Platform  string         `json:"platform"`
	Verdict   report.Verdict `json:"verdict"`
	Ecosystem string         `json:"ecosystem"`
	Name      string         `json:"name"`
	Version   string         `json:"version"`
	Locations []string       `json:"locations"`
}

// VulnHit is a package of an image that an advisory affects, in the
// image's latest report.
type VulnHit struct {
	ID         string            `json:"id"`
	Aliases    []string          `json:"aliases"`
	Digest     string            `json:"digest"`
	Image      string            `json:"image"`
	Platform   string            `json:"platform"`
	Verdict    report.Verdict    `json:"verdict"`
	Package    report.PackageRef `json:"package"`
	Severity   report.Severity   `json:"severity"`
	Fixed      string            `json:"fixed_version,omitempty"`
	Suppressed bool              `json:"suppressed"`
	Locations  []string          `json:"locations,omitempty"`
}

func pkgKey(ecosystem, name, digest string) []byte {
	return []byte(match.NormalizeName(ecosystem, name) + "\x00" + ecosystem + "\x00" + digest)
}

func vulnKey(id, digest string, p report.PackageRef) []byte {
	return []byte(strings.ToUpper(id) + "\x00" + digest + "\x00" + p.Ecosystem + "\x00" + p.Name + "\x00" + p.Version)
}

// MaxHitLocations caps the locations of one package index entry (the
// locations of every package of one name and ecosystem in an image,
// merged); the report keeps them all.
const MaxHitLocations = 1000

// index adds (add=true) or removes the index entries of r. Packages of one
// name are merged in memory first, so that each key is written once: a
// report of 100,000 packages of one name costs one write, not 100,000
// rewrites of a growing entry.
func index(tx *bolt.Tx, r *report.Report, add bool) error {
	pb, vb := tx.Bucket(bucketPkgIndex), tx.Bucket(bucketVulnIndex)
	hits := map[string]*PackageHit{}
	var order []string
	for _, p := range r.Packages {
		k := string(pkgKey(p.Ecosystem, p.Name, r.Digest))
		// Two packages of one name and ecosystem in one image (two copies
		// of a jar, two node_modules trees) are one hit with all versions'
		// locations; the first version is shown.
		hit, ok := hits[k]
		if !ok {
			hit = &PackageHit{Digest: r.Digest, Image: r.Image, Platform: r.Platform, Verdict: r.Verdict,
				Ecosystem: p.Ecosystem, Name: p.Name, Version: p.Version}
			hits[k] = hit
			order = append(order, k)
		}
		if room := MaxHitLocations - len(hit.Locations); room > 0 {
			hit.Locations = append(hit.Locations, p.Locations[:min(room, len(p.Locations))]...)
		}
	}
	for _, k := range order {
		if !add {
			if err := pb.Delete([]byte(k)); err != nil {
				return err
			}
			continue
		}
		v, err := json.Marshal(hits[k])
		if err != nil {
			return err
		}
		if err := pb.Put([]byte(k), v); err != nil {
			return err
		}
	}
	for _, f := range r.Findings {
		hit := VulnHit{ID: f.ID, Aliases: f.Aliases, Digest: r.Digest, Image: r.Image, Platform: r.Platform,
			Verdict: r.Verdict, Package: f.Package, Severity: f.Severity, Fixed: f.FixedVersion,
			Suppressed: f.Suppressed != nil, Locations: f.Locations}
		v, err := json.Marshal(hit)
		if err != nil {
			return err
		}
		for _, id := range append([]string{f.ID}, f.Aliases...) {
			k := vulnKey(id, r.Digest, f.Package)
			if !add {
				if err := vb.Delete(k); err != nil {
					return err
				}
				continue
			}
			if err := vb.Put(k, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// requestPolicyKey is how a stored report with a scan request's own
// policy starts that field (omitted when empty). A JSON string cannot hold
// it unescaped, so its presence means the field.
var requestPolicyKey = []byte(`"request_policy":`)

// configured reports whether a stored report was assessed with the
// configured policy alone. Only such reports are a digest's latest: a
// request's policy (which may ignore everything) gives a report of its
// own, kept beside them, never in their place.
func configured(v []byte) bool { return !bytes.Contains(v, requestPolicyKey) }

// latestReport returns the newest stored report of digest in tx assessed
// with the configured policy, or nil.
func latestReport(tx *bolt.Tx, digest string) (*report.Report, error) {
	prefix := reportPrefix(digest)
	c := tx.Bucket(bucketReports).Cursor()
	k, _ := c.Seek(append(bytes.Clone(prefix), 0xff))
	var v []byte
	if k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
		if !configured(v) {
			continue
		}
		var r report.Report
		if err := json.Unmarshal(v, &r); err != nil {
			return nil, fmt.Errorf("decode report %q: %w", k, err)
		}
		return &r, nil
	}
	return nil, nil
}

// reindex rebuilds both indexes from the latest reports (a store written
// before the indexes existed).
func reindex(tx *bolt.Tx) error {
	for _, b := range [][]byte{bucketPkgIndex, bucketVulnIndex} {
		if tx.Bucket(b) != nil {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		if _, err := tx.CreateBucket(b); err != nil {
			return err
		}
	}
	return eachLatest(tx, func(r *report.Report) error { return index(tx, r, true) })
}

// eachLatest calls fn with the latest report (configured policy) of
// every digest.
func eachLatest(tx *bolt.Tx, fn func(*report.Report) error) error {
	c := tx.Bucket(bucketReports).Cursor()
	var lastK, lastV []byte
	flush := func() error {
		if lastK == nil {
			return nil
		}
		var r report.Report
		if err := json.Unmarshal(lastV, &r); err != nil {
			return fmt.Errorf("decode report %q: %w", lastK, err)
		}
		return fn(&r)
	}
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if !configured(v) {
			continue
		}
		if lastK != nil && !bytes.Equal(digestOf(k), digestOf(lastK)) {
			if err := flush(); err != nil {
				return err
			}
		}
		lastK, lastV = k, v
	}
	return flush()
}

func digestOf(k []byte) []byte {
	if i := bytes.IndexByte(k, 0); i >= 0 {
		return k[:i]
	}
	return k
}

// LatestReports calls fn with the latest report of every digest, in digest
// order, outside any transaction (fn may store reports). It reads the
// digests first, then each report, so it sees reports stored meanwhile.
func (s *Store) LatestReports(ctx context.Context, fn func(*report.Report) error) error {
	var digests []string
	err := s.db.View(func(tx *bolt.Tx) error {
		return eachLatest(tx, func(r *report.Report) error {
			digests = append(digests, r.Digest)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("store: latest reports: %w", err)
	}
	for _, d := range digests {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := s.LatestReport(ctx, d)
		if err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// PutRematch stores r, a re-matched copy of the digest's latest report, as
// the digest's newest report. It is refused (ErrConflict) when another
// report was stored for the digest since prev was read, so a scan that
// finished meanwhile is never hidden behind an older inventory.
func (s *Store) PutRematch(ctx context.Context, prev, r *report.Report) error {
	id, err := s.newID(s.now())
	if err != nil {
		return err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		cur, err := latestReport(tx, r.Digest)
		if err != nil {
			return err
		}
		if cur == nil || cur.ScanID != prev.ScanID || !cur.MatchedAt.Equal(prev.MatchedAt) {
			return fmt.Errorf("the latest report of %s changed while re-matching: %w", r.Digest, errdefs.ErrConflict)
		}
		if _, err := putReport(tx, id, r); err != nil {
			return err
		}
		if r.Verdict == prev.Verdict {
			return nil
		}
		return s.recordEvent(tx, reportEvent(EventVerdictChanged, s.now().UTC(), r.Image, r.ScanID, r, prev.Verdict))
	})
	if err != nil {
		return fmt.Errorf("store: rematch: %w", err)
	}
	return nil
}

// PackageImages returns the images whose latest report holds the package.
// ecosystem may be "" (any) or a bare ecosystem ("Debian") that matches
// every release ("Debian:12").
func (s *Store) PackageImages(ctx context.Context, ecosystem, name string) ([]PackageHit, error) {
	var out []PackageHit
	prefixes := map[string]bool{}
	if ecosystem != "" {
		prefixes[match.NormalizeName(ecosystem, name)] = true
	} else {
		prefixes[name] = true
		prefixes[match.NormalizeName("PyPI", name)] = true
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketPkgIndex).Cursor()
		for p := range prefixes {
			prefix := []byte(p + "\x00")
			for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
				var h PackageHit
				if err := json.Unmarshal(v, &h); err != nil {
					return err
				}
				if ecosystem != "" && h.Ecosystem != ecosystem && !strings.HasPrefix(h.Ecosystem, ecosystem+":") {
					continue
				}
				if ecosystem == "" && h.Ecosystem != "PyPI" && h.Name != name {
					continue
				}
				out = append(out, h)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: package index: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Image != out[j].Image {
			return out[i].Image < out[j].Image
		}
		return out[i].Digest < out[j].Digest
	})
	return out, nil
}

// VulnerabilityImages returns the packages of images (latest reports) that
// an advisory affects, found by its id or any alias, case-insensitively.
func (s *Store) VulnerabilityImages(ctx context.Context, id string) ([]VulnHit, error) {
	var out []VulnHit
	prefix := []byte(strings.ToUpper(id) + "\x00")
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketVulnIndex).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var h VulnHit
			if err := json.Unmarshal(v, &h); err != nil {
				return err
			}
			out = append(out, h)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: vulnerability index: %w", err)
	}
	return out, nil
}

// Ecosystems lists the ecosystems of the packages of the images' latest
// reports (the vulnerability data the images seen need).
func (s *Store) Ecosystems(ctx context.Context) ([]string, error) {
	seen := map[string]bool{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPkgIndex).ForEach(func(k, _ []byte) error {
			parts := bytes.SplitN(k, []byte{0}, 3)
			if len(parts) == 3 && len(parts[1]) > 0 {
				seen[string(parts[1])] = true
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: ecosystems: %w", err)
	}
	out := slices.Sorted(maps.Keys(seen))
	return out, nil
}
