package gobinary

import (
	"bytes"
	"os"
	"testing"
)

// FuzzBuildInfo feeds bytes through the ELF check and buildinfo.Read, and
// the result through packages: none may panic or hang.
func FuzzBuildInfo(f *testing.F) {
	if b, err := os.ReadFile(progBin); err == nil {
		f.Add(b[:min(len(b), 64<<10)])
		f.Add(b)
	}
	if b, err := os.ReadFile("/bin/true"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("\x7fELF"))
	f.Fuzz(func(t *testing.T, data []byte) {
		bi, isELF, err := readBuildInfo(bytes.NewReader(data), int64(len(data)), 0)
		if !isELF && (bi != nil || err != nil) {
			t.Fatalf("not an ELF, yet %v, %v", bi, err)
		}
		if isELF != bytes.HasPrefix(data, elfMagic) {
			t.Fatalf("isELF = %v", isELF)
		}
		if err == nil && bi != nil {
			for _, p := range packages(bi, "/x") {
				if p.Validate() != nil {
					t.Fatalf("invalid package %+v", p)
				}
			}
		}
	})
}
