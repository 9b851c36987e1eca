package vulndb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/assayhq/assay/daemon/match"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/ossf/osv-schema/bindings/go/osvschema"
	bolt "go.etcd.io/bbolt"

	"github.com/assayhq/assay/daemon/errdefs"
)

// Buckets. Index keys join their parts with a NUL byte, which no id,
// ecosystem, name, alias or source may contain, so a prefix scan over
// "ecosystem\x00name\x00" finds exactly that package's records.
var (
	bucketMeta       = []byte("meta")       // "schema", "stats" -> stats JSON
	bucketRecords    = []byte("records")    // id -> the record's JSON as received, compacted
	bucketRecordMeta = []byte("recordmeta") // id -> recordMeta JSON: owning source, index entries
	bucketPackages   = []byte("packages")   // ecosystem 0 name 0 id -> empty (withdrawn records absent)
	bucketAliases    = []byte("aliases")    // alias 0 id -> empty
	bucketSources    = []byte("sources")    // source name -> SourceInfo JSON
	bucketSourceRecs = []byte("sourcerecs") // source 0 id -> empty: the records a source owns
	bucketEcosystems = []byte("ecosystems") // ecosystem -> decimal count of non-withdrawn records
)

var allBuckets = [][]byte{bucketMeta, bucketRecords, bucketRecordMeta, bucketPackages, bucketAliases, bucketSources, bucketSourceRecs, bucketEcosystems}

const schemaVersion = "1"

// DefaultImportSource is the source Import merges into when none is named.
const DefaultImportSource = "import"

// Source kinds.
const (
	// KindScheduled is a configured source (URL or path) whose every new
	// version replaces its set of records.
	KindScheduled = "scheduled"
	// KindImport is a source that offline imports merge into.
	KindImport = "import"
)

// Defaults of Options.
const (
	DefaultMaxArchiveBytes    = 2 << 30
	DefaultMaxRecordBytes     = 16 << 20
	DefaultMaxTotalBytes      = 4 << 30
	DefaultMaxInvalidFraction = 0.01
	DefaultOpenTimeout        = time.Second
)

// Options bound what the database accepts. Zero values take the defaults.
type Options struct {
	// MaxArchiveBytes caps one zip archive (imported, uploaded or
	// downloaded), compressed.
	MaxArchiveBytes int64
	// MaxRecordBytes caps one record, uncompressed. Larger records, zip
	// entries included, are refused unread and counted invalid.
	MaxRecordBytes int64
	// MaxTotalBytes caps the uncompressed records of one import or update,
	// which are held in memory until applied.
	MaxTotalBytes int64
	// MaxInvalidFraction is the fraction of invalid records (not JSON, not
	// OSV, no id, too large) above which a whole import or update is
	// refused; below it they are skipped and counted. Negative: none
	// tolerated.
	MaxInvalidFraction float64
	// OpenTimeout is how long Open waits for another process's lock.
	OpenTimeout time.Duration
	// TempDir receives downloads; default: the database file's directory.
	TempDir string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults(path string) Options {
	if o.MaxArchiveBytes <= 0 {
		o.MaxArchiveBytes = DefaultMaxArchiveBytes
	}
	if o.MaxRecordBytes <= 0 {
		o.MaxRecordBytes = DefaultMaxRecordBytes
	}
	if o.MaxTotalBytes <= 0 {
		o.MaxTotalBytes = DefaultMaxTotalBytes
	}
	switch {
	case o.MaxInvalidFraction == 0:
		o.MaxInvalidFraction = DefaultMaxInvalidFraction
	case o.MaxInvalidFraction < 0:
		o.MaxInvalidFraction = 0
	}
	if o.OpenTimeout <= 0 {
		o.OpenTimeout = DefaultOpenTimeout
	}
	if o.TempDir == "" {
		o.TempDir = filepath.Dir(path)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

func (o Options) limits() limits {
	return limits{
		maxArchive:      o.MaxArchiveBytes,
		maxRecord:       o.MaxRecordBytes,
		maxTotal:        o.MaxTotalBytes,
		invalidFraction: o.MaxInvalidFraction,
	}
}

// DB is the OSV database. It is safe for concurrent use; writers are
// serialized by bbolt.
type DB struct {
	bolt *bolt.DB
	path string
	opts Options
	log  *slog.Logger
	now  func() time.Time

	// applyHook, when set (tests), is called inside the write transaction
	// before the i-th record of a batch is written.
	applyHook func(i int)
}

// Info is the database's state, for `assay db info`, /v1/health and
// reports.
type Info struct {
	// UpdatedAt is when the set of records last changed.
	UpdatedAt time.Time `json:"updated_at"`
	// Records counts every stored record, withdrawn ones included.
	Records int `json:"records"`
	// Withdrawn counts stored withdrawn records (never matched).
	Withdrawn int `json:"withdrawn"`
	// Ecosystems counts non-withdrawn records per affected ecosystem, as
	// spelled in the records ("Debian:12", "PyPI"); a record affecting two
	// ecosystems counts in both.
	Ecosystems map[string]int `json:"ecosystems"`
	Sources    []SourceInfo   `json:"sources"`
	// SizeBytes is the database file's size.
	SizeBytes int64 `json:"size_bytes"`
}

// SourceInfo is what the database knows about one source.
type SourceInfo struct {
	Name string `json:"name"`
	// Kind is KindScheduled or KindImport.
	Kind string `json:"kind"`
	// URL is a scheduled source's URL or path.
	URL string `json:"url,omitempty"`
	// ETag and LastModified are the validators of the version applied
	// last (for a local source, ETag is its size and modification time).
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	// LastAttempt is the last fetch or import; LastSuccess the last one
	// that ended well (applied, or not modified); LastChange the last that
	// changed records.
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastChange  time.Time `json:"last_change,omitzero"`
	// LastError is the error of the last attempt, empty when it succeeded.
	LastError string `json:"last_error,omitempty"`
	// Records counts the records this source owns now.
	Records int `json:"records"`
	// Invalid counts the invalid records skipped by the version applied
	// last.
	Invalid int `json:"invalid,omitempty"`
}

// ImportResult says what one import or update did.
type ImportResult struct {
	Source string `json:"source"`
	// Records is the number of distinct valid records read.
	Records   int `json:"records"`
	Added     int `json:"added"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
	// Removed counts records dropped because a new version of a scheduled
	// source no longer has them.
	Removed int `json:"removed"`
	// Withdrawn counts withdrawn records read (stored, never matched).
	Withdrawn int `json:"withdrawn"`
	// Invalid counts records skipped as invalid; Errors holds the first
	// few reasons.
	Invalid    int `json:"invalid"`
	Duplicates int `json:"duplicates,omitempty"`
	// KeptScheduled counts records of an import that a scheduled source
	// owns: left as the source has them (an import never shadows a
	// configured source; the source's next version would not restore it).
	KeptScheduled int      `json:"kept_scheduled,omitempty"`
	Errors        []string `json:"errors,omitempty"`
	// NotModified: the source had not changed since the last update.
	NotModified bool          `json:"not_modified,omitempty"`
	Duration    time.Duration `json:"duration_ns"`
}

// Changed says whether the set of records changed.
func (r ImportResult) Changed() bool { return r.Added+r.Updated+r.Removed > 0 }

// stats is stored under meta "stats".
type stats struct {
	UpdatedAt time.Time `json:"updated_at"`
	Records   int       `json:"records"`
	Withdrawn int       `json:"withdrawn"`
}

// recordMeta is stored per record: who owns it and which index entries it
// has, so that replacing or removing it needs no parsing.
type recordMeta struct {
	Source    string   `json:"s"`
	Withdrawn bool     `json:"w,omitempty"`
	Packages  []pkgKey `json:"p,omitempty"`
	Aliases   []string `json:"a,omitempty"`
}

// Open opens (creating if needed) the database file at path. It fails
// within opts.OpenTimeout when another process holds the file.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults(path)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("vulndb: %w", err)
	}
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.OpenTimeout, FreelistType: bolt.FreelistMapType})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("vulndb: %s is locked by another process (is another assayd or assay db command using it?): %w", path, errdefs.ErrUnavailable)
		}
		return nil, fmt.Errorf("vulndb: open %s: %w", path, err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		switch v := meta.Get([]byte("schema")); {
		case v == nil:
			return meta.Put([]byte("schema"), []byte(schemaVersion))
		case string(v) != schemaVersion:
			return fmt.Errorf("schema version %q, this assay understands %q (remove the file and import again)", v, schemaVersion)
		}
		return nil
	})
	if err != nil {
		bdb.Close()
		return nil, fmt.Errorf("vulndb: init %s: %w", path, err)
	}
	// Downloads a killed process left behind (the lock says none is
	// running now).
	if stale, _ := filepath.Glob(filepath.Join(opts.TempDir, downloadPattern)); len(stale) > 0 {
		for _, f := range stale {
			os.Remove(f)
		}
	}
	return &DB{bolt: bdb, path: path, opts: opts, log: opts.Logger, now: time.Now}, nil
}

// downloadPattern names the Updater's temporary downloads.
const downloadPattern = ".vulndb-download-*"

// Close closes the file.
func (db *DB) Close() error { return db.bolt.Close() }

// Path is the database file.
func (db *DB) Path() string { return db.path }

func pkgPrefix(ecosystem, name string) []byte {
	k := make([]byte, 0, len(ecosystem)+len(name)+2)
	k = append(k, ecosystem...)
	k = append(k, 0)
	k = append(k, name...)
	return append(k, 0)
}

func joinKey(a, b string) []byte {
	k := make([]byte, 0, len(a)+len(b)+1)
	k = append(k, a...)
	k = append(k, 0)
	return append(k, b...)
}

// prefixIDs returns the id parts of the keys of b that start with prefix.
func prefixIDs(ctx context.Context, b *bolt.Bucket, prefix []byte) ([]string, error) {
	var ids []string
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(ids)%256 == 255 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		ids = append(ids, string(k[len(prefix):]))
	}
	return ids, nil
}

// Query returns the non-withdrawn records that affect package name of
// ecosystem (spelled as in OSV: "Go", "PyPI", "Debian:12"; Debian and
// Ubuntu name source packages), in id order. The name is normalized with
// match.NormalizeName. No record is not an error.
func (db *DB) Query(ctx context.Context, ecosystem, name string) ([]*osvschema.Vulnerability, error) {
	var out []*osvschema.Vulnerability
	err := db.view(ctx, func(tx *bolt.Tx) error {
		ids, err := queryIDs(ctx, tx, ecosystem, name)
		if err != nil {
			return err
		}
		out, err = decodeIDs(tx, ids)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("vulndb: query %s %s: %w", ecosystem, name, err)
	}
	return out, nil
}

func (db *DB) view(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.bolt.View(fn)
}

// queryIDs is Query without decoding: the ids, in order.
func queryIDs(ctx context.Context, tx *bolt.Tx, ecosystem, name string) ([]string, error) {
	name = match.NormalizeName(ecosystem, name)
	if ecosystem == "" || name == "" || checkKeyPart("ecosystem", ecosystem) != nil || checkKeyPart("name", name) != nil {
		return nil, nil
	}
	return prefixIDs(ctx, tx.Bucket(bucketPackages), pkgPrefix(ecosystem, name))
}

func decodeIDs(tx *bolt.Tx, ids []string) ([]*osvschema.Vulnerability, error) {
	recs := tx.Bucket(bucketRecords)
	out := make([]*osvschema.Vulnerability, 0, len(ids))
	for _, id := range ids {
		raw := recs.Get([]byte(id))
		if raw == nil {
			return nil, fmt.Errorf("index names record %s, which is missing (database damaged?)", id)
		}
		v, err := decodeRecord(id, raw)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Lookup returns the records whose id is idOrAlias or that name it among
// their aliases or upstream ids (so a CVE finds every record about it), in
// id order. Withdrawn records are included: check GetWithdrawn.
func (db *DB) Lookup(ctx context.Context, idOrAlias string) ([]*osvschema.Vulnerability, error) {
	var out []*osvschema.Vulnerability
	err := db.view(ctx, func(tx *bolt.Tx) error {
		ids, err := lookupIDs(ctx, tx, idOrAlias)
		if err != nil {
			return err
		}
		out, err = decodeIDs(tx, ids)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("vulndb: lookup %s: %w", idOrAlias, err)
	}
	return out, nil
}

// lookupIDs is Lookup without decoding: the ids, in order.
func lookupIDs(ctx context.Context, tx *bolt.Tx, idOrAlias string) ([]string, error) {
	if idOrAlias == "" || checkKeyPart("id", idOrAlias) != nil {
		return nil, nil
	}
	ids, err := prefixIDs(ctx, tx.Bucket(bucketAliases), joinKey(idOrAlias, ""))
	if err != nil {
		return nil, err
	}
	if tx.Bucket(bucketRecords).Get([]byte(idOrAlias)) != nil {
		ids = append(ids, idOrAlias)
	}
	sort.Strings(ids)
	return dedupeSorted(ids), nil
}

func dedupeSorted(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// Info returns the database's state.
func (db *DB) Info(ctx context.Context) (Info, error) {
	if err := ctx.Err(); err != nil {
		return Info{}, err
	}
	var info Info
	err := db.bolt.View(func(tx *bolt.Tx) error {
		st, err := readStats(tx)
		if err != nil {
			return err
		}
		info.UpdatedAt, info.Records, info.Withdrawn = st.UpdatedAt, st.Records, st.Withdrawn
		if info.Ecosystems, err = readEcosystems(tx); err != nil {
			return err
		}
		info.Sources = []SourceInfo{}
		err = tx.Bucket(bucketSources).ForEach(func(k, v []byte) error {
			var s SourceInfo
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("source %q: %w", k, err)
			}
			info.Sources = append(info.Sources, s)
			return nil
		})
		if err != nil {
			return err
		}
		info.SizeBytes = tx.Size()
		return nil
	})
	if err != nil {
		return Info{}, fmt.Errorf("vulndb: info: %w", err)
	}
	return info, nil
}

// HasEcosystem says whether any non-withdrawn record affects ecosystem
// (spelled as in OSV). The matcher uses it to tell "no advisory" from "no
// data".
func (db *DB) HasEcosystem(ctx context.Context, ecosystem string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	var has bool
	err := db.bolt.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketEcosystems).Get([]byte(ecosystem))
		if v == nil {
			return nil
		}
		n, err := strconv.Atoi(string(v))
		if err != nil {
			return fmt.Errorf("ecosystem count %q: %w", v, err)
		}
		has = n > 0
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("vulndb: %w", err)
	}
	return has, nil
}

// Import reads OSV records from paths (directories, walked recursively for
// *.json; .json files; zip archives) and merges them by id into source
// (DefaultImportSource when empty): records of earlier imports stay. All
// of it is verified before the database is touched, then applied in one
// transaction. The caller re-matches stored inventories when
// ImportResult.Changed.
func (db *DB) Import(ctx context.Context, source string, paths ...string) (ImportResult, error) {
	start := time.Now()
	if source == "" {
		source = DefaultImportSource
	}
	if err := checkSourceName(source); err != nil {
		return ImportResult{Source: source}, fmt.Errorf("vulndb: import: %w", err)
	}
	if len(paths) == 0 {
		return ImportResult{Source: source}, fmt.Errorf("vulndb: import: no path given: %w", errdefs.ErrInvalid)
	}
	b := newBatch(db.opts.limits())
	err := b.readPaths(ctx, paths)
	return db.finishImport(ctx, start, source, b, err)
}

// ImportZip is Import of one OSV zip archive of size bytes (an upload).
func (db *DB) ImportZip(ctx context.Context, source string, r io.ReaderAt, size int64) (ImportResult, error) {
	start := time.Now()
	if source == "" {
		source = DefaultImportSource
	}
	if err := checkSourceName(source); err != nil {
		return ImportResult{Source: source}, fmt.Errorf("vulndb: import: %w", err)
	}
	b := newBatch(db.opts.limits())
	err := b.readZip(ctx, "uploaded archive", r, size)
	return db.finishImport(ctx, start, source, b, err)
}

func (db *DB) finishImport(ctx context.Context, start time.Time, source string, b *batch, readErr error) (ImportResult, error) {
	if readErr == nil {
		readErr = b.finish()
	}
	if readErr != nil {
		res := b.result(source)
		res.Duration = time.Since(start)
		return res, fmt.Errorf("vulndb: import into %q: %w", source, readErr)
	}
	res, err := db.apply(ctx, applyRequest{source: source, kind: KindImport, batch: b})
	res.Duration = time.Since(start)
	if err != nil {
		return res, fmt.Errorf("vulndb: import into %q: %w", source, err)
	}
	db.log.Info("vulndb: imported", "source", source, "records", res.Records, "added", res.Added,
		"updated", res.Updated, "unchanged", res.Unchanged, "withdrawn", res.Withdrawn, "invalid", res.Invalid,
		"duration", res.Duration)
	return res, nil
}

// RemoveSource deletes every record source owns and what the database
// knows about the source, in one transaction (for a source dropped from
// the configuration, or an import undone). Records another source owns
// stay. ImportResult.Removed counts the records deleted.
func (db *DB) RemoveSource(ctx context.Context, source string) (ImportResult, error) {
	start := time.Now()
	res := ImportResult{Source: source}
	now := db.now().UTC()
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if tx.Bucket(bucketSources).Get([]byte(source)) == nil {
			return fmt.Errorf("no source %q: %w", source, errdefs.ErrNotFound)
		}
		w, err := newWriter(tx)
		if err != nil {
			return err
		}
		if res.Removed, err = w.removeMissing(ctx, source, nil); err != nil {
			return err
		}
		if res.Removed > 0 {
			w.st.UpdatedAt = now
		}
		delete(w.sources, source)
		if err := w.flush(); err != nil {
			return err
		}
		return tx.Bucket(bucketSources).Delete([]byte(source))
	})
	res.Duration = time.Since(start)
	if err != nil {
		return res, fmt.Errorf("vulndb: remove source %q: %w", source, err)
	}
	db.log.Info("vulndb: source removed", "source", source, "removed", res.Removed)
	return res, nil
}

func checkSourceName(s string) error {
	if s == "" {
		return fmt.Errorf("empty source name: %w", errdefs.ErrInvalid)
	}
	if err := checkKeyPart("source name", s); err != nil {
		return fmt.Errorf("%w: %w", err, errdefs.ErrInvalid)
	}
	return nil
}

func (b *batch) result(source string) ImportResult {
	return ImportResult{
		Source:     source,
		Records:    len(b.recs),
		Withdrawn:  b.withdrawn(),
		Invalid:    b.invalid,
		Duplicates: b.duplicates,
		Errors:     b.errs,
	}
}

// source returns what the database knows about one source (zero and false
// when nothing).
func (db *DB) source(ctx context.Context, name string) (SourceInfo, bool, error) {
	if err := ctx.Err(); err != nil {
		return SourceInfo{}, false, err
	}
	var s SourceInfo
	var ok bool
	err := db.bolt.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketSources).Get([]byte(name))
		if v == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(v, &s)
	})
	return s, ok, err
}

// recordAttempt records a fetch that applied nothing: not modified (err
// nil) or failed. Records are not touched.
func (db *DB) recordAttempt(ctx context.Context, name, url string, attemptErr error) error {
	now := db.now().UTC()
	return db.bolt.Update(func(tx *bolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		b := tx.Bucket(bucketSources)
		s := SourceInfo{Name: name, Kind: KindScheduled, URL: url}
		if v := b.Get([]byte(name)); v != nil {
			if err := json.Unmarshal(v, &s); err != nil {
				return err
			}
		}
		s.LastAttempt = now
		if attemptErr != nil {
			s.LastError = attemptErr.Error()
		} else {
			s.LastSuccess = now
			s.LastError = ""
		}
		v, err := json.Marshal(s)
		if err != nil {
			return err
		}
		return b.Put([]byte(name), v)
	})
}

func readStats(tx *bolt.Tx) (stats, error) {
	var st stats
	if v := tx.Bucket(bucketMeta).Get([]byte("stats")); v != nil {
		if err := json.Unmarshal(v, &st); err != nil {
			return stats{}, fmt.Errorf("stats: %w", err)
		}
	}
	return st, nil
}

func readEcosystems(tx *bolt.Tx) (map[string]int, error) {
	m := map[string]int{}
	err := tx.Bucket(bucketEcosystems).ForEach(func(k, v []byte) error {
		n, err := strconv.Atoi(string(v))
		if err != nil {
			return fmt.Errorf("ecosystem %q count %q: %w", k, v, err)
		}
		m[string(k)] = n
		return nil
	})
	return m, err
}
