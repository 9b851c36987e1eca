package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/assayhq/assay/daemon/api"
	"github.com/assayhq/assay/daemon/assess"
	"github.com/assayhq/assay/daemon/config"
	"github.com/assayhq/assay/daemon/errdefs"
	"github.com/assayhq/assay/daemon/match"
	"github.com/assayhq/assay/daemon/policy"
	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
	"github.com/assayhq/assay/daemon/store"
	"github.com/assayhq/assay/daemon/vulndb"
)

// dbState adapts the vulnerability database to assess.DB.
type dbState struct{ db *vulndb.DB }

func (d dbState) State(ctx context.Context) (report.DBInfo, error) {
	info, err := d.db.Info(ctx)
	if err != nil {
		return report.DBInfo{}, err
	}
	return report.DBInfo{UpdatedAt: info.UpdatedAt, Records: info.Records}, nil
}

func (d dbState) HasEcosystem(ctx context.Context, ecosystem string) (bool, error) {
	return d.db.HasEcosystem(ctx, ecosystem)
}

// loadPolicy builds the configured policy (the policy keys and the rules
// of policy.ignore_file) and compiles it once: a bad rule or VEX document
// stops the daemon at start, and scans do not read the documents again.
func loadPolicy(ctx context.Context, cfg *config.Config) (*policy.Compiled, error) {
	p := policy.Policy{OnlyFixed: cfg.Policy.OnlyFixed, VEX: cfg.Policy.VEX}
	if cfg.Policy.MinSeverity != "" {
		sev, err := report.ParseSeverity(cfg.Policy.MinSeverity)
		if err != nil {
			return nil, fmt.Errorf("policy.min_severity: %w", err)
		}
		p.MinSeverity = sev
	}
	if f := cfg.Policy.IgnoreFile; f != "" {
		rules, err := loadRules(f)
		if err != nil {
			return nil, fmt.Errorf("policy.ignore_file: %w", err)
		}
		p.Ignore = rules
	}
	c, err := p.Compile(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	c.Compare = match.Compare
	return c, nil
}

// newAssessor wires matching, coverage and policy.
func newAssessor(cfg *config.Config, db *vulndb.DB, pol *policy.Compiled) *assess.Assessor {
	return &assess.Assessor{
		Matcher:         &match.Matcher{DB: db, Options: match.Options{MatchOSOwned: cfg.Match.OSOwnedLanguagePackages}},
		DB:              dbState{db},
		Policy:          pol,
		RequireCoverage: cfg.VulnDB.RequireCoverage,
		OSOwned:         cfg.Match.OSOwnedLanguagePackages,
	}
}

// rematcher re-matches every stored inventory after the database changed,
// storing a new report (and publishing it) for each image whose verdict or
// findings change, like Clair's notifier.
type rematcher struct {
	st   *store.Store
	as   *assess.Assessor
	pub  interface{ Publish(scans.Event) }
	log  *slog.Logger
	kick chan struct{}
	// done is told each finished pass (tests and figures).
	done func(total, changed int, took time.Duration)
}

func newRematcher(st *store.Store, as *assess.Assessor, pub interface{ Publish(scans.Event) }, log *slog.Logger) *rematcher {
	return &rematcher{st: st, as: as, pub: pub, log: log, kick: make(chan struct{}, 1)}
}

// Kick asks for a pass; kicks during a pass make one more pass after it.
func (r *rematcher) Kick(context.Context) {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *rematcher) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
			start := time.Now()
			total, changed, err := r.pass(ctx)
			took := time.Since(start)
			if err != nil && ctx.Err() == nil {
				r.log.Error("re-matching stored inventories failed", "err", err)
			}
			r.log.Info("re-matched stored inventories after a database change", "reports", total, "changed", changed, "took", took)
			if r.done != nil {
				r.done(total, changed, took)
			}
		}
	}
}

func (r *rematcher) pass(ctx context.Context) (total, changed int, err error) {
	err = r.st.LatestReports(ctx, func(prev *report.Report) error {
		total++
		next, err := clone(prev)
		if err != nil {
			return err
		}
		if err := r.as.Assess(ctx, next); err != nil {
			r.log.Warn("re-matching a report failed", "digest", prev.Digest, "err", err)
			return nil
		}
		if !assess.Changed(prev, next) {
			return nil
		}
		next.Trigger = "rematch"
		if err := r.st.PutRematch(ctx, prev, next); err != nil {
			if errors.Is(err, errdefs.ErrConflict) {
				return nil // a scan stored a newer report meanwhile
			}
			return err
		}
		changed++
		r.log.Info("an image's findings changed with the vulnerability database", "image", next.Image, "digest", next.Digest,
			"verdict", next.Verdict, "was", prev.Verdict, "findings", next.Summary.Total(), "before", prev.Summary.Total())
		if r.pub != nil {
			r.pub.Publish(scans.Event{Type: "report", Time: time.Now().UTC(), Report: next})
		}
		return nil
	})
	return total, changed, err
}

func clone(r *report.Report) (*report.Report, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	var out report.Report
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// vulnService serves the database and cross-image routes of the API.
type vulnService struct {
	db      *vulndb.DB
	st      *store.Store
	tmpDir  string
	changed func(context.Context)
	// importing admits one upload at a time: each is spooled to tmpDir
	// and held in memory while applied.
	importing sync.Mutex
}

var _ api.VulnService = (*vulnService)(nil)

func (v *vulnService) DBInfo(ctx context.Context) (vulndb.Info, error) { return v.db.Info(ctx) }

func (v *vulnService) ImportDB(ctx context.Context, source string, body io.Reader) (vulndb.ImportResult, error) {
	if source == "" {
		source = "import"
	}
	if !v.importing.TryLock() {
		return vulndb.ImportResult{}, fmt.Errorf("import: another import is being read; retry when it is done: %w", errdefs.ErrBusy)
	}
	defer v.importing.Unlock()
	tmp, err := os.CreateTemp(v.tmpDir, "upload-*.zip")
	if err != nil {
		return vulndb.ImportResult{}, fmt.Errorf("import: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	n, err := io.Copy(tmp, body) // the API bounds the body
	if err != nil {
		return vulndb.ImportResult{}, fmt.Errorf("import: reading the upload: %w", err)
	}
	res, err := v.db.ImportZip(ctx, source, tmp, n)
	// An import holds the whole batch in memory; give it back to the
	// system now rather than keep a scan worker's peak that high.
	debug.FreeOSMemory()
	if err != nil {
		return res, fmt.Errorf("import: %w: %w", err, errdefs.ErrInvalid)
	}
	if res.Added+res.Updated+res.Removed > 0 && v.changed != nil {
		v.changed(ctx)
	}
	return res, nil
}

func (v *vulnService) Vulnerability(ctx context.Context, id string) (api.Vulnerability, error) {
	out := api.Vulnerability{ID: id, Records: []json.RawMessage{}, Affected: []store.VulnHit{}}
	recs, err := v.db.Lookup(ctx, id)
	if err != nil {
		return out, err
	}
	for _, r := range recs {
		b, err := protojson.Marshal(r)
		if err != nil {
			return out, err
		}
		out.Records = append(out.Records, b)
	}
	hits, err := v.st.VulnerabilityImages(ctx, id)
	if err != nil {
		return out, err
	}
	// A record found by alias also names its images under its own id.
	seen := map[string]bool{}
	for _, h := range hits {
		seen[h.Digest+"\x00"+h.ID+"\x00"+h.Package.Name+"\x00"+h.Package.Version] = true
	}
	for _, r := range recs {
		more, err := v.st.VulnerabilityImages(ctx, r.GetId())
		if err != nil {
			return out, err
		}
		for _, h := range more {
			k := h.Digest + "\x00" + h.ID + "\x00" + h.Package.Name + "\x00" + h.Package.Version
			if !seen[k] {
				seen[k] = true
				hits = append(hits, h)
			}
		}
	}
	if hits != nil {
		out.Affected = hits
	}
	if len(recs) == 0 && len(hits) == 0 {
		return out, fmt.Errorf("no advisory or finding with id or alias %q: %w", id, errdefs.ErrNotFound)
	}
	return out, nil
}

func (v *vulnService) Packages(ctx context.Context, ecosystem, name string) ([]store.PackageHit, error) {
	hits, err := v.st.PackageImages(ctx, ecosystem, name)
	if hits == nil {
		hits = []store.PackageHit{}
	}
	return hits, err
}

// updaterClient is the HTTP client of vulndb.sources: proxies from the
// environment, no credentials, bounded redirects.
func updaterClient() *http.Client {
	return &http.Client{
		Transport: http.DefaultTransport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			return nil
		},
	}
}

// loadRules reads policy.ignore_file: a YAML list of ignore rules (or a
// mapping with an "ignore" list), strictly: unknown fields are errors.
func loadRules(path string) ([]policy.Rule, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if m, ok := doc.(map[string]any); ok {
		if len(m) != 1 || m["ignore"] == nil {
			return nil, fmt.Errorf("%s: want a list of rules, or a mapping with only an ignore: list", path)
		}
		doc = m["ignore"]
	}
	if doc == nil {
		return nil, nil
	}
	// YAML dates (expires: 2026-12-31) decode as time.Time; rules take the
	// date or RFC 3339 text.
	if list, ok := doc.([]any); ok {
		for _, it := range list {
			if m, ok := it.(map[string]any); ok {
				if t, ok := m["expires"].(time.Time); ok {
					m["expires"] = t.Format(time.RFC3339)
				}
			}
		}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var rules []policy.Rule
	if err := dec.Decode(&rules); err != nil {
		return nil, fmt.Errorf("%s: want a list of rules with id, package, path, reason, expires: %w", path, err)
	}
	return rules, nil
}
