package rpm

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxFieldLen bounds a name, version, release, architecture or source rpm
// file name. Real ones are well under 100 bytes.
const maxFieldLen = 1024

// ParseSourceRPM splits a package's SOURCERPM, the file name of the
// source rpm it was built from, "<name>-<version>-<release>.src.rpm" (or
// ".nosrc.rpm", of a source package shipped without its sources), into
// the source package's name and its "<version>-<release>":
// "openssl-3.0.7-27.el9.src.rpm" is "openssl", "3.0.7-27.el9". rpm forbids
// "-" in versions and releases, so the last two "-" split the three. The
// file name carries no epoch. ok is false unless name, version and
// release are all non-empty and s is a valid field (see validField) with
// no "/".
func ParseSourceRPM(s string) (name, version string, ok bool) {
	if !validField(s) || strings.Contains(s, "/") {
		return "", "", false
	}
	nvr, ok := strings.CutSuffix(s, ".src.rpm")
	if !ok {
		if nvr, ok = strings.CutSuffix(s, ".nosrc.rpm"); !ok {
			return "", "", false
		}
	}
	i := strings.LastIndexByte(nvr, '-')
	if i <= 0 || i == len(nvr)-1 {
		return "", "", false
	}
	j := strings.LastIndexByte(nvr[:i], '-')
	if j <= 0 || j == i-1 {
		return "", "", false
	}
	return nvr[:j], nvr[j+1:], true
}

// validField tells whether s can be a name, version, release, architecture
// or source rpm file name: non-empty, at most maxFieldLen bytes of valid
// UTF-8 (rpm's are ASCII), and no white space, control or replacement
// characters.
func validField(s string) bool {
	if s == "" || len(s) > maxFieldLen || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
