// Package dpkg is the analyzer of Debian-family images: it reports each
// package that dpkg installed, from /var/lib/dpkg/status and from the
// distroless /var/lib/dpkg/status.d/* files, with its source package and
// version (Debian's advisories name source packages), the OSV ecosystem
// of the distribution ("Debian:12", "Ubuntu:22.04:LTS", from os-release),
// a purl (pkg:deb/debian/bash@5.2.15-2%2Bb13?arch=amd64&distro=debian-12)
// and the database file it came from.
//
// # What is reported
//
// A paragraph is reported when dpkg's state, the third word of its Status
// field, is "installed" (so "install ok installed" and a held "hold ok
// installed"; dpkg-query's db:Status-Abbrev has "i" as its second
// letter). Paragraphs of status.d files have no Status field and are all
// installed. Everything else is skipped and counted: config-files and
// not-installed only in the log (nothing but configuration is on disk);
// half-installed, unpacked, half-configured and triggers-* in a warning,
// since their files may be on disk. Malformed paragraphs (no Package, an
// invalid name or version, a line that is not a field) are skipped with
// one warning per file that counts them.
//
// # Bounds
//
// Files are opened only through imageroot, on an os.Root of the request's
// root: links resolve inside the image, never out of it, and loops stop
// with ELOOP. A file over MaxFileBytes is not read at all (a warning names
// it and the limit); one that grows past it while being read is cut short
// with a warning. At most MaxFiles entries of status.d are looked at. When
// the request sets no limit, DefaultMaxFileBytes and DefaultMaxFiles
// apply. The parser keeps one paragraph in memory at a time and packages
// are emitted as they are read; ctx is checked at every paragraph.
//
// # Why a parser of our own over net/textproto
//
// google/osv-scalibr's dpkg extractor was the maintained alternative. Its
// parser is itself net/textproto's ReadMIMEHeader, but the package comes
// with scalibr's framework: a test module that imports only
// extractor/filesystem/os/dpkg (osv-scalibr v0.5.3) builds 397 packages,
// 204 of them outside the standard library (go-git, go-diskfs, ext4, NTFS
// and exFAT readers, zap, logrus), adds 146 requirements to go.mod
// (containerd's errdefs and stargz modules among them), and a do-nothing
// main that imports it is a 16 MB static binary. It does build with
// CGO_ENABLED=0. Its API wants scalibr's virtual file system rather than an
// os.Root, returns every package in one slice, reads os-release without
// our link rules, does not count skipped paragraphs, and ends a status.d
// file silently at its first syntax error. The dpkg format is small:
// RFC 822-style paragraphs with continuation lines, which net/textproto
// reads; what is ours is short (ParseStatus, entryFromFields) and is
// checked against dpkg-query's own output on a real image and fuzzed
// (FuzzParseStatus).
//
// This package imports only plugins/sdk, the standard library,
// packageurl-go and the analyzers' own imageroot and osrelease; never the
// daemon, the plugin host, the sandbox, containerd or runc (a test in
// analyzers/ checks it).
package dpkg
