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
	"path"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

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
	// Package initialisation runs in every binary that links this
	// package, before main: a binary serving several extractors (or a
	// test binary of another package) becomes the reader the same way,
	// with nothing to call from its main.
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

	// FilesBad counts the package's files that are not sent because
	// their names make no absolute path (or the lists do not agree);
	// FilesDropped those not sent because the reader's limits
	// (MaxOwnedPaths, MaxOwnedBytes) were reached.
	FilesBad     int `json:"fb,omitempty"`
	FilesDropped int `json:"fd,omitempty"`
	// Files, alone on a line, continues the file list of the package
	// before it: a long list comes in several lines (at most
	// filesLineBytes of paths each). decodeRecords gathers them into the
	// package's record.
	Files []string `json:"f,omitempty"`
}

// filesLineBytes bounds the paths of one Files line: JSON at most doubles
// them (the encoder escapes only '"', '\\', U+2028 and U+2029 once control
// characters are excluded), well under maxRecordBytes.
const filesLineBytes = 16 << 10

// onlyFiles reports whether rec is a Files line and nothing else.
func (rec *record) onlyFiles() bool {
	return len(rec.Files) > 0 && rec.Name == "" && rec.Epoch == nil && rec.Version == "" && rec.Release == "" &&
		rec.Arch == "" && rec.SourceRPM == "" && !rec.End && rec.Count == 0 && rec.Err == "" &&
		rec.FilesBad == 0 && rec.FilesDropped == 0
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
	enc.SetEscapeHTML(false) // '<' as itself, not six bytes
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
		budget := fileBudget{paths: MaxOwnedPaths, bytes: MaxOwnedBytes}
		for _, p := range pkgs {
			files, bad, dropped := fileList(p, &budget)
			_ = enc.Encode(record{Name: clip(p.Name), Epoch: p.Epoch, Version: clip(p.Version), Release: clip(p.Release), Arch: clip(p.Arch), SourceRPM: clip(p.SourceRpm), FilesBad: bad, FilesDropped: dropped})
			for len(files) > 0 {
				n, size := 0, 0
				for n < len(files) && size+len(files[n]) <= filesLineBytes {
					size += len(files[n])
					n++
				}
				_ = enc.Encode(record{Files: files[:n]})
				files = files[n:]
			}
		}
		_ = enc.Encode(record{End: true, Count: len(pkgs)})
	}
	if err := out.Flush(); err != nil {
		return 1
	}
	return exitOK
}

// fileBudget is what is left of the reader's limits on file lists.
type fileBudget struct{ paths, bytes int }

// fileList returns the absolute paths of p's files that the budget
// allows, from rpm's three tags: BASENAMES, DIRINDEXES (for each base
// name, its directory's index) and DIRNAMES ("/usr/bin/"). It is
// go-rpmdb's InstalledFileNames with bounds checked (a negative index
// would panic it) and the paths checked: absolute, clean, valid UTF-8
// without control characters, at most maxPathBytes, a base name without
// "/". A package whose lists do not agree has all its files bad.
func fileList(p *rpmdb.PackageInfo, b *fileBudget) (files []string, bad, dropped int) {
	if len(p.BaseNames) == 0 {
		return nil, 0, 0
	}
	if len(p.DirIndexes) != len(p.BaseNames) {
		return nil, len(p.BaseNames), 0
	}
	for i, base := range p.BaseNames {
		idx := int(p.DirIndexes[i])
		if idx < 0 || idx >= len(p.DirNames) || base == "" || base == "." || base == ".." || strings.Contains(base, "/") {
			bad++
			continue
		}
		f := path.Join(p.DirNames[idx], base)
		if !validPath(f) {
			bad++
			continue
		}
		if b.paths <= 0 || b.bytes < len(f) {
			dropped++
			continue
		}
		b.paths--
		b.bytes -= len(f)
		files = append(files, f)
	}
	return files, bad, dropped
}

// maxPathBytes bounds one file path (Linux's PATH_MAX).
const maxPathBytes = 4096

// validPath reports whether f is an absolute, clean path of at most
// maxPathBytes of valid UTF-8 without control characters.
func validPath(f string) bool {
	if len(f) < 2 || len(f) > maxPathBytes || f[0] != '/' || path.Clean(f) != f || !utf8.ValidString(f) {
		return false
	}
	for _, r := range f {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
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
// descriptor 3 (the reader opens /proc/self/fd/3, and nothing but that
// file is reachable), or, when file is nil, the file at
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
	paths, size := 0, 0 // of the file lists
	for sc.Scan() {
		var rec record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return nil, record{}, fmt.Errorf("record %d: not a record of the reader", len(pkgs)+1)
		}
		if rec.Files != nil {
			// More than the reader sends is not its protocol: a bound
			// on what the plugin holds whatever comes.
			if !rec.onlyFiles() || len(pkgs) == 0 {
				return nil, record{}, fmt.Errorf("record %d: a file list that follows no package", len(pkgs)+1)
			}
			for _, f := range rec.Files {
				paths++
				size += len(f)
			}
			if paths > MaxOwnedPaths || size > MaxOwnedBytes {
				return nil, record{}, fmt.Errorf("record %d: more files than the reader sends", len(pkgs))
			}
			last := &pkgs[len(pkgs)-1]
			last.Files = append(last.Files, rec.Files...)
			continue
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
