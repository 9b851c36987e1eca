package rpm

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	if err != nil || len(recs) != 1 || recs[0].Name != "libuuid" || recs[0].Epoch != nil {
		t.Errorf("by path: %+v, %v", recs, err)
	}
	_, err = readDatabase(t.Context(), nil, filepath.Join(t.TempDir(), "none"), time.Minute)
	if !errors.Is(err, errRejected) {
		t.Errorf("a missing file: %v, want errRejected", err)
	}
}
