package rpm

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	rpmdb "github.com/knqyf263/go-rpmdb/pkg"
)

func TestDecodeRecords(t *testing.T) {
	long := `{"n":"` + strings.Repeat("a", maxRecordBytes) + `"}` + "\n"
	for _, tc := range []struct {
		name, in string
		pkgs     int
		err      string // "" for a success or a reader error
		readErr  string
	}{
		{"packages", `{"n":"a","v":"1","r":"1"}` + "\n" + `{"n":"b","e":2,"v":"1","r":"1","a":"x86_64","s":"b-1-1.src.rpm"}` + "\n" + `{"end":true,"count":2}` + "\n", 2, "", ""},
		{"empty database", `{"end":true}` + "\n", 0, "", ""},
		{"reader error", `{"err":"bad page"}` + "\n", 0, "", "bad page"},
		{"no last record", `{"n":"a","v":"1","r":"1"}` + "\n", 0, "without a last record", ""},
		{"nothing", "", 0, "without a last record", ""},
		{"count mismatch", `{"n":"a","v":"1","r":"1"}` + "\n" + `{"end":true,"count":3}` + "\n", 0, "counted 3 packages but sent 1", ""},
		{"after the end", `{"end":true}` + "\n" + `{"n":"a"}` + "\n", 0, "output after the last record", ""},
		{"not JSON", "bad slot magic 0\n" + `{"end":true}` + "\n", 0, "not a record", ""},
		{"end and error", `{"end":true,"err":"x"}` + "\n", 0, "not a record", ""},
		{"count without end", `{"n":"a","count":1}` + "\n", 0, "not a record", ""},
		{"line too long", long + `{"end":true,"count":1}` + "\n", 0, "token too long", ""},
		{"files", `{"n":"a","v":"1","r":"1","fb":1}` + "\n" + `{"f":["/a","/b"]}` + "\n" + `{"f":["/c"]}` + "\n" + `{"end":true,"count":1}` + "\n", 1, "", ""},
		{"files before any package", `{"f":["/a"]}` + "\n" + `{"end":true}` + "\n", 0, "follows no package", ""},
		{"files with a package", `{"n":"a","v":"1","r":"1","f":["/a"]}` + "\n" + `{"end":true,"count":1}` + "\n", 0, "follows no package", ""},
		{"an empty file list", `{"n":"a","v":"1","r":"1"}` + "\n" + `{"f":[]}` + "\n" + `{"end":true,"count":1}` + "\n", 0, "follows no package", ""},
		{"more files than the reader sends", `{"n":"a","v":"1","r":"1"}` + "\n" + strings.Repeat(`{"f":[`+strings.Repeat(`"/x",`, 9999)+`"/x"]}`+"\n", MaxOwnedPaths/10000+1) + `{"end":true,"count":1}` + "\n", 0, "more files than the reader sends", ""},
	} {
		pkgs, last, err := decodeRecords(strings.NewReader(tc.in))
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) || pkgs != nil {
				t.Errorf("%s: %d packages, %v; want error %q", tc.name, len(pkgs), err, tc.err)
			}
		case err != nil || len(pkgs) != tc.pkgs || last.Err != tc.readErr:
			t.Errorf("%s: %d packages, last %+v, %v; want %d packages, reader error %q", tc.name, len(pkgs), last, err, tc.pkgs, tc.readErr)
		}
	}
}

func TestHeadBufferReason(t *testing.T) {
	h := &headBuffer{max: 80}
	h.Write([]byte("some log\npanic: runtime error: index out of range [5] with length 4\n\ngoroutine 7 [running]:\n"))
	if got, want := h.reason(), ": panic: runtime error: index out of range [5] with length 4"; got != want {
		t.Errorf("reason = %q, want %q", got, want)
	}
	if h.buf.Len() != 80 {
		t.Errorf("kept %d bytes, want 80", h.buf.Len())
	}
	h = &headBuffer{max: 1024}
	h.Write([]byte("nothing of the runtime\n"))
	if got := h.reason(); got != "" {
		t.Errorf("reason = %q, want none", got)
	}
}

// The reader process on a real database, given as a file descriptor and
// as a path, and on a path that does not exist.
func TestReadDatabase(t *testing.T) {
	f, err := os.Open("testdata/sle15-bci/usr/lib/sysimage/rpm/Packages.db")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := readDatabase(t.Context(), f, "", time.Minute)
	if err != nil || len(recs) != 35 || recs[0].Name != "system-user-root" || recs[0].SourceRPM != "system-user-root-20190513-3.3.1.src.rpm" {
		t.Errorf("by descriptor: %d records (%+v), %v", len(recs), recs[:min(len(recs), 1)], err)
	}
	abs, err := filepath.Abs("testdata/bdb-libuuid/var/lib/rpm/Packages")
	if err != nil {
		t.Fatal(err)
	}
	recs, err = readDatabase(t.Context(), nil, abs, time.Minute)
	if err != nil || len(recs) != 1 || recs[0].Name != "libuuid" || recs[0].Epoch != nil || len(recs[0].Files) != 7 {
		t.Errorf("by path: %+v, %v", recs, err)
	}
	_, err = readDatabase(t.Context(), nil, filepath.Join(t.TempDir(), "none"), time.Minute)
	if !errors.Is(err, errRejected) {
		t.Errorf("a missing file: %v, want errRejected", err)
	}
}

// The file lists the reader sends: rpm's three tags joined as go-rpmdb
// joins them, with bounds and paths checked, within the budget.
func TestFileList(t *testing.T) {
	p := &rpmdb.PackageInfo{
		DirNames:   []string{"/usr/bin/", "/etc/", "relative/", "/usr/lib/"},
		BaseNames:  []string{"ls", "passwd", "x", "..", "a/b", "", "ok", "far", "neg", "ctl\x01", "libz.so"},
		DirIndexes: []int32{0, 1, 2, 0, 0, 0, 1, 9, -1, 3, 3},
	}
	b := fileBudget{paths: 100, bytes: 1000}
	files, bad, dropped := fileList(p, &b)
	if want := []string{"/usr/bin/ls", "/etc/passwd", "/etc/ok", "/usr/lib/libz.so"}; !slices.Equal(files, want) || bad != 7 || dropped != 0 {
		t.Errorf("files %q, %d bad, %d dropped; want %q, 7 bad", files, bad, dropped, want)
	}
	if b.paths != 96 || b.bytes != 1000-len("/usr/bin/ls/etc/passwd/etc/ok/usr/lib/libz.so") {
		t.Errorf("budget left %+v", b)
	}
	b = fileBudget{paths: 2, bytes: 1000}
	if files, bad, dropped := fileList(p, &b); len(files) != 2 || bad != 7 || dropped != 2 {
		t.Errorf("over the path budget: %q, %d bad, %d dropped", files, bad, dropped)
	}
	b = fileBudget{paths: 100, bytes: len("/usr/bin/ls") + 3}
	if files, _, dropped := fileList(p, &b); !slices.Equal(files, []string{"/usr/bin/ls"}) || dropped != 3 {
		t.Errorf("over the byte budget: %q, %d dropped", files, dropped)
	}
	p.DirIndexes = p.DirIndexes[1:]
	if files, bad, _ := fileList(p, &fileBudget{paths: 100, bytes: 1000}); files != nil || bad != len(p.BaseNames) {
		t.Errorf("lists of different lengths: %q, %d bad", files, bad)
	}
}

// The reader starts from the plugin's own binary: package rpm's init
// takes the process over before main (sdk.ServeExtractors) runs, which
// would otherwise refuse to run without the host's handshake. Any binary
// linking package rpm, one serving several extractors included, works the
// same way.
func TestReaderFromThePluginBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	bin := filepath.Join(t.TempDir(), "assay-builtin")
	build := exec.Command(gobin, "build", "-o", bin, "github.com/assayhq/assay/analyzers/cmd/assay-builtin")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	abs, err := filepath.Abs("testdata/bdb-libuuid/var/lib/rpm/Packages")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, readerArg, abs).Output()
	if err != nil {
		t.Fatalf("%s %s: %v", bin, readerArg, err)
	}
	recs, last, err := decodeRecords(bytes.NewReader(out))
	if err != nil || last.Err != "" || len(recs) != 1 || recs[0].Name != "libuuid" || !slices.Contains(recs[0].Files, "/usr/lib64/libuuid.so.1") {
		t.Errorf("records %+v, last %+v, %v", recs, last, err)
	}
	// Without the reader's arguments it is the plugin, which explains
	// itself and exits with status 1.
	if err := exec.Command(bin).Run(); err == nil {
		t.Error("the plugin ran by hand succeeded")
	}
}
