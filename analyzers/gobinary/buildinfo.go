package gobinary

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
)

// The build information blob the Go linker writes (cmd/link's
// Link.buildinfo, read by debug/buildinfo): a 32-byte header, 16-byte
// aligned, made of buildInfoMagic, the pointer size, a flags byte and 16
// bytes that are zero in the inline format of Go 1.18 and later (the
// version and module pointers before that). In the inline format the
// header is followed by the Go version and the module information, each a
// uvarint length and that many bytes.
var buildInfoMagic = []byte("\xff Go buildinf:")

const (
	buildInfoAlign      = 16
	buildInfoHeaderSize = 32

	ptrSizeOffset = 14
	flagsOffset   = 15

	flagsEndianMask  = 0x1
	flagsVersionMask = 0x2
	flagsVersionInl  = 0x2
)

// Bounds of the two strings. Real versions are a few dozen bytes
// ("go1.24.1 X:boringcrypto"); real module information is about 100 bytes
// a module, some tens of KB for the largest programs.
const (
	maxVersionBytes = 4 << 10
	maxModInfoBytes = 16 << 20
)

// scanChunk is how much of the file is searched at a time: the only
// buffer the scan holds.
const scanChunk = 256 << 10

// elfMagic starts every ELF file.
var elfMagic = []byte("\x7fELF")

var (
	// errNotELF: the file does not start with the ELF magic. Other
	// formats (PE, Mach-O) are not looked at: Linux images run ELF.
	errNotELF = errors.New("not an ELF file")
	// errNotGo: an ELF file without Go build information.
	errNotGo = errors.New("not a Go executable")
	// errPointerFormat: the build information of a Go toolchain older
	// than 1.18, whose strings are pointers into the data segment: they
	// need the segments' addresses, which a stream does not give.
	errPointerFormat = errors.New("build information in the pre-Go 1.18 pointer format")
)

// formatError says what is wrong with build information that was found;
// its message never quotes the file.
type formatError struct{ msg string }

func (e *formatError) Error() string { return e.msg }

// readBuildInfo reads the Go build information of the executable that r
// streams, reading only as far as the build information. It returns
// errNotELF after the first four bytes if they are not the ELF magic,
// errNotGo if the file holds no build information, errPointerFormat if it
// only holds the pre-1.18 kind, a *formatError if what it holds is cut
// short or malformed, or the error of r or ctx.
//
// debug/buildinfo looks for the header in the section .go.buildinfo or,
// without one, the first writable segment, at an address that is a
// multiple of 16. Section headers sit at the end of the file, out of a
// stream's reach, so the whole file is searched instead, at file offsets
// that are multiples of 16: a loadable segment's file offset and address
// are equal modulo its alignment (a page), so the header's offset is as
// aligned as its address. The header is checked beyond its magic (pointer
// size 4 or 8, known flags, zero padding) since the magic also appears in
// the read-only data of programs that, like this one, look for it.
func readBuildInfo(ctx context.Context, r io.Reader) (*debug.BuildInfo, error) {
	buf := make([]byte, scanChunk)
	if _, err := io.ReadFull(r, buf[:len(elfMagic)]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errNotELF
		}
		return nil, err
	}
	if !bytes.Equal(buf[:len(elfMagic)], elfMagic) {
		return nil, errNotELF
	}
	var (
		off     int64           // file offset of buf[0]
		end     = len(elfMagic) // bytes held in buf
		from    int             // where the search resumes in buf
		eof     bool            // r is drained
		oldSeen bool            // a pre-1.18 header was found
	)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		pending := false // a candidate whose header is not all in buf yet
		for {
			i := bytes.Index(buf[from:end], buildInfoMagic)
			if i < 0 {
				break
			}
			i += from
			if (off+int64(i))%buildInfoAlign != 0 {
				from = i + 1
				continue
			}
			if end-i < buildInfoHeaderSize {
				from, pending = i, true
				break
			}
			switch headerFormat(buf[i : i+buildInfoHeaderSize]) {
			case formatInline:
				rest := io.MultiReader(bytes.NewReader(buf[i+buildInfoHeaderSize:end]), r)
				return decodeInline(bufio.NewReaderSize(rest, 4<<10))
			case formatPointer:
				// Keep looking: an inline header further on is the
				// real one if this was a look-alike.
				oldSeen = true
			}
			from = i + 1
		}
		if eof {
			break
		}
		// Keep what a header may still start in: the pending candidate,
		// or the last bytes, too few for a whole magic.
		keep := from
		if !pending {
			keep = max(from, end-(len(buildInfoMagic)-1))
		}
		n := copy(buf, buf[keep:end])
		off += int64(keep)
		end, from = n, 0
		m, err := io.ReadFull(r, buf[end:])
		end += m
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			eof = true
		case err != nil:
			return nil, err
		}
	}
	if oldSeen {
		return nil, errPointerFormat
	}
	return nil, errNotGo
}

type format int

const (
	formatNone format = iota
	formatInline
	formatPointer
)

// headerFormat tells what the 32 bytes starting with the magic are: the
// header of either format as the linker writes it, or something else.
func headerFormat(h []byte) format {
	if ps := h[ptrSizeOffset]; ps != 4 && ps != 8 {
		return formatNone
	}
	flags := h[flagsOffset]
	if flags&^(flagsEndianMask|flagsVersionMask) != 0 {
		return formatNone
	}
	if flags&flagsVersionMask != flagsVersionInl {
		return formatPointer
	}
	for _, b := range h[flagsOffset+1:] {
		if b != 0 {
			return formatNone
		}
	}
	return formatInline
}

// decodeInline reads the version and the module information that follow
// an inline header, strips the module information's framing and parses
// it, as debug/buildinfo does.
func decodeInline(r *bufio.Reader) (*debug.BuildInfo, error) {
	vers, err := readString(r, maxVersionBytes, "Go version")
	if err != nil {
		return nil, err
	}
	if vers == "" {
		// debug/buildinfo's verdict too.
		return nil, errNotGo
	}
	mod, err := readString(r, maxModInfoBytes, "module information")
	if err != nil {
		return nil, err
	}
	// The sentinels cmd/go writes around the module information
	// (modload.infoStart and infoEnd), 16 bytes each, the last one
	// preceded by a newline.
	if len(mod) >= 33 && mod[len(mod)-17] == '\n' {
		mod = mod[16 : len(mod)-16]
	} else {
		mod = ""
	}
	bi, err := debug.ParseBuildInfo(mod)
	if err != nil {
		// Its errors quote the content.
		return nil, &formatError{"its module information could not be parsed"}
	}
	bi.GoVersion = vers
	return bi, nil
}

// readString reads a uvarint length and that many bytes, at most limit.
func readString(r *bufio.Reader, limit uint64, what string) (string, error) {
	n, err := readUvarint(r)
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "", &formatError{fmt.Sprintf("the file ends in the length of its %s", what)}
	case err != nil:
		return "", err
	case n > limit:
		return "", &formatError{fmt.Sprintf("its %s claims %d bytes, more than the %d allowed", what, n, limit)}
	}
	// Grown as the data comes rather than allocated as claimed: a short
	// file claiming a long string costs only what it holds.
	b, err := io.ReadAll(io.LimitReader(r, int64(n)))
	if err != nil {
		return "", err
	}
	if uint64(len(b)) < n {
		return "", &formatError{fmt.Sprintf("the file ends in its %s", what)}
	}
	return string(b), nil
}

// readUvarint is binary.ReadUvarint with its overflow told apart from
// the reader's errors (encoding/binary does not export it).
func readUvarint(r io.ByteReader) (uint64, error) {
	var x uint64
	var s uint
	for i := range binary.MaxVarintLen64 {
		b, err := r.ReadByte()
		if err != nil {
			if i > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if b < 0x80 {
			if i == binary.MaxVarintLen64-1 && b > 1 {
				break
			}
			return x | uint64(b)<<s, nil
		}
		x |= uint64(b&0x7f) << s
		s += 7
	}
	return 0, &formatError{"a length overflows 64 bits"}
}
