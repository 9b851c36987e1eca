package gobinary

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"
)

// FuzzBuildInfo feeds bytes through the stream reader, and the result
// through packages: none may panic or hang, a file without the ELF magic
// is refused at once, and every error is one of the kinds Extract tells
// apart (the reader of bytes never fails).
func FuzzBuildInfo(f *testing.F) {
	if b, err := os.ReadFile(progBin); err == nil {
		f.Add(b[:min(len(b), 64<<10)])
		if off := bytes.Index(b, buildInfoMagic); off >= 0 {
			f.Add(append(bytes.Clone(elfMagic), b[off-12:min(len(b), off+4<<10)]...))
		}
	}
	if b, err := os.ReadFile("/bin/true"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("\x7fELF"))
	f.Add(synthetic(16, inlineHeader(), append(uvarintString("go1.22.0"), uvarintString("x")...)))
	f.Fuzz(func(t *testing.T, data []byte) {
		bi, err := readBuildInfo(context.Background(), bytes.NewReader(data))
		if !bytes.HasPrefix(data, elfMagic) {
			if !errors.Is(err, errNotELF) {
				t.Fatalf("not an ELF, yet %v, %v", bi, err)
			}
			return
		}
		var ferr *formatError
		switch {
		case err == nil:
			for _, p := range packages(bi, "/x") {
				if p.Validate() != nil {
					t.Fatalf("invalid package %+v", p)
				}
			}
		case errors.Is(err, errNotGo), errors.Is(err, errPointerFormat), errors.As(err, &ferr):
		default:
			t.Fatalf("unexpected error %v", err)
		}
	})
}
