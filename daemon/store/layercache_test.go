package store

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestLayerCacheGetPutAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "layers.db")
	c, err := OpenLayerCache(path, 1<<20, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get("k"); ok {
		t.Fatal("hit in an empty cache")
	}
	if err := c.Put("k", []byte("value")); err != nil {
		t.Fatal(err)
	}
	if v, ok := c.Get("k"); !ok || string(v) != "value" {
		t.Fatalf("Get = %q, %v", v, ok)
	}
	st := c.Stats()
	if st.Entries != 1 || st.Hits != 1 || st.Misses != 1 || st.Bytes != int64(len("value")+32+1) {
		t.Errorf("stats %+v", st)
	}
	c.Close()
	c, err = OpenLayerCache(path, 1<<20, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v, ok := c.Get("k"); !ok || string(v) != "value" || c.Stats().Entries != 1 {
		t.Errorf("after reopening: %q, %v, %+v", v, ok, c.Stats())
	}
}

// A value changed on disk (bit rot, a hand edit) fails its checksum: it is
// a miss and is removed, never returned.
func TestLayerCacheCorruptEntry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "layers.db")
	c, _ := OpenLayerCache(path, 1<<20, time.Hour)
	c.Put("k", []byte(`{"items":[]}`))
	c.Put("short", []byte("x"))
	c.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLayerEntries)
		raw := bytes.Clone(b.Get([]byte("k")))
		raw[len(raw)-2] ^= 0xff
		b.Put([]byte("k"), raw)
		return b.Put([]byte("short"), []byte("tiny"))
	})
	for _, k := range []string{"k", "short"} {
		if v, ok := c.Get(k); ok {
			t.Errorf("%s: corrupt entry returned: %q", k, v)
		}
	}
	if st := c.Stats(); st.Corrupt != 2 || st.Entries != 0 || st.Bytes != 0 {
		t.Errorf("stats %+v", st)
	}
	c.Close()
}

func TestLayerCacheEvictsLeastRecentlyUsed(t *testing.T) {
	c, _ := OpenLayerCache(filepath.Join(t.TempDir(), "layers.db"), 3*(100+32+2), time.Hour)
	defer c.Close()
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	val := bytes.Repeat([]byte("v"), 100)
	for i := range 3 {
		now = now.Add(time.Second)
		c.Put(fmt.Sprint("k", i), val)
	}
	now = now.Add(time.Second)
	if _, ok := c.Get("k0"); !ok { // k0 is now the most recent
		t.Fatal("k0 missing")
	}
	now = now.Add(time.Second)
	c.Put("k3", val)
	if _, ok := c.Get("k1"); ok {
		t.Error("k1, the least recently used, was kept")
	}
	for _, k := range []string{"k0", "k2", "k3"} {
		if _, ok := c.Get(k); !ok {
			t.Errorf("%s evicted", k)
		}
	}
	if st := c.Stats(); st.Evictions != 1 || st.Entries != 3 || st.Bytes > st.MaxBytes {
		t.Errorf("stats %+v", st)
	}
	// Too large for the whole cache: not stored, nothing evicted.
	c.Put("huge", bytes.Repeat([]byte("h"), 1000))
	if st := c.Stats(); st.Entries != 3 {
		t.Errorf("after a too large value: %+v", st)
	}
}

func TestLayerCacheExpires(t *testing.T) {
	c, _ := OpenLayerCache(filepath.Join(t.TempDir(), "layers.db"), 1<<20, time.Hour)
	defer c.Close()
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	c.Put("old", []byte("a"))
	c.Put("new", []byte("b"))
	now = now.Add(59 * time.Minute)
	c.Get("new")
	now = now.Add(2 * time.Minute)
	if _, ok := c.Get("old"); ok {
		t.Error("an entry unused for 61 minutes was returned (max age 1h)")
	}
	c.Put("other", []byte("c"))
	if n, err := c.Prune(); err != nil || n != 0 {
		t.Errorf("Prune = %d, %v", n, err)
	}
	now = now.Add(2 * time.Hour)
	if n, err := c.Prune(); err != nil || n != 2 || c.Stats().Entries != 0 {
		t.Errorf("Prune after 2h = %d, %v, %+v", n, err, c.Stats())
	}
}

func TestLayerCacheOff(t *testing.T) {
	c, _ := OpenLayerCache(filepath.Join(t.TempDir(), "layers.db"), 0, time.Hour)
	defer c.Close()
	c.Put("k", []byte("v"))
	if _, ok := c.Get("k"); ok {
		t.Error("a cache of size 0 stored something")
	}
}

// A hit writes nothing to disk (a warm scan reads dozens of entries and
// must not wait for as many fsyncs); the use is kept in memory, counts
// for expiry and eviction at once, and is written with the next write or
// at Close.
func TestLayerCacheHitsDoNotWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "layers.db")
	now := time.Unix(1e9, 0)
	c, _ := OpenLayerCache(path, 1<<20, time.Hour)
	c.now = func() time.Time { return now }
	if err := c.PutAll(map[string][]byte{"a": []byte("1"), "b": []byte("2")}); err != nil {
		t.Fatal(err)
	}
	writes := writeCount(c)
	now = now.Add(50 * time.Minute)
	for range 100 {
		if _, ok := c.Get("a"); !ok {
			t.Fatal("miss")
		}
	}
	if w := writeCount(c); w != writes {
		t.Errorf("100 hits wrote %d times", w-writes)
	}
	// 70 minutes after the Put, 20 after the last use: a is alive, b,
	// never used since, expired.
	now = now.Add(20 * time.Minute)
	if _, ok := c.Get("a"); !ok {
		t.Error("a, used 20 minutes ago, expired")
	}
	if _, ok := c.Get("b"); ok {
		t.Error("b, unused for 70 minutes, did not expire (max age 1h)")
	}
	// The uses survive Close.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c, _ = OpenLayerCache(path, 1<<20, time.Hour)
	defer c.Close()
	c.now = func() time.Time { return now.Add(50 * time.Minute) }
	if _, ok := c.Get("a"); !ok {
		t.Error("after reopening, a's last use was lost")
	}
}

func writeCount(c *LayerCache) int64 {
	st := c.db.Stats()
	return st.TxStats.GetWrite()
}
