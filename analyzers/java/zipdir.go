package java

import (
	"bufio"
	"encoding/binary"
	"io"
)

// Sizes and signatures of the zip records countEntries reads (APPNOTE.TXT
// 4.3.12, 4.3.14-16).
const (
	sigDirHeader  = 0x02014b50 // central directory file header
	sigDirEnd     = 0x06054b50 // end of central directory record
	sigDir64Loc   = 0x07064b50 // zip64 end of central directory locator
	sigDir64End   = 0x06064b50 // zip64 end of central directory record
	dirHeaderLen  = 46
	dirEndLen     = 22
	dir64LocLen   = 20
	dir64EndLen   = 56
	maxDirEndScan = 65 * 1024 // as archive/zip: the record plus a comment of up to 64 KiB
)

// countEntries counts the central directory headers archive/zip's
// NewReader would read from the size bytes of r, without allocating per
// entry, and returns the number the archive declares with it. NewReader
// allocates a *zip.File for every header it reads, whatever the declared
// count (it compares only the low 16 bits), so this is what bounds its
// memory: count first, refuse past a budget, then let NewReader parse.
//
// It finds the directory as archive/zip 1.26 does (readDirectoryEnd): the
// last end record in the final 65 KiB whose comment fits, the zip64
// records when a field is saturated, and the directory start either
// relative to the end record or, when that misreads, at the declared
// offset: both starts are counted and the larger count kept. Counting
// stops at the first header that is not one, or at limit+1. ok is false
// when there is no directory archive/zip would accept; NewReader then
// fails on its own.
func countEntries(r io.ReaderAt, size, limit int64) (declared uint64, actual int64, ok bool) {
	if size < dirEndLen {
		return 0, 0, false
	}
	n := min(size, maxDirEndScan)
	buf := make([]byte, n)
	if _, err := r.ReadAt(buf, size-n); err != nil && err != io.EOF {
		return 0, 0, false
	}
	p := -1
	for i := len(buf) - dirEndLen; i >= 0; i-- {
		if binary.LittleEndian.Uint32(buf[i:]) == sigDirEnd {
			if c := int(binary.LittleEndian.Uint16(buf[i+20:])); i+dirEndLen+c > len(buf) {
				return 0, 0, false // a truncated comment: archive/zip gives up too
			}
			p = i
			break
		}
	}
	if p < 0 {
		return 0, 0, false
	}
	end := size - n + int64(p)
	rec := buf[p:]
	declared = uint64(binary.LittleEndian.Uint16(rec[10:]))
	dirSize := uint64(binary.LittleEndian.Uint32(rec[12:]))
	dirOffset := uint64(binary.LittleEndian.Uint32(rec[16:]))
	if declared == 0xffff || dirSize == 0xffff || dirOffset == 0xffffffff {
		if loc := end - dir64LocLen; loc >= 0 {
			var l [dir64LocLen]byte
			if _, err := r.ReadAt(l[:], loc); err != nil {
				return 0, 0, false
			}
			if binary.LittleEndian.Uint32(l[0:]) == sigDir64Loc && binary.LittleEndian.Uint32(l[4:]) == 0 &&
				binary.LittleEndian.Uint32(l[16:]) == 1 {
				off := binary.LittleEndian.Uint64(l[8:])
				if off > 1<<62 {
					return 0, 0, false
				}
				var e [dir64EndLen]byte
				if _, err := r.ReadAt(e[:], int64(off)); err != nil || binary.LittleEndian.Uint32(e[0:]) != sigDir64End {
					return 0, 0, false
				}
				end = int64(off)
				declared = binary.LittleEndian.Uint64(e[32:])
				dirSize = binary.LittleEndian.Uint64(e[40:])
				dirOffset = binary.LittleEndian.Uint64(e[48:])
			}
		}
	}
	const maxInt64 = 1<<63 - 1
	if dirSize > maxInt64 || dirOffset > maxInt64 {
		return 0, 0, false
	}
	// archive/zip: baseOffset = end - dirSize - dirOffset; the directory
	// starts at baseOffset+dirOffset, which must lie in the file.
	base := end - int64(dirSize) - int64(dirOffset)
	start := base + int64(dirOffset)
	if start < 0 || start >= size {
		return 0, 0, false
	}
	actual = countHeaders(r, start, size, limit)
	if base > 0 && int64(dirOffset) < size {
		actual = max(actual, countHeaders(r, int64(dirOffset), size, limit))
	}
	return declared, actual, true
}

// countHeaders counts the central directory headers from start on, up to
// limit+1.
func countHeaders(r io.ReaderAt, start, size, limit int64) int64 {
	br := bufio.NewReaderSize(io.NewSectionReader(r, start, size-start), 64<<10)
	var h [dirHeaderLen]byte
	var n int64
	for n <= limit {
		if _, err := io.ReadFull(br, h[:]); err != nil {
			break
		}
		if binary.LittleEndian.Uint32(h[0:]) != sigDirHeader {
			break
		}
		skip := int(binary.LittleEndian.Uint16(h[28:])) + int(binary.LittleEndian.Uint16(h[30:])) + int(binary.LittleEndian.Uint16(h[32:]))
		if d, err := br.Discard(skip); err != nil || d != skip {
			break
		}
		n++
	}
	return n
}
