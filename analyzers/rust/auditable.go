package rust

import (
	"bytes"
	"compress/zlib"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/rust-secure-code/go-rustaudit"
)

// MaxDepInfoBytes bounds cargo-auditable's dependency data in one binary,
// compressed and decompressed: real data is a few KB (about 80 bytes of
// JSON a crate).
const MaxDepInfoBytes = 4 << 20

// depSections are the ELF sections cargo-auditable writes, in the order
// go-rustaudit looks for them (.rust-deps-v0 is rust-audit 0.1's).
var depSections = []string{".dep-v0", ".rust-deps-v0"}

// elfMagic starts every ELF file.
var elfMagic = []byte("\x7fELF")

// isELF tells whether b starts with the ELF magic.
func isELF(b []byte) bool { return bytes.HasPrefix(b, elfMagic) }

// readDepInfo reads cargo-auditable's dependency data from the ELF file in
// the first size bytes of r. found is false when the ELF has no such
// section: most ELF files are not cargo-auditable binaries.
//
// go-rustaudit does the reading, but inflates the section without a
// bound (a 4 MB section can hold 4 GB of zeros), so the section is found
// and inflated here first, into io.Discard, and go-rustaudit is only
// given a binary whose data stays under MaxDepInfoBytes.
func readDepInfo(r io.ReaderAt, size int64) (info rustaudit.VersionInfo, found bool, err error) {
	sr := io.NewSectionReader(r, 0, size)
	f, err := elf.NewFile(sr)
	if err != nil {
		var ferr *elf.FormatError
		if errors.As(err, &ferr) {
			// Its message quotes header values of the file.
			return rustaudit.VersionInfo{}, false, errors.New("an ELF file whose headers are malformed")
		}
		return rustaudit.VersionInfo{}, false, fmt.Errorf("an ELF file whose headers could not be read: %w", err)
	}
	var sec *elf.Section
	for _, name := range depSections {
		if sec = f.Section(name); sec != nil {
			break
		}
	}
	if sec == nil {
		return rustaudit.VersionInfo{}, false, nil
	}
	if err := checkDepSection(sec); err != nil {
		return rustaudit.VersionInfo{}, true, err
	}
	info, err = rustaudit.GetDependencyInfo(sr)
	if err != nil {
		return rustaudit.VersionInfo{}, true, describeAuditErr(err)
	}
	return info, true, nil
}

// checkDepSection checks that the section holds zlib data that inflates
// to at most MaxDepInfoBytes bytes.
func checkDepSection(sec *elf.Section) error {
	if sec.Type == elf.SHT_NOBITS {
		return fmt.Errorf("its %s section has no data in the file", sec.Name)
	}
	if sec.Size > MaxDepInfoBytes {
		return fmt.Errorf("its %s section has %d bytes, over the limit of %d", sec.Name, sec.Size, MaxDepInfoBytes)
	}
	zr, err := zlib.NewReader(io.LimitReader(sec.Open(), MaxDepInfoBytes))
	if err != nil {
		return fmt.Errorf("its %s section is not zlib-compressed: %w", sec.Name, err)
	}
	defer zr.Close()
	n, err := io.Copy(io.Discard, io.LimitReader(zr, MaxDepInfoBytes+1))
	switch {
	case n > MaxDepInfoBytes:
		return fmt.Errorf("its %s section inflates to more than %d bytes", sec.Name, MaxDepInfoBytes)
	case err != nil:
		return fmt.Errorf("its %s section could not be inflated: %w", sec.Name, err)
	}
	return nil
}

// describeAuditErr says what go-rustaudit found wrong without quoting the
// data (its JSON errors quote a character of it).
func describeAuditErr(err error) error {
	var serr *json.SyntaxError
	var terr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &serr):
		return fmt.Errorf("its dependency data is not valid JSON (at byte %d)", serr.Offset)
	case errors.As(err, &terr):
		return fmt.Errorf("its dependency data has a %s where cargo-auditable writes a %s (field %q)", terr.Value, terr.Type, terr.Field)
	}
	return fmt.Errorf("its dependency data could not be read: %w", err)
}
