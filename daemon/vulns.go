package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/assayhq/assay/daemon/api"
	"github.com/assayhq/assay/daemon/assess"
	"github.com/assayhq/assay/daemon/config"
	"github.com/assayhq/assay/daemon/errdefs"
	"github.com/assayhq/assay/daemon/match"
	"github.com/assayhq/assay/daemon/policy"
	"github.com/assayhq/assay/daemon/report"
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
		rules, err := policy.LoadIgnoreFile(f)
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
func newAssessor(cfg *config.Config, db *vulndb.DB, pol *policy.Compiled, u *vulndb.Updater) *assess.Assessor {
	return &assess.Assessor{
		Matcher:         &match.Matcher{DB: db, Options: match.Options{MatchOSOwned: cfg.Match.OSOwnedLanguagePackages}},
		DB:              dbState{db},
		Policy:          pol,
		RequireCoverage: cfg.VulnDB.RequireCoverage,
		OSOwned:         cfg.Match.OSOwnedLanguagePackages,
		// The first image of an ecosystem waits a little for the first
		// fetch of its data, so that its report says how it went (no
		// network fails at once; a long download is matched again later).
		Need: func(ctx context.Context, ecosystems ...string) {
			if added := u.Need(ecosystems...); len(added) > 0 {
				u.AwaitFirst(ctx, 5*time.Second, added...)
			}
		},
		Unavailable: u.Unavailable,
	}
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
