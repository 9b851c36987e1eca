package rpm

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	rpmdb "github.com/knqyf263/go-rpmdb/pkg"
	// The "sqlite" database/sql driver go-rpmdb opens rpmdb.sqlite with:
	// pure Go (a translation of SQLite's C), so the plugin stays static.
	_ "modernc.org/sqlite"
)

// readerArg is the first argument of the database reader process: the
// plugin (or a test binary of this package) started again as
// "<itself> readerArg <database path>".
const readerArg = "assay-rpm-read-database"

// The reader process's bounds. Its address space may grow by at most
// readerMemory past what it has when it starts (the Go runtime reserves
// about 1 GiB of address space it does not use), so that a database that
// makes go-rpmdb allocate without end fails the reader ("fatal error:
// runtime: out of memory") before the sandbox's memory limit stops the
// whole plugin. A database of 33 MB with 450 packages (CentOS 7) takes
// about 100 MiB.
const (
	readerMemory      = 384 << 20
	readerMemoryLimit = "256MiB" // GOMEMLIMIT: the garbage collector works harder near it
	readerProcs       = "2"      // GOMAXPROCS: few threads against the sandbox's pids limit
	maxRecordBytes    = 64 << 10 // one output line of the reader
	maxStderrBytes    = 8 << 10  // what is kept of the reader's stderr
	// settleTime bounds the wait for go-rpmdb's goroutines to end.
	settleTime = 10 * time.Second
)

// Exit statuses of the reader process.
const (
	exitOK    = 0
	exitUsage = 3
)

func init() {
	// The reader process: read one database and exit, before anything
	// else of the program runs (a plugin's main, a test binary's tests).
	if len(os.Args) == 3 && os.Args[1] == readerArg {
		os.Exit(readerMain(os.Args[2]))
	}
}

// record is one line of the reader's output (JSON): a package, or the
// last line, which says how the reading ended.
type record struct {
	Name      string `json:"n,omitempty"`
	Epoch     *int   `json:"e,omitempty"`
	Version   string `json:"v,omitempty"`
	Release   string `json:"r,omitempty"`
	Arch      string `json:"a,omitempty"`
	SourceRPM string `json:"s,omitempty"`
	// End is set on the last line of a successful reading, with the
	// number of packages sent.
	End   bool `json:"end,omitempty"`
	Count int  `json:"count,omitempty"`
	// Err is set on the last line of a failed reading: go-rpmdb's error.
	Err string `json:"err,omitempty"`
}

// readerMain is the reader process: it lists the packages of the database
// at path with go-rpmdb and writes them to stdout, one JSON record a line,
// then a last record saying how it ended. A panic in go-rpmdb's own
// goroutines, an endless loop or a runaway allocation kills only this
// process; the plugin sees it end (or ends it) and warns.
func readerMain(path string) int {
	out := bufio.NewWriter(os.Stdout)
	// go-rpmdb prints to stdout in places (ndb's "bad slot magic"):
	// keep stdout for the records.
	os.Stdout = os.Stderr
	limitAddressSpace(readerMemory)
	if path == "" {
		fmt.Fprintln(os.Stderr, "usage: "+readerArg+" <database>")
		return exitUsage
	}
	enc := json.NewEncoder(out)
	base := runtime.NumGoroutine()
	pkgs, err := listPackages(path)
	// A panic in one of go-rpmdb's goroutines runs that goroutine's
	// deferred close of its channel before it ends the process: the
	// listing then looks complete (and may be empty). So success is only
	// told once go-rpmdb's goroutines are gone; a panicking one never
	// goes, and ends the process first.
	if err == nil && !settled(base, settleTime) {
		err = errors.New("go-rpmdb's goroutines did not end")
	}
	if err == nil {
		err = checkCount(path, len(pkgs))
	}
	if err != nil {
		_ = enc.Encode(record{Err: err.Error()})
	} else {
		for _, p := range pkgs {
			_ = enc.Encode(record{Name: clip(p.Name), Epoch: p.Epoch, Version: clip(p.Version), Release: clip(p.Release), Arch: clip(p.Arch), SourceRPM: clip(p.SourceRpm)})
		}
		_ = enc.Encode(record{End: true, Count: len(pkgs)})
	}
	if err := out.Flush(); err != nil {
		return 1
	}
	return exitOK
}

// clip cuts s to one byte more than a valid field may have: the plugin
// then skips the package as malformed, and one absurd header does not
// make a line too long for the protocol, which would cost the whole
// database.
func clip(s string) string { return s[:min(len(s), maxFieldLen+1)] }

// settled waits until no more than base goroutines run, at most for d.
func settled(base int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// limitAddressSpace lets the process's address space grow by at most
// budget bytes past its size now (VmSize), unless the race detector, whose
// shadow memory is terabytes of address space, is on.
func limitAddressSpace(budget uint64) {
	if raceEnabled {
		return
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return
	}
	for line := range strings.Lines(string(status)) {
		v, ok := strings.CutPrefix(line, "VmSize:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return
		}
		lim := syscall.Rlimit{Cur: kb<<10 + budget, Max: kb<<10 + budget}
		var cur syscall.Rlimit
		if syscall.Getrlimit(syscall.RLIMIT_AS, &cur) == nil && cur.Max < lim.Max {
			return // already tighter
		}
		_ = syscall.Setrlimit(syscall.RLIMIT_AS, &lim)
		return
	}
}

// checkCount checks, for a SQLite database, that go-rpmdb listed every
// row of the Packages table: it stops without an error where SQLite stops
// reading a damaged database (it never looks at the rows' error), so a
// truncated database would pass for a smaller one.
func checkCount(path string, listed int) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	var magic [16]byte
	_, err = io.ReadFull(f, magic[:])
	f.Close()
	if err != nil || string(magic[:]) != "SQLite format 3\x00" {
		return nil
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		return err
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM Packages").Scan(&n); err != nil {
		return fmt.Errorf("counting the packages: %w", err)
	}
	if n != listed {
		return fmt.Errorf("go-rpmdb listed %d of %d packages", listed, n)
	}
	return nil
}

// listPackages is go-rpmdb's reading of the database at path. A panic of
// go-rpmdb in this goroutine (its header parser) is an error; a panic in
// the goroutines it starts cannot be recovered and ends the process.
func listPackages(path string) (pkgs []*rpmdb.PackageInfo, err error) {
	defer func() {
		if r := recover(); r != nil {
			pkgs, err = nil, fmt.Errorf("go-rpmdb panicked: %v", r)
		}
	}()
	db, err := rpmdb.Open(path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return db.ListPackages()
}

// Why a reading failed, as readDatabase's errors tell it (wrapped with
// the details).
var (
	// errRejected: go-rpmdb read the file and refused it.
	errRejected = errors.New("go-rpmdb could not read it")
	// errCrashed: the reader process died (a panic in go-rpmdb, out of
	// memory) or said something that is not its protocol.
	errCrashed = errors.New("the reader process failed")
	// errTimeout: the reader did not finish within its time.
	errTimeout = errors.New("reading took too long")
)

// readDatabase runs the reader process on a database and returns its
// records. The database is either file, passed to the reader as its file
// descriptor 3 (the reader opens /proc/self/fd/3: nothing is copied, and
// nothing but that file is reachable), or, when file is nil, the file at
// path. The reader is this very program (/proc/self/exe), which init
// turns into the reader. It gets at most timeout; ctx ending first ends it
// too and returns ctx's error. Other errors wrap errRejected, errCrashed
// or errTimeout, and none quotes the database.
func readDatabase(ctx context.Context, file *os.File, path string, timeout time.Duration) ([]record, error) {
	if file != nil {
		path = "/proc/self/fd/3"
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(rctx, "/proc/self/exe", readerArg, path)
	cmd.Env = []string{"GOMAXPROCS=" + readerProcs, "GOMEMLIMIT=" + readerMemoryLimit, "GOTRACEBACK=single"}
	cmd.Dir = "/"
	if file != nil {
		cmd.ExtraFiles = []*os.File{file}
	}
	stderr := &headBuffer{max: maxStderrBytes}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errCrashed, err)
	}
	// Wait returns at most this long after the reader is killed, even if
	// something still holds its output open.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case rctx.Err() != nil:
			return nil, fmt.Errorf("%w: no time left to start it", errTimeout)
		}
		return nil, fmt.Errorf("%w: could not start it: %v", errCrashed, err)
	}
	recs, last, protoErr := decodeRecords(stdout)
	_, _ = io.Copy(io.Discard, stdout) // let the reader finish writing
	waitErr := cmd.Wait()
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case rctx.Err() != nil:
		return nil, fmt.Errorf("%w: gave up after %s", errTimeout, timeout.Round(10*time.Millisecond))
	case waitErr != nil:
		return nil, fmt.Errorf("%w: %v%s", errCrashed, waitErr, stderr.reason())
	case protoErr != nil:
		return nil, fmt.Errorf("%w: %v", errCrashed, protoErr)
	case last.Err != "":
		// go-rpmdb's message may hold bytes of the file ("unexpected page
		// size: 1953460082"): only the log gets it.
		slog.DebugContext(ctx, "rpm: go-rpmdb refused a database", "error", last.Err)
		return nil, errRejected
	}
	return recs, nil
}

// decodeRecords reads the reader's output: package records, then one last
// record (End or Err). A line over maxRecordBytes, one that is not a
// record, a count that does not match, or output that stops before the
// last record is an error.
func decodeRecords(r io.Reader) (pkgs []record, last record, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxRecordBytes)
	for sc.Scan() {
		var rec record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return nil, record{}, fmt.Errorf("record %d: not a record of the reader", len(pkgs)+1)
		}
		switch {
		case rec.End && rec.Err == "":
			if rec.Count != len(pkgs) {
				return nil, record{}, fmt.Errorf("the reader counted %d packages but sent %d", rec.Count, len(pkgs))
			}
			if sc.Scan() {
				return nil, record{}, errors.New("output after the last record")
			}
			return pkgs, rec, nil
		case rec.Err != "" && !rec.End:
			return nil, rec, nil
		case rec.End || rec.Count != 0:
			return nil, record{}, fmt.Errorf("record %d: not a record of the reader", len(pkgs)+1)
		}
		pkgs = append(pkgs, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, record{}, fmt.Errorf("after %d records: %w", len(pkgs), err)
	}
	return nil, record{}, fmt.Errorf("the output stopped after %d records, without a last record", len(pkgs))
}

// headBuffer keeps the first max bytes written to it.
type headBuffer struct {
	max int
	buf bytes.Buffer
}

func (h *headBuffer) Write(p []byte) (int, error) {
	if room := h.max - h.buf.Len(); room > 0 {
		h.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// reason returns ": <the first line of a Go panic or fatal error>" from
// the reader's stderr, or "". Such a line says what went wrong in the
// runtime's words ("panic: runtime error: index out of range [4096] with
// length 4096", "fatal error: runtime: out of memory"); nothing else of
// stderr is passed on.
func (h *headBuffer) reason() string {
	for line := range strings.Lines(h.buf.String()) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: ") {
			if len(line) > 200 {
				line = line[:200] + "..."
			}
			return ": " + strings.ToValidUTF8(line, "\uFFFD")
		}
	}
	return ""
}
