package vulndb

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/assayhq/assay/daemon/errdefs"
	"github.com/assayhq/assay/daemon/netaddr"
)

// DefaultUpdateTimeout bounds one source's fetch and import when
// Updater.Timeout is zero.
const DefaultUpdateTimeout = 10 * time.Minute

// Updater keeps the scheduled sources current. Each source is an http(s)
// URL of an OSV zip archive (fetched with If-None-Match / If-Modified-Since),
// a file:// URL or a local path of a zip, a JSON file or a directory
// (checked by size and modification time). Each new version of a source
// replaces that source's records; a failed, invalid or suspicious version
// (no records, or fewer than half of the current ones) is refused, its
// error recorded in the source's metadata, and the old data kept.
type Updater struct {
	DB      *DB
	Sources []string
	// Interval between runs; 0 runs once at start only.
	Interval time.Duration
	// Client fetches http(s) sources; nil means http.DefaultClient. Its
	// redirects are checked (CheckRedirect): never from https to http,
	// and to plain http elsewhere than loopback only with AllowHTTP.
	Client *http.Client
	// AllowHTTP permits plain-http sources and redirects off loopback
	// (vulndb.allow_http).
	AllowHTTP bool
	// Timeout bounds one source's fetch and import (DefaultUpdateTimeout
	// when zero).
	Timeout time.Duration
	// OnChange, if set, is called after a run that changed records (the
	// daemon re-matches stored inventories then).
	OnChange func(context.Context)
	Logger   *slog.Logger
	// Needed lists the ecosystems of the images already seen (stored
	// inventories): at start, a source with EcosystemPlaceholder is
	// fetched for each of them, and then for each ecosystem Need names.
	Needed func(ctx context.Context) ([]string, error)
	// RetryMin is the wait after a source's first failed fetch, doubled
	// after each further one up to the interval (1h when Interval is 0);
	// 0 means 1m. A failing source is never retried sooner.
	RetryMin time.Duration

	mu sync.Mutex // one update at a time

	// sched is the schedule: which archives are needed, when each
	// source is next due, why the last fetch failed.
	schedMu  sync.Mutex
	needed   map[string]bool
	due      map[string]time.Time
	failures map[string]int
	lastErr  map[string]string
	tried    map[string]chan struct{} // closed after a source's first attempt
	wake     chan struct{}
}

// EcosystemPlaceholder in a source stands for an ecosystem's OSV archive
// name (the ecosystem without its release: Debian for Debian:12), as in
// the public layout https://osv-vulnerabilities.storage.googleapis.com/{ecosystem}/all.zip:
// such a source is fetched once for each ecosystem that an image needs.
const EcosystemPlaceholder = "{ecosystem}"

// IsTemplate tells a source with EcosystemPlaceholder.
func IsTemplate(source string) bool { return strings.Contains(source, EcosystemPlaceholder) }

// ArchiveName is the OSV archive name of an ecosystem: Debian for
// Debian:12, Alpine for Alpine:v3.20, Go for Go.
func ArchiveName(ecosystem string) string {
	name, _, _ := strings.Cut(ecosystem, ":")
	return strings.TrimSpace(name)
}

// expand is a template source for one archive (path-escaped in a URL).
func expand(template, archive string) string {
	if strings.Contains(template, "://") {
		archive = url.PathEscape(archive)
	}
	return strings.ReplaceAll(template, EcosystemPlaceholder, archive)
}

// Need says that an image has packages of these ecosystems: a template
// source is fetched for each archive not fetched yet, at once. It returns
// the ecosystems that were new (AwaitFirst can wait for their fetch).
func (u *Updater) Need(ecosystems ...string) (added []string) {
	if !slices.ContainsFunc(u.Sources, IsTemplate) {
		return nil
	}
	u.schedMu.Lock()
	u.initSched()
	for _, e := range ecosystems {
		if a := ArchiveName(e); a != "" && !u.needed[a] {
			u.needed[a] = true
			added = append(added, e)
		}
	}
	u.schedMu.Unlock()
	if len(added) > 0 {
		select {
		case u.wake <- struct{}{}:
		default:
		}
	}
	return added
}

// AwaitFirst waits, at most max, until the template sources of these
// ecosystems were tried once (fetched, or failed), so that a report can
// say how it went: a machine without network fails at once.
func (u *Updater) AwaitFirst(ctx context.Context, max time.Duration, ecosystems ...string) {
	var waits []chan struct{}
	u.schedMu.Lock()
	u.initSched()
	for _, e := range ecosystems {
		for _, t := range u.Sources {
			if IsTemplate(t) {
				waits = append(waits, u.triedLocked(expand(t, ArchiveName(e))))
			}
		}
	}
	u.schedMu.Unlock()
	timer := time.NewTimer(max)
	defer timer.Stop()
	for _, w := range waits {
		select {
		case <-w:
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

func (u *Updater) triedLocked(src string) chan struct{} {
	c, ok := u.tried[src]
	if !ok {
		c = make(chan struct{})
		u.tried[src] = c
	}
	return c
}

// Unavailable says why an ecosystem's data is missing: its template
// source's last fetch failed, or it was not fetched yet. "" when there is
// nothing to say (no template, or the fetch worked).
func (u *Updater) Unavailable(ecosystem string) string {
	a := ArchiveName(ecosystem)
	u.schedMu.Lock()
	defer u.schedMu.Unlock()
	for _, t := range u.Sources {
		if !IsTemplate(t) {
			continue
		}
		src := expand(t, a)
		if e, ok := u.lastErr[src]; ok && e != "" {
			return e
		}
		if _, tried := u.lastErr[src]; !tried {
			return fmt.Sprintf("%s is not fetched yet (vulndb.sources); the image is matched again when it is", src)
		}
	}
	return ""
}

func (u *Updater) initSched() {
	if u.needed == nil {
		u.needed, u.due, u.failures, u.lastErr = map[string]bool{}, map[string]time.Time{}, map[string]int{}, map[string]string{}
		u.tried = map[string]chan struct{}{}
	}
	if u.wake == nil {
		u.wake = make(chan struct{}, 1)
	}
}

// Run updates every source at once and then every Interval until ctx is
// done; a template source is expanded for the ecosystems Needed lists and
// those Need names later. A source whose fetch failed is retried with
// exponential backoff (RetryMin doubled, up to the interval). Errors are
// logged and recorded per source, never fatal.
func (u *Updater) Run(ctx context.Context) {
	log := u.logger()
	u.schedMu.Lock()
	u.initSched()
	u.schedMu.Unlock()
	if len(u.Sources) > 0 && slices.ContainsFunc(u.Sources, IsTemplate) {
		u.seedNeeded(ctx)
	}
	if removed, err := u.Prune(ctx); err != nil && ctx.Err() == nil {
		log.Warn("vulndb: removing sources no longer configured failed", "err", err)
	} else if removed > 0 && u.OnChange != nil {
		u.OnChange(ctx)
	}
	if len(u.Sources) == 0 {
		log.Info("vulndb: no sources configured; the database changes only by import")
		return
	}
	for _, t := range u.Sources {
		if IsTemplate(t) {
			log.Info("vulndb: fetching advisories per ecosystem, as images need them", "source", t, "ecosystems", u.neededList())
		}
	}
	for {
		next := u.runDue(ctx)
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), 10*time.Millisecond)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-u.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// seedNeeded adds the ecosystems of the images seen, and those of the
// template sources fetched before, to the needed archives.
func (u *Updater) seedNeeded(ctx context.Context) {
	var names []string
	if u.Needed != nil {
		eco, err := u.Needed(ctx)
		if err != nil {
			u.logger().Warn("vulndb: listing the ecosystems of the stored images failed", "err", err)
		}
		names = append(names, eco...)
	}
	if info, err := u.DB.Info(ctx); err == nil {
		for _, src := range info.Sources {
			for _, t := range u.Sources {
				if a, ok := archiveOf(t, src.Name); ok && src.Kind == KindScheduled {
					names = append(names, a)
				}
			}
		}
	}
	u.schedMu.Lock()
	for _, n := range names {
		if a := ArchiveName(n); a != "" {
			u.needed[a] = true
		}
	}
	u.schedMu.Unlock()
}

// archiveOf tells whether source is template expanded, and for which
// archive.
func archiveOf(template, source string) (string, bool) {
	if !IsTemplate(template) {
		return "", false
	}
	pre, post, _ := strings.Cut(template, EcosystemPlaceholder)
	if !strings.HasPrefix(source, pre) || !strings.HasSuffix(source, post) || len(source) <= len(pre)+len(post) {
		return "", false
	}
	a := source[len(pre) : len(source)-len(post)]
	if strings.Contains(template, "://") {
		if un, err := url.PathUnescape(a); err == nil {
			a = un
		}
	}
	if a == "" || strings.Contains(a, "/") {
		return "", false
	}
	return a, true
}

func (u *Updater) neededList() []string {
	u.schedMu.Lock()
	defer u.schedMu.Unlock()
	var out []string
	for a := range u.needed {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// runDue updates the sources that are due, then calls OnChange if any
// changed or failed for the first time, and returns when the next is due
// (zero: never).
func (u *Updater) runDue(ctx context.Context) time.Time {
	now := time.Now()
	var todo []string
	u.schedMu.Lock()
	for _, src := range u.sourcesLocked() {
		if d, ok := u.due[src]; !ok || !d.After(now) {
			todo = append(todo, src)
		}
	}
	u.schedMu.Unlock()
	changed := false
	for _, src := range todo {
		if ctx.Err() != nil {
			return time.Time{}
		}
		res, err := u.Update(ctx, src, false)
		changed = changed || res.Changed()
		u.schedMu.Lock()
		if c := u.triedLocked(src); c != nil {
			select {
			case <-c:
			default:
				close(c)
			}
		}
		if err != nil {
			u.failures[src]++
			u.due[src] = time.Now().Add(u.retryAfter(u.failures[src]))
			// The first failure changes what reports say of the data
			// ("unavailable: why" rather than "not fetched yet").
			changed = changed || u.failures[src] == 1
		} else {
			u.failures[src] = 0
			if u.Interval > 0 {
				u.due[src] = time.Now().Add(u.Interval)
			} else {
				u.due[src] = never // update_interval 0: at start only
			}
		}
		u.schedMu.Unlock()
	}
	if changed && u.OnChange != nil {
		u.OnChange(ctx)
	}
	u.schedMu.Lock()
	defer u.schedMu.Unlock()
	var next time.Time
	for _, src := range u.sourcesLocked() {
		d, ok := u.due[src]
		if !ok {
			return time.Now() // needed since: due now
		}
		if d.Before(never) && (next.IsZero() || d.Before(next)) {
			next = d
		}
	}
	return next
}

// never is when a source fetched with no update interval is due again.
var never = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// retryAfter is the wait after a source's n-th failure in a row.
func (u *Updater) retryAfter(n int) time.Duration {
	d := cmp.Or(u.RetryMin, time.Minute)
	limit := u.Interval
	if limit <= 0 {
		limit = time.Hour
	}
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, max(limit, d/2))
}

// Prune removes the scheduled sources that Sources no longer lists, with
// the records they own, and returns how many records went. Imported
// sources stay: they were not configured.
func (u *Updater) Prune(ctx context.Context) (int, error) {
	info, err := u.DB.Info(ctx)
	if err != nil {
		return 0, err
	}
	removed := 0
	var errs []error
	for _, src := range info.Sources {
		if src.Kind != KindScheduled || slices.Contains(u.Sources, src.Name) {
			continue
		}
		if slices.ContainsFunc(u.Sources, func(t string) bool { _, ok := archiveOf(t, src.Name); return ok }) {
			continue // an ecosystem's archive of a configured template
		}
		res, err := u.DB.RemoveSource(ctx, src.Name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		removed += res.Removed
		u.logger().Info("vulndb: removed a source no longer configured", "source", src.Name, "records", res.Removed)
	}
	return removed, errors.Join(errs...)
}

// UpdateOnce updates every source once, then calls OnChange if any
// changed. The error joins the sources' errors; sources that worked are
// applied regardless.
func (u *Updater) UpdateOnce(ctx context.Context) error {
	var errs []error
	changed := false
	for _, src := range u.sources() {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		res, err := u.Update(ctx, src, false)
		if err != nil {
			errs = append(errs, err)
		}
		changed = changed || res.Changed()
	}
	if changed && u.OnChange != nil {
		u.OnChange(ctx)
	}
	return errors.Join(errs...)
}

// sources are the concrete sources: the configured ones, each template
// expanded for every needed archive.
func (u *Updater) sources() []string {
	u.schedMu.Lock()
	defer u.schedMu.Unlock()
	return u.sourcesLocked()
}

func (u *Updater) sourcesLocked() []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	var archives []string
	for a := range u.needed {
		archives = append(archives, a)
	}
	sort.Strings(archives)
	for _, s := range u.Sources {
		if !IsTemplate(s) {
			add(s)
			continue
		}
		for _, a := range archives {
			add(expand(s, a))
		}
	}
	return out
}

func (u *Updater) logger() *slog.Logger {
	if u.Logger != nil {
		return u.Logger
	}
	return slog.Default()
}

// Update fetches and applies one configured source. force accepts a new
// version with fewer than half of the source's current records. It does
// not call OnChange.
func (u *Updater) Update(ctx context.Context, source string, force bool) (res ImportResult, err error) {
	if !slices.Contains(u.sources(), source) {
		return ImportResult{Source: source}, fmt.Errorf("vulndb: %q is not a configured source: %w", source, errdefs.ErrNotFound)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	log := u.logger().With("source", source)
	start := time.Now()
	timeout := u.Timeout
	if timeout <= 0 {
		timeout = DefaultUpdateTimeout
	}
	fctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	defer func() {
		// A bad source must never take the daemon down.
		if p := recover(); p != nil {
			log.Error("vulndb: update panicked", "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("vulndb: update of %s failed unexpectedly: %v", source, p)
		}
		res.Duration = time.Since(start)
		u.schedMu.Lock()
		if u.lastErr != nil {
			u.lastErr[source] = ""
			if err != nil {
				u.lastErr[source] = err.Error()
			}
		}
		u.schedMu.Unlock()
		if err != nil {
			if rerr := u.DB.recordAttempt(ctx, source, source, err); rerr != nil {
				log.Error("vulndb: cannot record the failed update", "err", rerr)
			}
			log.Warn("vulndb: update failed; keeping the previous data", "err", err, "duration", res.Duration)
			return
		}
		if res.NotModified {
			log.Debug("vulndb: source not modified", "duration", res.Duration)
			return
		}
		log.Info("vulndb: source updated", "records", res.Records, "added", res.Added, "updated", res.Updated,
			"removed", res.Removed, "unchanged", res.Unchanged, "withdrawn", res.Withdrawn, "invalid", res.Invalid,
			"duration", res.Duration)
	}()
	res, err = u.update(fctx, source, force)
	if err != nil {
		err = fmt.Errorf("vulndb: update %s: %w", source, err)
	}
	return res, err
}

func (u *Updater) update(ctx context.Context, source string, force bool) (ImportResult, error) {
	info, _, err := u.DB.source(ctx, source)
	if err != nil {
		return ImportResult{Source: source}, err
	}
	switch {
	case strings.HasPrefix(source, "http://") || strings.HasPrefix(source, "https://"):
		return u.updateHTTP(ctx, source, info, force)
	case strings.HasPrefix(source, "file://"):
		p, err := url.Parse(source)
		if err != nil || p.Path == "" || (p.Host != "" && p.Host != "localhost") {
			return ImportResult{Source: source}, fmt.Errorf("%q is not a usable file:// URL: %w", source, errdefs.ErrInvalid)
		}
		return u.updateLocal(ctx, source, p.Path, info, force)
	case strings.Contains(source, "://"):
		return ImportResult{Source: source}, fmt.Errorf("unsupported URL scheme in %q (http, https and file are): %w", source, errdefs.ErrInvalid)
	default:
		return u.updateLocal(ctx, source, source, info, force)
	}
}

// notModified records a successful check that found nothing new.
func (u *Updater) notModified(ctx context.Context, source string, info SourceInfo) (ImportResult, error) {
	if err := u.DB.recordAttempt(ctx, source, source, nil); err != nil {
		return ImportResult{Source: source}, err
	}
	return ImportResult{Source: source, NotModified: true, Records: info.Records, Unchanged: info.Records}, nil
}

func (u *Updater) updateHTTP(ctx context.Context, source string, info SourceInfo, force bool) (ImportResult, error) {
	res := ImportResult{Source: source}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, source, nil)
	if err != nil {
		return res, fmt.Errorf("%w: %w", err, errdefs.ErrInvalid)
	}
	// Validators are stored only with the version they describe, and sent
	// only while that version's records are held.
	conditional := info.Records > 0
	if conditional && info.ETag != "" {
		req.Header.Set("If-None-Match", info.ETag)
	}
	if conditional && info.LastModified != "" {
		req.Header.Set("If-Modified-Since", info.LastModified)
	}
	req.Header.Set("User-Agent", "assay-vulndb")
	if err := u.checkURL(nil, req.URL); err != nil {
		return res, fmt.Errorf("%w: %w", err, errdefs.ErrInvalid)
	}
	client := http.DefaultClient
	if u.Client != nil {
		client = u.Client
	}
	c := *client
	c.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("more than 10 redirects")
		}
		return u.checkURL(via[0].URL, r.URL)
	}
	resp, err := c.Do(req)
	if err != nil {
		return res, fmt.Errorf("fetch: %w: %w", err, errdefs.ErrUnavailable)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		return u.notModified(ctx, source, info)
	case http.StatusOK:
	default:
		return res, fmt.Errorf("fetch: the server answered %s: %w", resp.Status, errdefs.ErrUnavailable)
	}
	max := u.DB.opts.MaxArchiveBytes
	if resp.ContentLength > max {
		return res, fmt.Errorf("the archive is %d bytes, larger than the %d-byte limit: %w", resp.ContentLength, max, errdefs.ErrInvalid)
	}
	f, err := os.CreateTemp(u.DB.opts.TempDir, downloadPattern)
	if err != nil {
		return res, fmt.Errorf("create a temporary file for the download: %w", err)
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	n, err := io.Copy(f, io.LimitReader(resp.Body, max+1))
	if err != nil {
		return res, fmt.Errorf("download (%d bytes read): %w: %w", n, err, errdefs.ErrUnavailable)
	}
	if n > max {
		return res, fmt.Errorf("the archive is larger than the %d-byte limit: %w", max, errdefs.ErrInvalid)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return res, fmt.Errorf("download truncated: %d of %d bytes: %w", n, resp.ContentLength, errdefs.ErrUnavailable)
	}
	b := newBatch(u.DB.opts.limits())
	if err := b.readZip(ctx, "downloaded archive", f, n); err != nil {
		return b.result(source), err
	}
	etag, lastMod := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	return u.apply(ctx, source, b, force, etag, lastMod)
}

func (u *Updater) apply(ctx context.Context, source string, b *batch, force bool, etag, lastMod string) (ImportResult, error) {
	if err := b.finish(); err != nil {
		return b.result(source), err
	}
	return u.DB.apply(ctx, applyRequest{
		source: source, kind: KindScheduled, url: source, force: force, batch: b,
		setValidators: func(s *SourceInfo) {
			s.ETag, s.LastModified = etag, lastMod
		},
	})
}

func (u *Updater) updateLocal(ctx context.Context, source, path string, info SourceInfo, force bool) (ImportResult, error) {
	res := ImportResult{Source: source}
	fp, err := fingerprint(ctx, path)
	if err != nil {
		return res, err
	}
	if info.Records > 0 && info.ETag == fp {
		return u.notModified(ctx, source, info)
	}
	b := newBatch(u.DB.opts.limits())
	if err := b.readPaths(ctx, []string{path}); err != nil {
		return b.result(source), err
	}
	return u.apply(ctx, source, b, force, fp, "")
}

// fingerprint is a local source's "ETag": size and modification time of a
// file, or a hash of every *.json file's path, size and modification time
// under a directory.
func fingerprint(ctx context.Context, path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%w: %w", err, errdefs.ErrUnavailable)
	}
	if !fi.IsDir() {
		return fmt.Sprintf("%d-%d", fi.Size(), fi.ModTime().UnixNano()), nil
	}
	var lines []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() || !isJSONName(d.Name()) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		lines = append(lines, fmt.Sprintf("%s\x00%d\x00%d\n", p, fi.Size(), fi.ModTime().UnixNano()))
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("read directory %s: %w", path, err)
	}
	sort.Strings(lines)
	h := sha256.New()
	for _, l := range lines {
		io.WriteString(h, l)
	}
	return "dir-" + hex.EncodeToString(h.Sum(nil)), nil
}

// checkURL refuses a plain-http URL off loopback unless AllowHTTP, and
// any redirect from https to http.
func (u *Updater) checkURL(from, to *url.URL) error {
	if to.Scheme != "http" {
		return nil
	}
	if from != nil && from.Scheme == "https" {
		return fmt.Errorf("a redirect from %s to plain http (%s) is refused", from.Redacted(), to.Redacted())
	}
	if !u.AllowHTTP && !netaddr.IsLoopbackHost(to.Hostname()) {
		return fmt.Errorf("plain http to %s is refused (it can be altered on the way): use https, or set vulndb.allow_http", to.Host)
	}
	return nil
}
