// Package dpkg is the extractor of Debian-family layers: it reports each
// package that dpkg installed, from /var/lib/dpkg/status and from the
// distroless /var/lib/dpkg/status.d/* files, with its architecture, its
// source package and version (Debian's advisories name source packages)
// and the database file it came from; and it sends dpkg's file lists,
// /var/lib/dpkg/info/<package>[:<arch>].list, as sdk.OwnedFiles, so that
// the image merge can tell which OS package owns a language package's
// files.
//
// A layer does not know the image's os-release (it may sit in another
// layer), so packages are sent with OS "dpkg", the family "Debian" as
// their ecosystem and no purl: the merge completes them with
// analyzers/distro.Finish ("Debian:12", "Ubuntu:22.04:LTS",
// pkg:deb/debian/bash@5.2.15-2%2Bb13?arch=amd64&distro=debian-12).
//
// # Which files
//
// Regular files only, as the layer's tar holds them: StatusFile, every
// file directly in StatusDir but *.md5sums (distroless keeps those beside
// the package files), and every InfoDir/*.list. Symbolic and hard links
// are never followed, so no link can make another file (/etc/shadow) a
// database file; a status file that is a link is not read at all.
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
// one warning that counts them, for the status file and for the layer's
// status.d files as a whole (sent when the layer ends).
//
// A file list gives OwnedFiles{OS: "dpkg", Owner: the package's name
// (without the ":<arch>" of a Multi-Arch: same package), Location: the
// list's path, Paths: its lines}. Empty lines and dpkg's "/." are
// skipped, lines are cleaned as absolute paths, and lines longer than
// sdk.MaxPathBytes or not valid UTF-8 are skipped with a warning. A list
// whose name is not a valid "<package>[:<arch>].list" is skipped with a
// warning.
//
// # Bounds
//
// The framework skips, with a warning, files over MaxFileBytes
// (DefaultMaxFileBytes unless the request overrides it) and never hands
// more than a file's size. At most DefaultMaxFiles status.d files of a
// layer are read, and at most MaxOwnedPaths file list paths of a layer
// are sent, each OwnedFiles item holding at most 4096 of them; a warning
// says when either bound was reached. A file list line over 64 KiB ends
// that list's reading with a warning. The status parser keeps one
// paragraph in memory at a time and packages are emitted as they are
// read; ctx is checked at every paragraph and every 1024 list lines.
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
// CGO_ENABLED=0. Its API wants scalibr's virtual file system rather than a
// stream, returns every package in one slice, reads os-release without
// our link rules, does not count skipped paragraphs, and ends a status.d
// file silently at its first syntax error. The dpkg format is small:
// RFC 822-style paragraphs with continuation lines, which net/textproto
// reads; what is ours is short (ParseStatus, entryFromFields) and is
// checked against dpkg-query's own output on a real image and fuzzed
// (FuzzParseStatus).
//
// This package imports only plugins/sdk and the standard library; never
// the daemon, the plugin host, the sandbox, containerd or runc (a test in
// analyzers/ checks it).
package dpkg
