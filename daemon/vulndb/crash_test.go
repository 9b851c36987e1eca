package vulndb

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
)

const crashChildEnv = "ASSAY_VULNDB_CRASH_CHILD"

// TestCrashMidImport kills (SIGKILL) a process in the middle of an import's
// write transaction and checks that the database still holds exactly the
// previous state.
func TestCrashMidImport(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vulndb.db")
	db, err := Open(ctx, path, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Import(ctx, "", testdataDir("samples")); err != nil {
		t.Fatal(err)
	}
	before, _ := db.Info(ctx)
	db.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	reached := false
	for sc.Scan() {
		if sc.Text() == "in transaction" {
			reached = true
			break
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	if !reached {
		t.Fatal("the child never reached the write transaction")
	}

	db = openDB(t, path, Options{})
	after, err := db.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before.SizeBytes, after.SizeBytes = 0, 0
	if !reflect.DeepEqual(before, after) {
		t.Errorf("state after the crash:\n%+v\nwant\n%+v", after, before)
	}
	if got, _ := db.Query(ctx, "Debian:12", "perl"); len(got) != 0 {
		t.Errorf("records of the killed import visible: %v", idsOf(got))
	}
	if got, _ := db.Query(ctx, "Debian:7", "nginx"); len(got) != 1 {
		t.Errorf("previous records damaged: %v", idsOf(got))
	}
	// The database is writable again.
	if res, err := db.Import(ctx, "", testdataDir("debian")); err != nil || res.Added != 195 {
		t.Errorf("import after the crash: %+v, %v", res, err)
	}
}

// TestCrashChild is the process TestCrashMidImport kills: it stops inside
// the write transaction, half of the batch written, and waits.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		t.Skip("run by TestCrashMidImport")
	}
	db, err := Open(context.Background(), path, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	db.applyHook = func(i int) {
		if i == 100 {
			os.Stdout.WriteString("in transaction\n")
			select {} // until killed
		}
	}
	db.Import(context.Background(), "", testdataDir("debian"))
	t.Fatal("the import ended")
}
