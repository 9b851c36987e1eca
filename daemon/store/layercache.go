package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The layer cache's buckets: entries holds sha256(value) || value, meta
// holds size and last use (two big-endian int64) per key.
var (
	bucketLayerEntries = []byte("entries")
	bucketLayerMeta    = []byte("meta")
)

// LayerCache is the embedded layer cache: what extractors found in a
// layer, by key (layer digest, plugin and extractor), in a bbolt file of
// its own so that its writes never wait for or delay the scan store's.
// Entries are bounded by total size (least recently used go first) and by
// age since last use. Every value carries its SHA-256: a corrupt entry is
// dropped and reported as a miss, never returned. A write is one bbolt
// transaction, so a crash leaves the entry whole or absent. It is safe
// for concurrent use.
type LayerCache struct {
	db       *bolt.DB
	maxBytes int64
	maxAge   time.Duration
	now      func() time.Time

	mu    sync.Mutex // serialises size accounting with eviction
	bytes int64
	count int

	// Uses are recorded in memory and written in batches (with the next
	// Put, Prune, Close, or every touchFlush): a hit costs no disk write.
	// A crash loses only recent uses, which makes an entry look older.
	tmu     sync.Mutex
	touched map[string]time.Time
	stop    chan struct{}
	done    chan struct{}

	hits, misses, evictions, corrupt atomic.Int64
}

// CacheStats are the layer cache's counters since start and its size.
type CacheStats struct {
	Entries   int   `json:"entries"`
	Bytes     int64 `json:"bytes"`
	MaxBytes  int64 `json:"max_bytes"`
	MaxAgeSec int64 `json:"max_age_seconds"`
	Hits      int64 `json:"hits"`
	Misses    int64 `json:"misses"`
	Evictions int64 `json:"evictions"`
	Corrupt   int64 `json:"corrupt"`
}

// OpenLayerCache opens (creating if needed) the cache file at path.
func OpenLayerCache(path string, maxBytes int64, maxAge time.Duration) (*LayerCache, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: layer cache: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("store: layer cache %s: %w", path, err)
	}
	c := &LayerCache{db: db, maxBytes: maxBytes, maxAge: maxAge, now: time.Now,
		touched: map[string]time.Time{}, stop: make(chan struct{}), done: make(chan struct{})}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketLayerEntries, bucketLayerMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketLayerMeta).ForEach(func(k, v []byte) error {
			size, _ := decodeMeta(v)
			c.bytes += size
			c.count++
			return nil
		})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: layer cache %s: %w", path, err)
	}
	go c.flusher()
	return c, nil
}

// touchFlush is how often recorded uses are written when nothing else
// writes them.
const touchFlush = 30 * time.Second

func (c *LayerCache) flusher() {
	defer close(c.done)
	t := time.NewTicker(touchFlush)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			c.tmu.Lock()
			n := len(c.touched)
			c.tmu.Unlock()
			if n == 0 {
				continue
			}
			c.mu.Lock()
			_ = c.db.Update(func(tx *bolt.Tx) error { return c.flushLocked(tx) })
			c.mu.Unlock()
		}
	}
}

// flushLocked writes the recorded uses of entries that still exist.
func (c *LayerCache) flushLocked(tx *bolt.Tx) error {
	c.tmu.Lock()
	touched := c.touched
	c.touched = map[string]time.Time{}
	c.tmu.Unlock()
	m := tx.Bucket(bucketLayerMeta)
	for k, used := range touched {
		size, old := decodeMeta(m.Get([]byte(k)))
		if size <= 0 || !used.After(old) {
			continue
		}
		if err := m.Put([]byte(k), encodeMeta(size, used)); err != nil {
			return err
		}
	}
	return nil
}

// Close writes the recorded uses and closes the file.
func (c *LayerCache) Close() error {
	close(c.stop)
	<-c.done
	c.mu.Lock()
	err := c.db.Update(func(tx *bolt.Tx) error { return c.flushLocked(tx) })
	c.mu.Unlock()
	return errors.Join(err, c.db.Close())
}

// lastUse is when key was last used: recorded in memory or on disk.
func (c *LayerCache) lastUse(key string, onDisk time.Time) time.Time {
	c.tmu.Lock()
	defer c.tmu.Unlock()
	if t, ok := c.touched[key]; ok && t.After(onDisk) {
		return t
	}
	return onDisk
}

func encodeMeta(size int64, used time.Time) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b, uint64(size))
	binary.BigEndian.PutUint64(b[8:], uint64(used.UnixNano()))
	return b
}

func decodeMeta(b []byte) (size int64, used time.Time) {
	if len(b) != 16 {
		return 0, time.Time{}
	}
	return int64(binary.BigEndian.Uint64(b)), time.Unix(0, int64(binary.BigEndian.Uint64(b[8:])))
}

// Get returns the value of key. A missing, expired or corrupt entry is a
// miss; the corrupt or expired one is removed.
func (c *LayerCache) Get(key string) ([]byte, bool) {
	var val []byte
	var bad, expired bool
	now := c.now()
	_ = c.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketLayerEntries).Get([]byte(key))
		if raw == nil {
			return nil
		}
		_, used := decodeMeta(tx.Bucket(bucketLayerMeta).Get([]byte(key)))
		used = c.lastUse(key, used)
		if c.maxAge > 0 && now.Sub(used) > c.maxAge {
			expired = true
			return nil
		}
		if len(raw) < sha256.Size {
			bad = true
			return nil
		}
		sum := sha256.Sum256(raw[sha256.Size:])
		if !bytes.Equal(sum[:], raw[:sha256.Size]) {
			bad = true
			return nil
		}
		val = bytes.Clone(raw[sha256.Size:])
		return nil
	})
	if bad || expired {
		if bad {
			c.corrupt.Add(1)
		}
		c.remove(key)
		c.misses.Add(1)
		return nil, false
	}
	if val == nil {
		c.misses.Add(1)
		return nil, false
	}
	c.hits.Add(1)
	c.tmu.Lock()
	c.touched[key] = now
	c.tmu.Unlock()
	return val, true
}

// Put stores value under key (PutAll of one entry).
func (c *LayerCache) Put(key string, value []byte) error {
	return c.PutAll(map[string][]byte{key: value})
}

// PutAll stores the entries in one transaction (all or none survive a
// crash), then evicts the least recently used entries until the cache
// fits its size. A value larger than the whole cache is not stored.
func (c *LayerCache) PutAll(entries map[string][]byte) error {
	if c.maxBytes <= 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// The sizes counted are restored if the transaction fails.
	bytesBefore, countBefore := c.bytes, c.count
	var evicted int
	err := c.db.Update(func(tx *bolt.Tx) error {
		if err := c.flushLocked(tx); err != nil {
			return err
		}
		m := tx.Bucket(bucketLayerMeta)
		now := c.now()
		for key, value := range entries {
			size := int64(len(value) + sha256.Size + len(key))
			if size > c.maxBytes {
				continue
			}
			sum := sha256.Sum256(value)
			raw := make([]byte, 0, sha256.Size+len(value))
			raw = append(append(raw, sum[:]...), value...)
			if old := m.Get([]byte(key)); old != nil {
				s, _ := decodeMeta(old)
				c.bytes -= s
				c.count--
			}
			if err := tx.Bucket(bucketLayerEntries).Put([]byte(key), raw); err != nil {
				return err
			}
			if err := m.Put([]byte(key), encodeMeta(size, now)); err != nil {
				return err
			}
			c.bytes += size
			c.count++
		}
		var err error
		evicted, err = c.evictLocked(tx, now)
		return err
	})
	if err != nil {
		c.bytes, c.count = bytesBefore, countBefore
		return fmt.Errorf("store: layer cache: %w", err)
	}
	c.evictions.Add(int64(evicted))
	return nil
}

// Prune removes expired entries and evicts until the cache fits its size;
// it returns how many entries went.
func (c *LayerCache) Prune() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int
	err := c.db.Update(func(tx *bolt.Tx) error {
		if err := c.flushLocked(tx); err != nil {
			return err
		}
		var err error
		n, err = c.evictLocked(tx, c.now())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: layer cache: %w", err)
	}
	c.evictions.Add(int64(n))
	return n, nil
}

// Clear removes every entry.
func (c *LayerCache) Clear() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.count
	c.tmu.Lock()
	c.touched = map[string]time.Time{}
	c.tmu.Unlock()
	err := c.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketLayerEntries, bucketLayerMeta} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: layer cache: %w", err)
	}
	c.bytes, c.count = 0, 0
	return n, nil
}

// evictLocked removes expired entries, then the least recently used ones
// while the cache is over its size.
func (c *LayerCache) evictLocked(tx *bolt.Tx, now time.Time) (int, error) {
	m, e := tx.Bucket(bucketLayerMeta), tx.Bucket(bucketLayerEntries)
	type rec struct {
		key  []byte
		size int64
		used time.Time
	}
	var all []rec
	n := 0
	err := m.ForEach(func(k, v []byte) error {
		size, used := decodeMeta(v)
		all = append(all, rec{bytes.Clone(k), size, used})
		return nil
	})
	if err != nil {
		return 0, err
	}
	drop := func(r rec) error {
		if err := e.Delete(r.key); err != nil {
			return err
		}
		if err := m.Delete(r.key); err != nil {
			return err
		}
		c.bytes -= r.size
		c.count--
		n++
		return nil
	}
	var keep []rec
	for _, r := range all {
		if c.maxAge > 0 && now.Sub(r.used) > c.maxAge {
			if err := drop(r); err != nil {
				return n, err
			}
			continue
		}
		keep = append(keep, r)
	}
	if c.bytes <= c.maxBytes {
		return n, nil
	}
	// Least recently used first.
	slices.SortFunc(keep, func(a, b rec) int { return a.used.Compare(b.used) })
	for _, r := range keep {
		if c.bytes <= c.maxBytes {
			break
		}
		if err := drop(r); err != nil {
			return n, err
		}
	}
	return n, nil
}

func (c *LayerCache) remove(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.db.Update(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketLayerMeta)
		if v := m.Get([]byte(key)); v != nil {
			s, _ := decodeMeta(v)
			c.bytes -= s
			c.count--
		}
		return errors.Join(m.Delete([]byte(key)), tx.Bucket(bucketLayerEntries).Delete([]byte(key)))
	})
}

// Stats returns the counters and the size.
func (c *LayerCache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CacheStats{
		Entries: c.count, Bytes: c.bytes, MaxBytes: c.maxBytes, MaxAgeSec: int64(c.maxAge / time.Second),
		Hits: c.hits.Load(), Misses: c.misses.Load(), Evictions: c.evictions.Load(), Corrupt: c.corrupt.Load(),
	}
}
