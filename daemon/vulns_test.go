package daemon

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/assayhq/assay/daemon/errdefs"
	"github.com/assayhq/assay/daemon/vulndb"
)

// One upload at a time: a second one, while the first is still being
// read, is refused as busy (429), spooling nothing.
func TestOneImportAtATime(t *testing.T) {
	ctx := context.Background()
	db, err := vulndb.Open(ctx, filepath.Join(t.TempDir(), "vulndb.db"), vulndb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v := &vulnService{db: db, tmpDir: t.TempDir()}
	pr, pw := io.Pipe()
	first := make(chan error, 1)
	go func() {
		_, err := v.ImportDB(ctx, "import", pr)
		first <- err
	}()
	// The first is blocked reading its body.
	deadline := time.Now().Add(10 * time.Second)
	for v.importing.TryLock() {
		v.importing.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("the first import never started")
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := v.ImportDB(ctx, "import", io.LimitReader(nil, 0)); !errors.Is(err, errdefs.ErrBusy) {
		t.Errorf("a second import while one is read: %v, want ErrBusy", err)
	}
	pw.CloseWithError(errors.New("client went away"))
	if err := <-first; err == nil {
		t.Error("the first import, its body broken, succeeded")
	}
	// Free again.
	if _, err := v.ImportDB(ctx, "import", io.LimitReader(nil, 0)); errors.Is(err, errdefs.ErrBusy) {
		t.Error("still busy after the first import ended")
	}
}
