package apk

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"unicode/utf8"
)

// MaxLineBytes bounds one line of the installed database. Real lines are
// file names, dependency lists and descriptions, well under 4 KiB; a
// longer line makes its paragraph malformed and is never held in memory.
const MaxLineBytes = 64 << 10

// Paragraph is one package (paragraph) of the installed database, with the
// fields the analyzer uses.
type Paragraph struct {
	// Index counts the paragraphs of the file from 1, malformed ones
	// included.
	Index int
	// Name (P:), Version (V:), Arch (A:) and Origin (o:, the source
	// package; empty when absent). Unset when Err is set.
	Name, Version, Arch, Origin string
	// Err is set when the paragraph is malformed: a line that is not
	// "K:value", a line over MaxLineBytes, no P: or V:, one of P:, V:, A:
	// or o: twice, or a value of those that is not printable ASCII
	// without blanks. The message never quotes the file's content, which
	// may be anything (a link could make /etc/shadow the database).
	Err error
}

// ErrMalformed is what Paragraph.Err wraps.
var ErrMalformed = errors.New("malformed paragraph")

// ParseInstalled reads the paragraphs of apk's installed database
// (/lib/apk/db/installed) from r and calls fn for each, in order. The
// format is apk-tools' index format: paragraphs separated by empty lines,
// each line one field "K:value" whose key is a single character (P: name,
// V: version, A: architecture, o: origin, F:/R: directories and files,
// and others the analyzer ignores). It keeps one paragraph's fields in
// memory at a time. An error from fn stops it and is returned as is; a
// read error is returned wrapped. Malformed paragraphs do not stop it: fn
// gets them with Err set.
func ParseInstalled(r io.Reader, fn func(Paragraph) error) error {
	return parse(r, nil, func(p Paragraph, _ Files) error { return fn(p) })
}

// Files are the files a paragraph lists: its F: lines name directories
// (relative to the root: "usr/bin", "" for the root itself) and each R:
// line a file of the F: directory before it.
type Files struct {
	// Paths are absolute and clean: "/" + F + "/" + R. Empty when the
	// paragraph is malformed.
	Paths []string
	// Dropped counts the files left out because the limits were reached.
	Dropped int
	// Bad counts R: lines that name no file: before any F:, after an F:
	// that is not a directory name, or not a file name (empty, ".", "..",
	// a "/", a control character, invalid UTF-8, a path over
	// MaxPathBytes).
	Bad int
}

// FileLimits bound what ParseInstalledFiles keeps over a whole database,
// so that a hostile list (a long F: followed by a million R: lines) costs
// no more than that.
type FileLimits struct {
	Paths int // paths kept
	Bytes int // bytes of those paths
}

// MaxPathBytes bounds one file path (Linux's PATH_MAX).
const MaxPathBytes = 4096

// ParseInstalledFiles is ParseInstalled that also gives each paragraph's
// files (see Files), keeping at most lim over the whole input; the files
// of a malformed paragraph are not given and do not count.
func ParseInstalledFiles(r io.Reader, lim FileLimits, fn func(Paragraph, Files) error) error {
	return parse(r, &lim, fn)
}

// parse is ParseInstalled, with the files when lim is not nil.
func parse(r io.Reader, lim *FileLimits, fn func(Paragraph, Files) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		p       Paragraph
		started bool   // a line of the current paragraph was read
		bad     string // why the current paragraph is malformed
		seen    [4]bool
		files   Files
		dir     string // the last F:, as "/usr/bin/"
		dirOK   bool   // an F: was read and is a directory name
		nbytes  int    // of files.Paths
	)
	index := 0
	flush := func() error {
		if !started {
			return nil
		}
		index++
		out := p
		out.Index = index
		switch {
		case bad != "":
			out = Paragraph{Index: index, Err: fmt.Errorf("%w %d: %s", ErrMalformed, index, bad)}
		case p.Name == "":
			out = Paragraph{Index: index, Err: fmt.Errorf("%w %d: no P: (name) field", ErrMalformed, index)}
		case p.Version == "":
			out = Paragraph{Index: index, Err: fmt.Errorf("%w %d: no V: (version) field", ErrMalformed, index)}
		}
		fl := files
		if out.Err != nil && lim != nil {
			// A malformed paragraph owns nothing: give its share back.
			lim.Paths += len(files.Paths)
			lim.Bytes += nbytes
			fl = Files{}
		}
		p, started, bad, seen = Paragraph{}, false, "", [4]bool{}
		files, dir, dirOK, nbytes = Files{}, "", false, 0
		return fn(out, fl)
	}
	// file records one F: or R: line.
	file := func(key byte, value []byte) {
		if key == 'F' {
			dir, dirOK = path.Clean("/"+string(value)), dirName(value)
			if dir != "/" {
				dir += "/"
			}
			return
		}
		if !dirOK || !fileName(value) || len(dir)+len(value) > MaxPathBytes {
			files.Bad++
			return
		}
		if lim.Paths <= 0 || lim.Bytes < len(dir)+len(value) {
			files.Dropped++
			return
		}
		f := dir + string(value)
		lim.Paths--
		lim.Bytes -= len(f)
		nbytes += len(f)
		files.Paths = append(files.Paths, f)
	}
	for {
		line, long, err := readLine(br)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("apk: reading: %w", err)
		}
		eof := errors.Is(err, io.EOF)
		if eof && len(line) == 0 && !long {
			return flush()
		}
		switch {
		case len(line) == 0 && !long:
			if ferr := flush(); ferr != nil {
				return ferr
			}
		case bad != "":
			// The rest of a malformed paragraph is skipped.
		case long:
			started = true
			bad = fmt.Sprintf("a line is longer than %d bytes", MaxLineBytes)
		case len(line) < 2 || line[1] != ':':
			started = true
			bad = `a line is not "K:value"`
		default:
			started = true
			bad = p.set(line[0], line[2:], &seen)
			if lim != nil && bad == "" && (line[0] == 'F' || line[0] == 'R') {
				file(line[0], line[2:])
			}
		}
		if eof {
			return flush()
		}
	}
}

// set records one field; it returns why the paragraph is malformed, or "".
func (p *Paragraph) set(key byte, value []byte, seen *[4]bool) string {
	var dst *string
	var i int
	var what string
	switch key {
	case 'P':
		dst, i, what = &p.Name, 0, "P: (name)"
	case 'V':
		dst, i, what = &p.Version, 1, "V: (version)"
	case 'A':
		dst, i, what = &p.Arch, 2, "A: (architecture)"
	case 'o':
		dst, i, what = &p.Origin, 3, "o: (origin)"
	default:
		return ""
	}
	if seen[i] {
		return "the field " + what + " appears twice"
	}
	seen[i] = true
	if !token(value) {
		return "the field " + what + " is empty or holds a blank, a control character or a non-ASCII byte"
	}
	*dst = string(value)
	return ""
}

// token reports whether b is non-empty printable ASCII without blanks, as
// apk's names, versions, architectures and origins are.
func token(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// readLine returns the next line without its "\n" (and a "\r" before it).
// A line over MaxLineBytes is read to its end but not returned: long is
// set instead. At the end of the input err is io.EOF, with the last line
// if it had no "\n".
func readLine(br *bufio.Reader) (line []byte, long bool, err error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if !long {
			if len(buf)+len(chunk) > MaxLineBytes+2 { // +2: "\r\n"
				long, buf = true, nil
			} else {
				buf = append(buf, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if long {
			return nil, true, err
		}
		buf = bytes.TrimSuffix(buf, []byte("\n"))
		buf = bytes.TrimSuffix(buf, []byte("\r"))
		if len(buf) > MaxLineBytes {
			return nil, true, err
		}
		return buf, false, err
	}
}

// dirName reports whether b, an F: value, is a directory name relative to
// the root: "" (the root), or "/"-separated names without ".", "..",
// control characters or invalid UTF-8.
func dirName(b []byte) bool {
	if !printable(b) {
		return false
	}
	for seg := range bytes.SplitSeq(b, []byte("/")) {
		if string(seg) == "." || string(seg) == ".." {
			return false
		}
	}
	return true
}

// fileName reports whether b, an R: value, is one file name.
func fileName(b []byte) bool {
	return len(b) > 0 && string(b) != "." && string(b) != ".." &&
		bytes.IndexByte(b, '/') < 0 && printable(b)
}

// printable reports whether b is valid UTF-8 without control characters.
func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, c := range b {
		if c < ' ' || c == 0x7f {
			return false
		}
	}
	return true
}
