package dpkg

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"strings"
)

// Paragraph is one paragraph (stanza) of a dpkg database file.
type Paragraph struct {
	// Index counts the paragraphs of the file from 1, malformed ones
	// included.
	Index int
	// Fields maps each field name, canonicalised as
	// textproto.CanonicalMIMEHeaderKey does ("Package", "Source"; dpkg's
	// field names are case-insensitive), to its values. Continuation
	// lines are joined with single spaces. Nil when Err is set.
	Fields textproto.MIMEHeader
	// Err is set when the paragraph is malformed (a line that is not
	// "Name: value", a continuation line with nothing to continue, a
	// control character). The paragraph was skipped up to its end. The
	// message never quotes the file's content, which may be anything
	// (a link could make /etc/shadow the "status file").
	Err error
}

// ErrMalformed is what Paragraph.Err wraps.
var ErrMalformed = errors.New("malformed paragraph")

// ParseStatus reads the RFC 822-style paragraphs of a dpkg status file (or
// of one file of the distroless status.d directory) from r and calls fn
// for each, in order. It keeps one paragraph in memory at a time. An
// error from fn stops it and is returned as is; a read error is returned
// wrapped. Malformed paragraphs do not stop it: fn gets them with Err
// set.
func ParseStatus(r io.Reader, fn func(Paragraph) error) error {
	br := bufio.NewReader(r)
	tp := textproto.NewReader(br)
	index := 0
	for {
		// Between paragraphs dpkg skips blank space. A line that starts
		// with a blank and holds more is a continuation line with nothing
		// to continue. textproto would fail on either, and on a long one
		// with an error that does not say how much it read.
		malformed, eof, err := skipBlankLines(br)
		if err != nil {
			return fmt.Errorf("dpkg: reading: %w", err)
		}
		if malformed {
			index++
			if ferr := fn(Paragraph{Index: index, Err: fmt.Errorf("%w %d: a continuation line starts the paragraph", ErrMalformed, index)}); ferr != nil {
				return ferr
			}
			if eof, err = skipParagraph(br); err != nil {
				return fmt.Errorf("dpkg: reading: %w", err)
			}
			if eof {
				return nil
			}
			continue
		}
		if eof {
			return nil
		}
		h, err := tp.ReadMIMEHeader()
		var perr textproto.ProtocolError
		switch {
		case err == nil, errors.Is(err, io.EOF):
			if len(h) > 0 {
				index++
				for _, vs := range h {
					for i, v := range vs {
						// dpkg drops trailing blanks, which a blank
						// continuation line leaves here.
						vs[i] = strings.TrimRight(v, " \t")
					}
				}
				p := Paragraph{Index: index, Fields: h}
				if badFieldName(h) {
					// textproto takes "Name : value" with the space in
					// the name; dpkg does not.
					p = Paragraph{Index: index, Err: fmt.Errorf("%w %d: a field name holds a blank", ErrMalformed, index)}
				}
				if ferr := fn(p); ferr != nil {
					return ferr
				}
			}
			if err != nil {
				return nil
			}
		case errors.As(err, &perr):
			index++
			if ferr := fn(Paragraph{Index: index, Err: fmt.Errorf("%w %d: %s", ErrMalformed, index, describe(perr))}); ferr != nil {
				return ferr
			}
			eof, rerr := skipParagraph(br)
			if rerr != nil {
				return fmt.Errorf("dpkg: reading: %w", rerr)
			}
			if eof {
				return nil
			}
		default:
			return fmt.Errorf("dpkg: reading: %w", err)
		}
	}
}

func badFieldName(h textproto.MIMEHeader) bool {
	for k := range h {
		if strings.ContainsAny(k, " \t") {
			return true
		}
	}
	return false
}

// describe says what textproto found wrong without its quote of the line.
func describe(err textproto.ProtocolError) string {
	msg := string(err)
	switch {
	case strings.HasPrefix(msg, "malformed MIME header: missing colon"):
		return `a line is not "Field: value"`
	case strings.HasPrefix(msg, "malformed MIME header line"):
		return "a field name or value holds a character dpkg does not allow"
	}
	return "syntax error"
}

// skipBlankLines reads the lines that start with a space or a tab before a
// paragraph. It stops at a line that starts with anything else (which it
// leaves unread), at the end of the input (eof), or after a line that
// starts with a blank but holds more (malformed).
func skipBlankLines(br *bufio.Reader) (malformed, eof bool, err error) {
	for {
		b, err := br.Peek(1)
		if errors.Is(err, io.EOF) {
			return false, true, nil
		}
		if err != nil {
			return false, false, err
		}
		if b[0] != ' ' && b[0] != '\t' {
			return false, false, nil
		}
		empty, blank, err := readLine(br)
		if errors.Is(err, io.EOF) {
			return false, true, nil
		}
		if err != nil {
			return false, false, err
		}
		if !empty && !blank {
			return true, false, nil
		}
	}
}

// skipParagraph reads up to and including the next empty line, after a
// malformed line. eof says that the input ended first.
func skipParagraph(br *bufio.Reader) (eof bool, err error) {
	for {
		empty, _, err := readLine(br)
		if errors.Is(err, io.EOF) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		if empty {
			return false, nil
		}
	}
}

// readLine reads one line and says whether it is empty, or only spaces and
// tabs, without holding a long line in memory.
func readLine(br *bufio.Reader) (empty, blank bool, err error) {
	empty, blank = true, true
	for {
		l, more, err := br.ReadLine()
		if err != nil {
			return false, false, err
		}
		if len(l) > 0 {
			empty = false
			blank = blank && len(bytes.Trim(l, " \t")) == 0
		}
		if !more {
			return empty, blank, nil
		}
	}
}
