package vulndb

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"

	"github.com/assayhq/assay/daemon/errdefs"
)

// applyRequest is one verified batch to write.
type applyRequest struct {
	source string
	kind   string // KindImport merges; KindScheduled replaces the source's set
	url    string // scheduled: the configured URL or path
	force  bool   // scheduled: accept shrinking below half
	batch  *batch
	// setValidators, if set, records the validators (ETag...) of the
	// applied version, in the same transaction.
	setValidators func(*SourceInfo)
}

// apply writes a verified batch in one transaction: any error, including
// ctx being cancelled, rolls the whole batch back.
func (db *DB) apply(ctx context.Context, req applyRequest) (ImportResult, error) {
	res := req.batch.result(req.source)
	recs := req.batch.sorted()
	now := db.now().UTC()
	var out ImportResult
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		out = res
		w, err := newWriter(tx)
		if err != nil {
			return err
		}
		src, existed, err := w.source(req.source)
		if err != nil {
			return err
		}
		switch {
		case !existed:
			src.Kind, src.URL = req.kind, req.url
		case src.Kind != req.kind:
			return fmt.Errorf("source %q is a %s source, not %s: %w", req.source, src.Kind, req.kind, errdefs.ErrConflict)
		}
		replace := req.kind == KindScheduled
		if replace && !req.force && src.Records > 0 && len(recs)*2 < src.Records {
			return fmt.Errorf("the new version of source %q has %d records, fewer than half of the %d it has now; refusing it (force the update to accept it): %w",
				req.source, len(recs), src.Records, errdefs.ErrConflict)
		}
		for i, r := range recs {
			if i%64 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if db.applyHook != nil {
				db.applyHook(i)
			}
			switch c, err := w.put(req.source, req.kind, r); {
			case err != nil:
				return fmt.Errorf("write %s: %w", r.id, err)
			case c == added:
				out.Added++
			case c == updated:
				out.Updated++
			case c == keptScheduled:
				out.KeptScheduled++
			default:
				out.Unchanged++
			}
		}
		if replace {
			keep := make(map[string]bool, len(recs))
			for _, r := range recs {
				keep[r.id] = true
			}
			n, err := w.removeMissing(ctx, req.source, keep)
			if err != nil {
				return err
			}
			out.Removed = n
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if out.Changed() {
			w.st.UpdatedAt = now
			src.LastChange = now
		}
		src.LastAttempt, src.LastSuccess, src.LastError = now, now, ""
		src.Invalid = req.batch.invalid
		if req.setValidators != nil {
			req.setValidators(src)
		}
		return w.flush()
	})
	if err != nil {
		return res, err
	}
	return out, nil
}

type change int

const (
	unchanged change = iota
	added
	updated
	keptScheduled // an import's record that a scheduled source owns
)

// writer applies changes inside one write transaction, keeping the
// counters (stats, per-ecosystem, per-source) in memory until flush.
type writer struct {
	tx                                       *bolt.Tx
	records, recMeta, pkgs, aliases, srcRecs *bolt.Bucket
	st                                       stats
	eco                                      map[string]int
	ecoDirty                                 map[string]bool
	sources                                  map[string]*SourceInfo
}

func newWriter(tx *bolt.Tx) (*writer, error) {
	st, err := readStats(tx)
	if err != nil {
		return nil, err
	}
	eco, err := readEcosystems(tx)
	if err != nil {
		return nil, err
	}
	return &writer{
		tx:       tx,
		records:  tx.Bucket(bucketRecords),
		recMeta:  tx.Bucket(bucketRecordMeta),
		pkgs:     tx.Bucket(bucketPackages),
		aliases:  tx.Bucket(bucketAliases),
		srcRecs:  tx.Bucket(bucketSourceRecs),
		st:       st,
		eco:      eco,
		ecoDirty: map[string]bool{},
		sources:  map[string]*SourceInfo{},
	}, nil
}

// source returns the cached, mutable info of a source, creating it.
func (w *writer) source(name string) (*SourceInfo, bool, error) {
	if s, ok := w.sources[name]; ok {
		return s, true, nil
	}
	s := &SourceInfo{Name: name}
	existed := false
	if v := w.tx.Bucket(bucketSources).Get([]byte(name)); v != nil {
		if err := json.Unmarshal(v, s); err != nil {
			return nil, false, fmt.Errorf("source %q: %w", name, err)
		}
		existed = true
	}
	w.sources[name] = s
	return s, existed, nil
}

func (w *writer) getMeta(id []byte) (*recordMeta, error) {
	v := w.recMeta.Get(id)
	if v == nil {
		return nil, nil
	}
	m := &recordMeta{}
	if err := json.Unmarshal(v, m); err != nil {
		return nil, fmt.Errorf("record %s metadata: %w", id, err)
	}
	return m, nil
}

// put stores r as owned by source, of kind. An import never takes a
// record a scheduled source owns: a record uploaded as withdrawn would
// otherwise hide the advisory, and the source's next conditional fetch
// (304) would never bring it back.
func (w *writer) put(source, kind string, r *record) (change, error) {
	id := []byte(r.id)
	old := w.records.Get(id)
	om, err := w.getMeta(id)
	if err != nil {
		return 0, err
	}
	if om != nil && om.Source != source && kind != KindScheduled {
		owner, _, err := w.source(om.Source)
		if err != nil {
			return 0, err
		}
		if owner.Kind == KindScheduled {
			return keptScheduled, nil
		}
	}
	same := old != nil && bytes.Equal(old, r.raw)
	if same && om != nil && om.Source == source {
		return unchanged, nil
	}
	if om != nil {
		if err := w.unindex(id, om); err != nil {
			return 0, err
		}
	}
	if om == nil || om.Source != source {
		// The last writer owns the record.
		if om != nil {
			if err := w.srcRecs.Delete(joinKey(om.Source, r.id)); err != nil {
				return 0, err
			}
			prev, _, err := w.source(om.Source)
			if err != nil {
				return 0, err
			}
			prev.Records--
		}
		if err := w.srcRecs.Put(joinKey(source, r.id), []byte{}); err != nil {
			return 0, err
		}
		s, _, err := w.source(source)
		if err != nil {
			return 0, err
		}
		s.Records++
	}
	if old == nil {
		w.st.Records++
	}
	if !same {
		if err := w.records.Put(id, r.raw); err != nil {
			return 0, err
		}
	}
	nm := &recordMeta{Source: source, Withdrawn: r.withdrawn, Packages: r.packages, Aliases: r.aliases}
	v, err := json.Marshal(nm)
	if err != nil {
		return 0, err
	}
	if err := w.recMeta.Put(id, v); err != nil {
		return 0, err
	}
	if err := w.index(id, nm); err != nil {
		return 0, err
	}
	switch {
	case old == nil:
		return added, nil
	case same:
		return unchanged, nil // only the owner changed
	default:
		return updated, nil
	}
}

func (w *writer) bumpEcosystems(m *recordMeta, d int) {
	seen := map[string]bool{}
	for _, p := range m.Packages {
		if seen[p.Ecosystem] {
			continue
		}
		seen[p.Ecosystem] = true
		w.eco[p.Ecosystem] += d
		w.ecoDirty[p.Ecosystem] = true
	}
}

func (w *writer) index(id []byte, m *recordMeta) error {
	for _, a := range m.Aliases {
		if err := w.aliases.Put(joinKey(a, string(id)), []byte{}); err != nil {
			return err
		}
	}
	if m.Withdrawn {
		w.st.Withdrawn++
		return nil
	}
	for _, p := range m.Packages {
		if err := w.pkgs.Put(append(pkgPrefix(p.Ecosystem, p.Name), id...), []byte{}); err != nil {
			return err
		}
	}
	w.bumpEcosystems(m, +1)
	return nil
}

func (w *writer) unindex(id []byte, m *recordMeta) error {
	for _, a := range m.Aliases {
		if err := w.aliases.Delete(joinKey(a, string(id))); err != nil {
			return err
		}
	}
	if m.Withdrawn {
		w.st.Withdrawn--
		return nil
	}
	for _, p := range m.Packages {
		if err := w.pkgs.Delete(append(pkgPrefix(p.Ecosystem, p.Name), id...)); err != nil {
			return err
		}
	}
	w.bumpEcosystems(m, -1)
	return nil
}

// removeMissing deletes the records source owns that keep does not hold.
func (w *writer) removeMissing(ctx context.Context, source string, keep map[string]bool) (int, error) {
	ids, err := prefixIDs(ctx, w.srcRecs, joinKey(source, ""))
	if err != nil {
		return 0, err
	}
	s, _, err := w.source(source)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		if keep[id] {
			continue
		}
		if n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
		}
		bid := []byte(id)
		m, err := w.getMeta(bid)
		if err != nil {
			return 0, err
		}
		if m != nil {
			if err := w.unindex(bid, m); err != nil {
				return 0, err
			}
		}
		if w.records.Get(bid) != nil {
			w.st.Records--
		}
		for _, del := range []func() error{
			func() error { return w.records.Delete(bid) },
			func() error { return w.recMeta.Delete(bid) },
			func() error { return w.srcRecs.Delete(joinKey(source, id)) },
		} {
			if err := del(); err != nil {
				return 0, err
			}
		}
		s.Records--
		n++
	}
	return n, nil
}

// flush writes the counters.
func (w *writer) flush() error {
	v, err := json.Marshal(w.st)
	if err != nil {
		return err
	}
	if err := w.tx.Bucket(bucketMeta).Put([]byte("stats"), v); err != nil {
		return err
	}
	eb := w.tx.Bucket(bucketEcosystems)
	for e := range w.ecoDirty {
		if n := w.eco[e]; n > 0 {
			err = eb.Put([]byte(e), []byte(strconv.Itoa(n)))
		} else {
			err = eb.Delete([]byte(e))
		}
		if err != nil {
			return err
		}
	}
	sb := w.tx.Bucket(bucketSources)
	for name, s := range w.sources {
		v, err := json.Marshal(s)
		if err != nil {
			return err
		}
		if err := sb.Put([]byte(name), v); err != nil {
			return err
		}
	}
	return nil
}
